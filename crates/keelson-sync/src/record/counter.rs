//! Counter documents (running hours).
//!
//! # Layout (schema 1)
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"counter"` |
//! | `schema` | uint | layout version, [`SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `equipment_id` | string | the equipment record it counts for |
//! | `name`, `unit` | string | free text |
//! | `start_total` | f64 | the total at creation; never changes |
//! | `sensor_tag` | string | the sensor rule's tag, or empty for none |
//! | `sensor_threshold` | f64 | the sensor rule's threshold |
//! | `readings` | list of maps | `{id, at, value, source, by}` |
//! | `corrections` | list of maps | `{id, at, value, reason, by}` |
//! | `created_by` | string | who created the counter |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//!
//! There is no total field: the total is read from the latest reading or
//! correction. Two sites that record readings while apart both append to
//! the lists, and after the merge both read the same latest entry, where a
//! total field written on both would keep only one site's value whatever
//! the times said.

use super::{
    RecordDoc, ensure_new_entry, get_number, get_string, get_time, invalid_field, list_maps,
    random_actor, read_header, sort_entries, validate_person, validate_record_id,
};
use crate::SyncError;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
use chrono::{DateTime, Utc};
use keelson_model::counter::{current_total, validate_total};
use keelson_model::{
    Correction, Counter, NewCorrection, NewCounter, Reading, ReadingSource, SensorRule,
};

/// The `kind` of a counter document.
pub const KIND: &str = "counter";
/// The layout version written into new counter documents.
pub const SCHEMA: u64 = 1;

mod k {
    pub(super) const EQUIPMENT_ID: &str = "equipment_id";
    pub(super) const NAME: &str = "name";
    pub(super) const UNIT: &str = "unit";
    pub(super) const START_TOTAL: &str = "start_total";
    pub(super) const SENSOR_TAG: &str = "sensor_tag";
    pub(super) const SENSOR_THRESHOLD: &str = "sensor_threshold";
    pub(super) const READINGS: &str = "readings";
    pub(super) const CORRECTIONS: &str = "corrections";
    pub(super) const E_ID: &str = "id";
    pub(super) const E_AT: &str = "at";
    pub(super) const E_VALUE: &str = "value";
    pub(super) const E_SOURCE: &str = "source";
    pub(super) const E_REASON: &str = "reason";
    pub(super) const E_BY: &str = "by";
}

impl RecordDoc {
    /// Creates the document of a new counter with a fresh random actor.
    pub fn create_counter(
        id: &str,
        vessel_id: &str,
        new: &NewCounter,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        Self::create_counter_as(random_actor()?.to_bytes(), id, vessel_id, new, author, now)
    }

    /// [`RecordDoc::create_counter`] with a caller-chosen actor, under the
    /// conditions listed on [`RecordDoc::set_actor`].
    pub fn create_counter_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewCounter,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        let new = new.clone().validated()?;
        validate_record_id("equipment_id", &new.equipment_id)?;
        let (tag, threshold) = match &new.sensor {
            Some(rule) => (rule.tag.as_str(), rule.threshold),
            None => ("", 0.0),
        };
        Self::create_as(actor, (KIND, SCHEMA), id, vessel_id, author, now, |d| {
            d.put(ROOT, k::EQUIPMENT_ID, new.equipment_id.as_str())?;
            d.put(ROOT, k::NAME, new.name.as_str())?;
            d.put(ROOT, k::UNIT, new.unit.as_str())?;
            d.put(ROOT, k::START_TOTAL, new.start_total)?;
            d.put(ROOT, k::SENSOR_TAG, tag)?;
            d.put(ROOT, k::SENSOR_THRESHOLD, threshold)?;
            d.put_object(ROOT, k::READINGS, ObjType::List)?;
            d.put_object(ROOT, k::CORRECTIONS, ObjType::List)?;
            Ok(())
        })
    }

    /// Reads the document as a [`Counter`]; fails unless it is one.
    pub fn to_counter(&self) -> Result<Counter, SyncError> {
        self.to_kind(KIND, |r| match r {
            keelson_model::Record::Counter(x) => Some(x),
            _ => None,
        })
    }

    /// Appends a reading of `value` from `source` as `author`. Whether the
    /// value may follow the current total is the caller's rule; this only
    /// checks that it is a valid total and that the id is new.
    pub fn add_reading(
        &mut self,
        reading_id: &str,
        value: f64,
        source: ReadingSource,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", reading_id)?;
        validate_person("author", author)?;
        validate_total("value", value)?;
        let current = self.to_counter()?;
        ensure_new_entry(
            current.readings.iter().map(|r| r.id.as_str()),
            reading_id,
            "a reading",
        )?;
        self.append_entry(
            k::READINGS,
            current.updated_at,
            author,
            now,
            "adding a reading",
            vec![
                (k::E_ID, reading_id.into()),
                (k::E_AT, ScalarValue::Timestamp(now.timestamp_millis())),
                (k::E_VALUE, value.into()),
                (k::E_SOURCE, source.as_str().into()),
                (k::E_BY, author.into()),
            ],
        )
    }

    /// Appends a correction as `author`. Who may correct is the caller's
    /// rule.
    pub fn add_correction(
        &mut self,
        correction_id: &str,
        correction: &NewCorrection,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", correction_id)?;
        validate_person("author", author)?;
        let correction = correction.clone().validated()?;
        let current = self.to_counter()?;
        ensure_new_entry(
            current.corrections.iter().map(|c| c.id.as_str()),
            correction_id,
            "a correction",
        )?;
        self.append_entry(
            k::CORRECTIONS,
            current.updated_at,
            author,
            now,
            "adding a correction",
            vec![
                (k::E_ID, correction_id.into()),
                (k::E_AT, ScalarValue::Timestamp(now.timestamp_millis())),
                (k::E_VALUE, correction.value.into()),
                (k::E_REASON, correction.reason.as_str().into()),
                (k::E_BY, author.into()),
            ],
        )
    }

    pub(super) fn read_counter(&self) -> Result<Counter, SyncError> {
        let d = &self.doc;
        let h = read_header(d)?;
        let equipment_id = get_string(d, &ROOT, k::EQUIPMENT_ID)?;
        validate_record_id("equipment_id", &equipment_id).map_err(invalid_field)?;
        let name = get_string(d, &ROOT, k::NAME)?;
        let unit = get_string(d, &ROOT, k::UNIT)?;
        let start_total = get_number(d, &ROOT, k::START_TOTAL)?;
        let tag = get_string(d, &ROOT, k::SENSOR_TAG)?;
        let threshold = get_number(d, &ROOT, k::SENSOR_THRESHOLD)?;
        let sensor = if tag.is_empty() {
            None
        } else {
            Some(SensorRule { tag, threshold })
        };
        // The creation validator holds the model's rules for these fields.
        let checked = NewCounter {
            equipment_id: equipment_id.clone(),
            name: name.clone(),
            unit: unit.clone(),
            start_total,
            sensor: sensor.clone(),
        }
        .validated()
        .map_err(invalid_field)?;
        let readings = read_readings(d)?;
        let corrections = read_corrections(d)?;
        let (total, total_at) = current_total(start_total, h.created_at, &readings, &corrections);
        Ok(Counter {
            id: h.id,
            vessel_id: h.vessel_id,
            equipment_id,
            name: checked.name,
            unit: checked.unit,
            start_total,
            sensor: checked.sensor,
            readings,
            corrections,
            total,
            total_at,
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
        })
    }
}

fn read_readings(doc: &AutoCommit) -> Result<Vec<Reading>, SyncError> {
    let mut out = Vec::new();
    for map in list_maps(doc, &ROOT, k::READINGS)? {
        let id = get_string(doc, &map, k::E_ID)?;
        validate_record_id("reading id", &id).map_err(invalid_field)?;
        let at = get_time(doc, &map, k::E_AT)?;
        let value = get_number(doc, &map, k::E_VALUE)?;
        validate_total("value", value).map_err(invalid_field)?;
        let source = get_string(doc, &map, k::E_SOURCE)?
            .parse::<ReadingSource>()
            .map_err(invalid_field)?;
        let by = get_string(doc, &map, k::E_BY)?;
        validate_person("reading by", &by).map_err(invalid_field)?;
        out.push(Reading {
            id,
            at,
            value,
            source,
            by,
        });
    }
    sort_entries(&mut out, |e| (e.at, e.id.as_str()));
    Ok(out)
}

fn read_corrections(doc: &AutoCommit) -> Result<Vec<Correction>, SyncError> {
    let mut out = Vec::new();
    for map in list_maps(doc, &ROOT, k::CORRECTIONS)? {
        let id = get_string(doc, &map, k::E_ID)?;
        validate_record_id("correction id", &id).map_err(invalid_field)?;
        let at = get_time(doc, &map, k::E_AT)?;
        let value = get_number(doc, &map, k::E_VALUE)?;
        let reason = get_string(doc, &map, k::E_REASON)?;
        let checked = NewCorrection { value, reason }
            .validated()
            .map_err(invalid_field)?;
        let by = get_string(doc, &map, k::E_BY)?;
        validate_person("correction by", &by).map_err(invalid_field)?;
        out.push(Correction {
            id,
            at,
            value,
            reason: checked.reason,
            by,
        });
    }
    sort_entries(&mut out, |e| (e.at, e.id.as_str()));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn new() -> NewCounter {
        NewCounter {
            equipment_id: "e-1".into(),
            name: String::new(),
            unit: String::new(),
            start_total: 1200.0,
            sensor: Some(SensorRule {
                tag: "me_rpm".into(),
                threshold: 30.0,
            }),
        }
    }

    #[test]
    fn readings_from_two_sites_merge_and_the_latest_wins() {
        let (mut a, create) =
            RecordDoc::create_counter("c-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let c = a.to_counter().unwrap();
        assert_eq!((c.total, c.name.as_str()), (1200.0, "Running hours"));
        assert_eq!(c.sensor.as_ref().unwrap().tag, "me_rpm");
        let mut b = RecordDoc::from_changes(&[create]).unwrap();
        let ra = a
            .add_reading("r-1", 1210.0, ReadingSource::Manual, "crew", t(10))
            .unwrap();
        let rb = b
            .add_reading("r-2", 1215.0, ReadingSource::Sensor, "agent", t(20))
            .unwrap();
        a.apply_changes(&[rb]).unwrap();
        b.apply_changes(&[ra]).unwrap();
        let (ca, cb) = (a.to_counter().unwrap(), b.to_counter().unwrap());
        assert_eq!(ca, cb);
        assert_eq!(ca.readings.len(), 2);
        assert_eq!((ca.total, ca.total_at), (1215.0, t(20)));
        let fix = NewCorrection {
            value: 1100.0,
            reason: "meter replaced".into(),
        };
        a.add_correction("k-1", &fix, "chief", t(30)).unwrap();
        let ca = a.to_counter().unwrap();
        assert_eq!(
            (ca.total, ca.corrections[0].reason.as_str()),
            (1100.0, "meter replaced")
        );
        assert!(a.add_correction("k-1", &fix, "chief", t(31)).is_err());
        assert!(matches!(
            a.add_reading("r-3", f64::NAN, ReadingSource::Manual, "crew", t(40)),
            Err(SyncError::Invalid(_))
        ));
        assert!(a.add_comment("x-1", "chief", "hi", t(41)).is_err());
    }

    #[test]
    fn a_forged_value_is_refused() {
        let (mut a, _) =
            RecordDoc::create_counter("c-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let mut evil = AutoCommit::load(&a.save()).unwrap();
        evil.put(ROOT, k::START_TOTAL, -5.0).unwrap();
        evil.commit();
        let change = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[change]),
            Err(SyncError::Rejected(_))
        ));
    }
}
