//! Maintenance plan documents.
//!
//! # Layout (schema 1)
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"plan"` |
//! | `schema` | uint | layout version, [`SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `equipment_id` | string | the equipment record it maintains; never changes |
//! | `counter_id` | string | the counter an hours plan follows, or empty; never changes |
//! | `title`, `instructions` | string | free text |
//! | `interval_days` | uint | days between jobs, 0 for none |
//! | `interval_hours` | f64 | hours between jobs, 0 for none |
//! | `tolerance_days`, `tolerance_hours` | uint, f64 | the window either side of due |
//! | `last_done_at` | timestamp | when the job was last done |
//! | `last_done_hours` | f64, absent for none | the counter's total then |
//! | `postponements` | list of maps | `{id, at, until_date?, until_hours?, reason, by}` |
//! | `created_by` | string | who created the plan |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//!
//! Postponements are appended, never rewritten, so one made on board and
//! one made ashore both survive a merge; the scheduling function reads the
//! latest. The last-done point is a pair of fields: two sign-offs of the
//! same plan's work orders on two sites are rare, and the later write wins.

use super::{
    RecordDoc, ensure_new_entry, get_number, get_optional, get_scalar, get_string, get_time,
    invalid_field, key, list_maps, random_actor, read_header, sort_entries, updated_at_after,
    validate_person, validate_record_id,
};
use crate::SyncError;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ScalarValue};
use chrono::{DateTime, Utc};
use keelson_model::plan::check_intervals;
use keelson_model::{NewPlan, NewPostponement, Plan, PlanPatch, Postponement};

/// The `kind` of a plan document.
pub const KIND: &str = "plan";
/// The layout version written into new plan documents.
pub const SCHEMA: u64 = 1;

mod k {
    pub(super) const EQUIPMENT_ID: &str = "equipment_id";
    pub(super) const COUNTER_ID: &str = "counter_id";
    pub(super) const TITLE: &str = "title";
    pub(super) const INSTRUCTIONS: &str = "instructions";
    pub(super) const INTERVAL_DAYS: &str = "interval_days";
    pub(super) const INTERVAL_HOURS: &str = "interval_hours";
    pub(super) const TOLERANCE_DAYS: &str = "tolerance_days";
    pub(super) const TOLERANCE_HOURS: &str = "tolerance_hours";
    pub(super) const LAST_DONE_AT: &str = "last_done_at";
    pub(super) const LAST_DONE_HOURS: &str = "last_done_hours";
    pub(super) const POSTPONEMENTS: &str = "postponements";
    pub(super) const E_ID: &str = "id";
    pub(super) const E_AT: &str = "at";
    pub(super) const E_UNTIL_DATE: &str = "until_date";
    pub(super) const E_UNTIL_HOURS: &str = "until_hours";
    pub(super) const E_REASON: &str = "reason";
    pub(super) const E_BY: &str = "by";
}

fn ts(t: DateTime<Utc>) -> ScalarValue {
    ScalarValue::Timestamp(t.timestamp_millis())
}

impl RecordDoc {
    /// Creates the document of a new plan with a fresh random actor. The
    /// caller settles the last-done point (`new.last_done_at` and
    /// `new.last_done_hours`, when absent the creation time and no total).
    pub fn create_plan(
        id: &str,
        vessel_id: &str,
        new: &NewPlan,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        Self::create_plan_as(random_actor()?.to_bytes(), id, vessel_id, new, author, now)
    }

    /// [`RecordDoc::create_plan`] with a caller-chosen actor, under the
    /// conditions listed on [`RecordDoc::set_actor`].
    pub fn create_plan_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewPlan,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        let new = new.clone().validated()?;
        validate_record_id("equipment_id", &new.equipment_id)?;
        if let Some(c) = &new.counter_id {
            validate_record_id("counter_id", c)?;
        }
        Self::create_as(actor, (KIND, SCHEMA), id, vessel_id, author, now, |d| {
            d.put(ROOT, k::EQUIPMENT_ID, new.equipment_id.as_str())?;
            d.put(ROOT, k::COUNTER_ID, new.counter_id.as_deref().unwrap_or(""))?;
            d.put(ROOT, k::TITLE, new.title.as_str())?;
            d.put(ROOT, k::INSTRUCTIONS, new.instructions.as_str())?;
            d.put(
                ROOT,
                k::INTERVAL_DAYS,
                u64::from(new.interval_days.unwrap_or(0)),
            )?;
            d.put(ROOT, k::INTERVAL_HOURS, new.interval_hours.unwrap_or(0.0))?;
            d.put(ROOT, k::TOLERANCE_DAYS, u64::from(new.tolerance_days))?;
            d.put(ROOT, k::TOLERANCE_HOURS, new.tolerance_hours)?;
            d.put(ROOT, k::LAST_DONE_AT, ts(new.last_done_at.unwrap_or(now)))?;
            if let Some(h) = new.last_done_hours {
                d.put(ROOT, k::LAST_DONE_HOURS, h)?;
            }
            d.put_object(ROOT, k::POSTPONEMENTS, ObjType::List)?;
            Ok(())
        })
    }

    /// Reads the document as a [`Plan`]; fails unless it is one.
    pub fn to_plan(&self) -> Result<Plan, SyncError> {
        self.to_kind(KIND, |r| match r {
            keelson_model::Record::Plan(x) => Some(x),
            _ => None,
        })
    }

    /// Applies a patch as `author` and returns the change, or `None` when
    /// it changes nothing. The intervals that result must still hold
    /// together (at least one, and hours only with a counter).
    pub fn patch_plan(
        &mut self,
        patch: &PlanPatch,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let patch = patch.clone().validated()?;
        validate_person("author", author)?;
        let current = self.to_plan()?;
        let days = patch
            .interval_days
            .unwrap_or(current.interval_days.unwrap_or(0));
        let hours = patch
            .interval_hours
            .unwrap_or(current.interval_hours.unwrap_or(0.0));
        check_intervals(Some(days), Some(hours), current.counter_id.is_some())?;
        let mut texts: Vec<(&'static str, String)> = Vec::new();
        if let Some(t) = patch.title.filter(|t| *t != current.title) {
            texts.push((k::TITLE, t));
        }
        if let Some(i) = patch.instructions.filter(|i| *i != current.instructions) {
            texts.push((k::INSTRUCTIONS, i));
        }
        let mut uints: Vec<(&'static str, u64)> = Vec::new();
        if days != current.interval_days.unwrap_or(0) {
            uints.push((k::INTERVAL_DAYS, u64::from(days)));
        }
        if let Some(d) = patch
            .tolerance_days
            .filter(|d| *d != current.tolerance_days)
        {
            uints.push((k::TOLERANCE_DAYS, u64::from(d)));
        }
        let mut floats: Vec<(&'static str, f64)> = Vec::new();
        if hours != current.interval_hours.unwrap_or(0.0) {
            floats.push((k::INTERVAL_HOURS, hours));
        }
        if let Some(h) = patch
            .tolerance_hours
            .filter(|h| *h != current.tolerance_hours)
        {
            floats.push((k::TOLERANCE_HOURS, h));
        }
        if texts.is_empty() && uints.is_empty() && floats.is_empty() {
            return Ok(None);
        }
        let updated = updated_at_after(current.updated_at, now);
        self.transact(author, now, |d| {
            for (k, v) in &texts {
                d.put(ROOT, *k, v.as_str())?;
            }
            for (k, v) in &uints {
                d.put(ROOT, *k, *v)?;
            }
            for (k, v) in &floats {
                d.put(ROOT, *k, *v)?;
            }
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })
    }

    /// Appends a postponement as `author`. Who may postpone is the
    /// caller's rule.
    pub fn postpone_plan(
        &mut self,
        postponement_id: &str,
        p: &NewPostponement,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", postponement_id)?;
        validate_person("author", author)?;
        let p = p.clone().validated()?;
        let current = self.to_plan()?;
        ensure_new_entry(
            current.postponements.iter().map(|x| x.id.as_str()),
            postponement_id,
            "a postponement",
        )?;
        let mut fields = vec![(k::E_ID, postponement_id.into()), (k::E_AT, ts(now))];
        if let Some(until) = p.until_date {
            fields.push((k::E_UNTIL_DATE, ts(until)));
        }
        if let Some(h) = p.until_hours {
            fields.push((k::E_UNTIL_HOURS, h.into()));
        }
        fields.push((k::E_REASON, p.reason.as_str().into()));
        fields.push((k::E_BY, author.into()));
        self.append_entry(
            k::POSTPONEMENTS,
            current.updated_at,
            author,
            now,
            "postponing",
            fields,
        )
    }

    /// Records that the job was done at `at`, with the counter at `hours`
    /// (for an hours plan), as `author`.
    pub fn set_plan_done(
        &mut self,
        at: DateTime<Utc>,
        hours: Option<f64>,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_person("author", author)?;
        if let Some(h) = hours {
            keelson_model::counter::validate_total("last_done_hours", h)?;
        }
        let current = self.to_plan()?;
        let updated = updated_at_after(current.updated_at, now);
        let change = self.transact(author, now, |d| {
            d.put(ROOT, k::LAST_DONE_AT, ts(at))?;
            if let Some(h) = hours {
                d.put(ROOT, k::LAST_DONE_HOURS, h)?;
            }
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })?;
        change.ok_or_else(|| SyncError::Internal("recording the job done wrote nothing".into()))
    }

    pub(super) fn read_plan(&self) -> Result<Plan, SyncError> {
        let d = &self.doc;
        let h = read_header(d)?;
        let equipment_id = get_string(d, &ROOT, k::EQUIPMENT_ID)?;
        validate_record_id("equipment_id", &equipment_id).map_err(invalid_field)?;
        let counter_id = Some(get_string(d, &ROOT, k::COUNTER_ID)?).filter(|c| !c.is_empty());
        if let Some(c) = &counter_id {
            validate_record_id("counter_id", c).map_err(invalid_field)?;
        }
        let days = get_uint(d, &ROOT, k::INTERVAL_DAYS)?;
        let tolerance_days = get_uint(d, &ROOT, k::TOLERANCE_DAYS)?;
        let hours = get_number(d, &ROOT, k::INTERVAL_HOURS)?;
        let tolerance_hours = get_number(d, &ROOT, k::TOLERANCE_HOURS)?;
        let last_done_at = get_time(d, &ROOT, k::LAST_DONE_AT)?;
        let last_done_hours = get_optional(d, &ROOT, k::LAST_DONE_HOURS, get_number)?;
        // The creation validator holds the model's rules for these fields.
        let checked = NewPlan {
            equipment_id: equipment_id.clone(),
            title: get_string(d, &ROOT, k::TITLE)?,
            instructions: get_string(d, &ROOT, k::INSTRUCTIONS)?,
            interval_days: Some(days),
            interval_hours: Some(hours),
            counter_id: counter_id.clone(),
            tolerance_days,
            tolerance_hours,
            last_done_at: Some(last_done_at),
            last_done_hours,
        }
        .validated()
        .map_err(invalid_field)?;
        let postponements = read_postponements(d)?;
        Ok(Plan {
            id: h.id,
            vessel_id: h.vessel_id,
            equipment_id,
            title: checked.title,
            instructions: checked.instructions,
            interval_days: Some(days).filter(|d| *d > 0),
            interval_hours: Some(hours).filter(|h| *h > 0.0),
            counter_id,
            tolerance_days,
            tolerance_hours,
            last_done_at,
            last_done_hours,
            postponements,
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
        })
    }
}

fn get_uint(doc: &AutoCommit, obj: &ObjId, name: &str) -> Result<u32, SyncError> {
    let n = match get_scalar(doc, obj, name)? {
        ScalarValue::Uint(v) => u32::try_from(v).ok(),
        ScalarValue::Int(v) => u32::try_from(v).ok(),
        _ => None,
    };
    n.ok_or_else(|| SyncError::malformed(format!("plan: {name} is not a day count")))
}

fn read_postponements(doc: &AutoCommit) -> Result<Vec<Postponement>, SyncError> {
    let mut out = Vec::new();
    for map in list_maps(doc, &ROOT, k::POSTPONEMENTS)? {
        let id = get_string(doc, &map, k::E_ID)?;
        validate_record_id("postponement id", &id).map_err(invalid_field)?;
        let at = get_time(doc, &map, k::E_AT)?;
        let until_date = get_optional(doc, &map, k::E_UNTIL_DATE, get_time)?;
        let until_hours = get_optional(doc, &map, k::E_UNTIL_HOURS, get_number)?;
        let checked = NewPostponement {
            until_date,
            until_hours,
            reason: get_string(doc, &map, k::E_REASON)?,
        }
        .validated()
        .map_err(invalid_field)?;
        let by = get_string(doc, &map, k::E_BY)?;
        validate_person("postponement by", &by).map_err(invalid_field)?;
        out.push(Postponement {
            id,
            at,
            until_date,
            until_hours,
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

    fn new() -> NewPlan {
        NewPlan {
            equipment_id: "e-1".into(),
            title: "Change lube oil filter".into(),
            instructions: "Drain, change, refill".into(),
            interval_days: Some(90),
            interval_hours: Some(500.0),
            counter_id: Some("c-1".into()),
            tolerance_days: 3,
            tolerance_hours: 25.0,
            last_done_at: None,
            last_done_hours: Some(1000.0),
        }
    }

    #[test]
    fn create_patch_postpone_and_done_read_back() {
        let (mut a, create) =
            RecordDoc::create_plan("p-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let p = a.to_plan().unwrap();
        assert_eq!(p.interval_days, Some(90));
        assert_eq!(p.last_done_at, t(0));
        assert_eq!(p.last_done_hours, Some(1000.0));
        let mut b = RecordDoc::from_changes(&[create]).unwrap();
        let patch = PlanPatch {
            interval_days: Some(0),
            title: Some("Change LO filter".into()),
            ..PlanPatch::default()
        };
        let change = a.patch_plan(&patch, "chief", t(5)).unwrap().unwrap();
        assert!(a.patch_plan(&patch, "chief", t(6)).unwrap().is_none());
        let only_calendar = PlanPatch {
            interval_hours: Some(0.0),
            ..PlanPatch::default()
        };
        assert!(matches!(
            a.patch_plan(&only_calendar, "chief", t(7)),
            Err(SyncError::Invalid(_))
        ));
        let pp = NewPostponement {
            until_date: None,
            until_hours: Some(1600.0),
            reason: "In port next week".into(),
        };
        let post = b.postpone_plan("x-1", &pp, "office@shore", t(8)).unwrap();
        a.apply_changes(&[post]).unwrap();
        b.apply_changes(&[change]).unwrap();
        a.set_plan_done(t(9), Some(1510.0), "chief", t(9)).unwrap();
        let p = a.to_plan().unwrap();
        assert_eq!(p.interval_days, None);
        assert_eq!(p.title, "Change LO filter");
        assert_eq!(p.postponements[0].until_hours, Some(1600.0));
        assert_eq!((p.last_done_at, p.last_done_hours), (t(9), Some(1510.0)));
        assert!(a.add_comment("c-9", "chief", "hi", t(10)).is_err());
    }
}
