//! Equipment documents.
//!
//! # Layout (schema 1)
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"equipment"` |
//! | `schema` | uint | layout version, [`SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `code` | string | the hierarchical code; never changes |
//! | `name`, `maker`, `model`, `serial` | string | free text |
//! | `level`, `criticality` | string | the model's snake_case names |
//! | `tags` | map of tag name to `true` | the linked tags |
//! | `created_by` | string | who created the record |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//!
//! The linked tags are a map used as a set rather than a list: adding one
//! tag on board while another is removed ashore then merges into the set
//! both meant, where two rewritten lists would interleave or duplicate.

use super::{
    RecordDoc, get_string, invalid_field, key, put_set, random_actor, read_header, root_set,
    set_changes, updated_at_after, validate_person,
};
use crate::SyncError;
use automerge::ROOT;
use automerge::transaction::Transactable;
use chrono::{DateTime, Utc};
use keelson_model::equipment::{parent_code, validate_code, validate_tags};
use keelson_model::{Criticality, Equipment, EquipmentPatch, Level, NewEquipment, ValidationError};

/// The `kind` of an equipment document.
pub const KIND: &str = "equipment";
/// The layout version written into new equipment documents.
pub const SCHEMA: u64 = 1;

mod k {
    pub(super) const CODE: &str = "code";
    pub(super) const NAME: &str = "name";
    pub(super) const LEVEL: &str = "level";
    pub(super) const CRITICALITY: &str = "criticality";
    pub(super) const MAKER: &str = "maker";
    pub(super) const MODEL: &str = "model";
    pub(super) const SERIAL: &str = "serial";
    pub(super) const TAGS: &str = "tags";
}

impl RecordDoc {
    /// Creates the document of a new piece of equipment with a fresh random
    /// actor.
    pub fn create_equipment(
        id: &str,
        vessel_id: &str,
        new: &NewEquipment,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        Self::create_equipment_as(random_actor()?.to_bytes(), id, vessel_id, new, author, now)
    }

    /// [`RecordDoc::create_equipment`] with a caller-chosen actor, under
    /// the conditions listed on [`RecordDoc::set_actor`].
    pub fn create_equipment_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewEquipment,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        let new = new.clone().validated()?;
        Self::create_as(actor, (KIND, SCHEMA), id, vessel_id, author, now, |d| {
            d.put(ROOT, k::CODE, new.code.as_str())?;
            d.put(ROOT, k::NAME, new.name.as_str())?;
            d.put(ROOT, k::LEVEL, new.level.as_str())?;
            d.put(ROOT, k::CRITICALITY, new.criticality.as_str())?;
            d.put(ROOT, k::MAKER, new.maker.as_str())?;
            d.put(ROOT, k::MODEL, new.model.as_str())?;
            d.put(ROOT, k::SERIAL, new.serial.as_str())?;
            put_set(d, k::TAGS, &new.tags)?;
            Ok(())
        })
    }

    /// Reads the document as [`Equipment`]; fails unless it is one.
    pub fn to_equipment(&self) -> Result<Equipment, SyncError> {
        self.to_kind(KIND, |r| match r {
            keelson_model::Record::Equipment(x) => Some(x),
            _ => None,
        })
    }

    /// Applies a patch as `author` and returns the change, or `None` when
    /// the patch changes nothing. Only fields that differ are written.
    pub fn patch_equipment(
        &mut self,
        patch: &EquipmentPatch,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let patch = patch.clone().validated()?;
        validate_person("author", author)?;
        let current = self.to_equipment()?;
        if patch.level == Some(Level::Component) && current.parent_code.is_none() {
            return Err(ValidationError::new(
                "level",
                "a component belongs to a system: a top-level code is a system",
            )
            .into());
        }
        let mut writes: Vec<(&'static str, String)> = Vec::new();
        let mut differs = |k: &'static str, new: Option<&str>, old: &str| {
            if let Some(new) = new.filter(|n| *n != old) {
                writes.push((k, new.to_owned()));
            }
        };
        differs(k::NAME, patch.name.as_deref(), &current.name);
        differs(
            k::LEVEL,
            patch.level.map(Level::as_str),
            current.level.as_str(),
        );
        differs(
            k::CRITICALITY,
            patch.criticality.map(Criticality::as_str),
            current.criticality.as_str(),
        );
        differs(k::MAKER, patch.maker.as_deref(), &current.maker);
        differs(k::MODEL, patch.model.as_deref(), &current.model);
        differs(k::SERIAL, patch.serial.as_deref(), &current.serial);
        let tags = set_changes(patch.tags.as_deref(), &current.tags);
        if writes.is_empty() && tags.is_empty() {
            return Ok(None);
        }
        let tags_obj = root_set(&self.doc, k::TAGS)?.0;
        let updated = updated_at_after(current.updated_at, now);
        self.transact(author, now, |d| {
            for (k, v) in &writes {
                d.put(ROOT, *k, v.as_str())?;
            }
            tags.write(d, &tags_obj)?;
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })
    }

    pub(super) fn read_equipment(&self) -> Result<Equipment, SyncError> {
        let d = &self.doc;
        let h = read_header(d)?;
        let code = get_string(d, &ROOT, k::CODE)?;
        validate_code(&code).map_err(invalid_field)?;
        let level = get_string(d, &ROOT, k::LEVEL)?
            .parse::<Level>()
            .map_err(invalid_field)?;
        let criticality = get_string(d, &ROOT, k::CRITICALITY)?
            .parse::<Criticality>()
            .map_err(invalid_field)?;
        let name = get_string(d, &ROOT, k::NAME)?;
        let maker = get_string(d, &ROOT, k::MAKER)?;
        let model = get_string(d, &ROOT, k::MODEL)?;
        let serial = get_string(d, &ROOT, k::SERIAL)?;
        // The patch validator holds the model's rules for these texts.
        EquipmentPatch {
            name: Some(name.clone()),
            maker: Some(maker.clone()),
            model: Some(model.clone()),
            serial: Some(serial.clone()),
            ..EquipmentPatch::default()
        }
        .validated()
        .map_err(invalid_field)?;
        let tags = validate_tags(&root_set(d, k::TAGS)?.1).map_err(invalid_field)?;
        Ok(Equipment {
            id: h.id,
            vessel_id: h.vessel_id,
            parent_code: parent_code(&code).map(str::to_owned),
            code,
            name,
            level,
            criticality,
            maker,
            model,
            serial,
            tags,
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use automerge::AutoCommit;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn new() -> NewEquipment {
        NewEquipment {
            code: "6.1".into(),
            name: "Main engine".into(),
            level: Level::System,
            criticality: Criticality::Critical,
            maker: "MAN".into(),
            model: "6S50ME".into(),
            serial: "A123".into(),
            tags: vec!["me_rpm".into()],
        }
    }

    #[test]
    fn tags_merge_as_a_set_and_history_names_authors() {
        let (mut a, create) =
            RecordDoc::create_equipment("e-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let mut b = RecordDoc::from_changes(&[create]).unwrap();
        let add = a
            .patch_equipment(
                &EquipmentPatch {
                    tags: Some(vec!["me_rpm".into(), "me_exh_temp".into()]),
                    ..EquipmentPatch::default()
                },
                "chief",
                t(10),
            )
            .unwrap()
            .unwrap();
        let drop = b
            .patch_equipment(
                &EquipmentPatch {
                    tags: Some(vec![]),
                    name: Some("ME".into()),
                    ..EquipmentPatch::default()
                },
                "second",
                t(11),
            )
            .unwrap()
            .unwrap();
        a.apply_changes(&[drop]).unwrap();
        b.apply_changes(&[add]).unwrap();
        let ea = a.to_equipment().unwrap();
        assert_eq!(ea, b.to_equipment().unwrap());
        assert_eq!(ea.tags, ["me_exh_temp"]);
        assert_eq!(ea.name, "ME");
        assert_eq!(ea.parent_code.as_deref(), Some("6"));
        let authors: Vec<_> = a
            .history()
            .into_iter()
            .map(|h| (h.author.unwrap(), h.at.unwrap()))
            .collect();
        assert_eq!(authors.len(), 3);
        assert_eq!(authors[0], ("chief".to_owned(), t(0)));
        assert!(authors.contains(&("second".to_owned(), t(11))));
        assert!(a.to_fault().is_err());
        assert!(a.add_comment("c-1", "chief", "hi", t(12)).is_err());
    }

    #[test]
    fn invalid_equipment_is_refused() {
        let bad = NewEquipment {
            code: "6.x".into(),
            ..new()
        };
        assert!(matches!(
            RecordDoc::create_equipment("e-1", "imo9321483", &bad, "chief", t(0)),
            Err(SyncError::Invalid(_))
        ));
        let (mut a, _) =
            RecordDoc::create_equipment("e-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let mut evil = AutoCommit::load(&a.save()).unwrap();
        evil.put(ROOT, "code", "6..1").unwrap();
        evil.commit();
        let change = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[change]),
            Err(SyncError::Rejected(_))
        ));
    }
}
