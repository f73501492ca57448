//! Spare-part documents.
//!
//! # Layout (schema 1)
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"part"` |
//! | `schema` | uint | layout version, [`SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `number` | string | the vessel's part number; never changes |
//! | `name`, `maker`, `maker_ref`, `unit` | string | free text |
//! | `min_stock` | f64 | the minimum stock |
//! | `equipment_ids` | map of record id to `true` | the equipment it fits |
//! | `locations` | map of location to `true` | where it is kept |
//! | `movements` | list of maps | `{id, at, location, delta, kind, reason, work_order_id?, by}` |
//! | `created_by` | string | who created the part |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//!
//! There is no stock field: the stock per location is the sum of the
//! movements' deltas there. Movements recorded on two sites while apart are
//! both appended to the list, so after the merge both count, where a stored
//! quantity written on both sites would keep one and lose the other. The
//! linked equipment and the locations are maps used as sets, like
//! equipment's tags, so an entry added on one site and another removed on
//! the other merge into the set both meant.

use super::{
    RecordDoc, ensure_new_entry, get_number, get_optional, get_string, get_time, invalid_field,
    key, list_maps, put_set, read_header, root_set, set_changes, sort_entries, updated_at_after,
    validate_person, validate_record_id,
};
use crate::SyncError;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
use chrono::{DateTime, Utc};
use keelson_model::part::{stock_levels, total_stock, validate_quantity};
use keelson_model::{Movement, MovementKind, NewMovement, NewPart, Part, PartPatch};

/// The `kind` of a part document.
pub const KIND: &str = "part";
/// The layout version written into new part documents.
pub const SCHEMA: u64 = 1;

mod k {
    pub(super) const NUMBER: &str = "number";
    pub(super) const NAME: &str = "name";
    pub(super) const MAKER: &str = "maker";
    pub(super) const MAKER_REF: &str = "maker_ref";
    pub(super) const UNIT: &str = "unit";
    pub(super) const MIN_STOCK: &str = "min_stock";
    pub(super) const EQUIPMENT_IDS: &str = "equipment_ids";
    pub(super) const LOCATIONS: &str = "locations";
    pub(super) const MOVEMENTS: &str = "movements";
    pub(super) const E_ID: &str = "id";
    pub(super) const E_AT: &str = "at";
    pub(super) const E_LOCATION: &str = "location";
    pub(super) const E_DELTA: &str = "delta";
    pub(super) const E_KIND: &str = "kind";
    pub(super) const E_REASON: &str = "reason";
    pub(super) const E_WORK_ORDER_ID: &str = "work_order_id";
    pub(super) const E_BY: &str = "by";
}

impl RecordDoc {
    /// Creates the document of a new part with the caller's actor (see
    /// [`RecordDoc::set_actor`]).
    pub fn create_part_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewPart,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        let new = new.clone().validated()?;
        Self::create_as(actor, (KIND, SCHEMA), id, vessel_id, author, now, |d| {
            d.put(ROOT, k::NUMBER, new.number.as_str())?;
            d.put(ROOT, k::NAME, new.name.as_str())?;
            d.put(ROOT, k::MAKER, new.maker.as_str())?;
            d.put(ROOT, k::MAKER_REF, new.maker_ref.as_str())?;
            d.put(ROOT, k::UNIT, new.unit.as_str())?;
            d.put(ROOT, k::MIN_STOCK, new.min_stock)?;
            put_set(d, k::EQUIPMENT_IDS, &new.equipment_ids)?;
            put_set(d, k::LOCATIONS, &new.locations)?;
            d.put_object(ROOT, k::MOVEMENTS, ObjType::List)?;
            Ok(())
        })
    }

    /// Reads the document as a [`Part`]; fails unless it is one.
    pub fn to_part(&self) -> Result<Part, SyncError> {
        self.to_kind(KIND, |r| match r {
            keelson_model::Record::Part(x) => Some(x),
            _ => None,
        })
    }

    /// Applies a patch as `author` and returns the change, or `None` when
    /// it changes nothing. Only the fields and set entries that differ are
    /// written.
    pub fn patch_part(
        &mut self,
        patch: &PartPatch,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let patch = patch.clone().validated()?;
        validate_person("author", author)?;
        let current = self.to_part()?;
        let mut texts: Vec<(&'static str, String)> = Vec::new();
        let mut differs = |k: &'static str, new: &Option<String>, old: &str| {
            if let Some(new) = new.as_deref().filter(|n| *n != old) {
                texts.push((k, new.to_owned()));
            }
        };
        differs(k::NAME, &patch.name, &current.name);
        differs(k::MAKER, &patch.maker, &current.maker);
        differs(k::MAKER_REF, &patch.maker_ref, &current.maker_ref);
        differs(k::UNIT, &patch.unit, &current.unit);
        let min_stock = patch.min_stock.filter(|m| *m != current.min_stock);
        let equipment = set_changes(patch.equipment_ids.as_deref(), &current.equipment_ids);
        let locations = set_changes(patch.locations.as_deref(), &current.locations);
        if texts.is_empty() && min_stock.is_none() && equipment.is_empty() && locations.is_empty() {
            return Ok(None);
        }
        let equipment_obj = root_set(&self.doc, k::EQUIPMENT_IDS)?.0;
        let locations_obj = root_set(&self.doc, k::LOCATIONS)?.0;
        let updated = updated_at_after(current.updated_at, now);
        self.transact(author, now, |d| {
            for (k, v) in &texts {
                d.put(ROOT, *k, v.as_str())?;
            }
            if let Some(m) = min_stock {
                d.put(ROOT, k::MIN_STOCK, m)?;
            }
            equipment.write(d, &equipment_obj)?;
            locations.write(d, &locations_obj)?;
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })
    }

    /// Appends a stock movement as `author`. Who may record which kind,
    /// and whether the stock may go that low, are the caller's rules; this
    /// checks the movement and that its id is new.
    pub fn add_movement(
        &mut self,
        movement_id: &str,
        movement: &NewMovement,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", movement_id)?;
        validate_person("author", author)?;
        let movement = movement.clone().validated()?;
        if let Some(w) = &movement.work_order_id {
            validate_record_id("work_order_id", w)?;
        }
        let current = self.to_part()?;
        ensure_new_entry(
            current.movements.iter().map(|m| m.id.as_str()),
            movement_id,
            "a movement",
        )?;
        let mut fields = vec![
            (k::E_ID, movement_id.into()),
            (k::E_AT, ScalarValue::Timestamp(now.timestamp_millis())),
            (k::E_LOCATION, movement.location.as_str().into()),
            (k::E_DELTA, movement.delta().into()),
            (k::E_KIND, movement.kind.as_str().into()),
            (k::E_REASON, movement.reason.as_str().into()),
            (k::E_BY, author.into()),
        ];
        if let Some(w) = &movement.work_order_id {
            fields.push((k::E_WORK_ORDER_ID, w.as_str().into()));
        }
        self.append_entry(
            k::MOVEMENTS,
            current.updated_at,
            author,
            now,
            "recording a stock movement",
            fields,
        )
    }

    pub(super) fn read_part(&self) -> Result<Part, SyncError> {
        let d = &self.doc;
        let h = read_header(d)?;
        // The creation validator holds the model's rules for every field.
        let checked = NewPart {
            number: get_string(d, &ROOT, k::NUMBER)?,
            name: get_string(d, &ROOT, k::NAME)?,
            maker: get_string(d, &ROOT, k::MAKER)?,
            maker_ref: get_string(d, &ROOT, k::MAKER_REF)?,
            unit: get_string(d, &ROOT, k::UNIT)?,
            equipment_ids: root_set(d, k::EQUIPMENT_IDS)?.1,
            min_stock: get_number(d, &ROOT, k::MIN_STOCK)?,
            locations: root_set(d, k::LOCATIONS)?.1,
        }
        .validated()
        .map_err(invalid_field)?;
        for e in &checked.equipment_ids {
            validate_record_id("equipment_ids", e).map_err(invalid_field)?;
        }
        let movements = read_movements(d)?;
        let stock = stock_levels(&checked.locations, &movements);
        let total = total_stock(&stock);
        Ok(Part {
            id: h.id,
            vessel_id: h.vessel_id,
            number: checked.number,
            name: checked.name,
            maker: checked.maker,
            maker_ref: checked.maker_ref,
            unit: checked.unit,
            equipment_ids: checked.equipment_ids,
            below_minimum: total < checked.min_stock,
            min_stock: checked.min_stock,
            locations: checked.locations,
            movements,
            stock,
            total,
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
        })
    }
}

fn read_movements(doc: &AutoCommit) -> Result<Vec<Movement>, SyncError> {
    let mut out = Vec::new();
    for map in list_maps(doc, &ROOT, k::MOVEMENTS)? {
        let id = get_string(doc, &map, k::E_ID)?;
        validate_record_id("movement id", &id).map_err(invalid_field)?;
        let at = get_time(doc, &map, k::E_AT)?;
        let kind = get_string(doc, &map, k::E_KIND)?
            .parse::<MovementKind>()
            .map_err(invalid_field)?;
        let delta = get_number(doc, &map, k::E_DELTA)?;
        // The movement as a user would have entered it holds the model's
        // rules: the sign that goes with the kind, a reason for an
        // adjustment, the location's form.
        let entered = NewMovement {
            kind,
            location: get_string(doc, &map, k::E_LOCATION)?,
            quantity: if kind == MovementKind::Consumption {
                -delta
            } else {
                delta
            },
            reason: get_string(doc, &map, k::E_REASON)?,
            work_order_id: None,
        }
        .validated()
        .map_err(invalid_field)?;
        validate_quantity("delta", delta.abs()).map_err(invalid_field)?;
        let work_order_id = get_optional(doc, &map, k::E_WORK_ORDER_ID, get_string)?;
        if let Some(w) = &work_order_id {
            validate_record_id("work_order_id", w).map_err(invalid_field)?;
        }
        let by = get_string(doc, &map, k::E_BY)?;
        validate_person("movement by", &by).map_err(invalid_field)?;
        out.push(Movement {
            id,
            at,
            location: entered.location,
            delta,
            kind,
            reason: entered.reason,
            work_order_id,
            by,
        });
    }
    sort_entries(&mut out, |m| (m.at, m.id.as_str()));
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

    fn new() -> NewPart {
        NewPart {
            number: "ME-FP-003".into(),
            name: "Fuel pump plunger and barrel".into(),
            maker: "MAN".into(),
            maker_ref: "0123-456".into(),
            unit: "pcs".into(),
            equipment_ids: vec!["e-1".into()],
            min_stock: 2.0,
            locations: vec!["ER store shelf 3".into()],
        }
    }

    fn movement(kind: MovementKind, quantity: f64) -> NewMovement {
        NewMovement {
            kind,
            location: "ER store shelf 3".into(),
            quantity,
            reason: String::new(),
            work_order_id: None,
        }
    }

    /// A receipt on board and a consumption ashore, made while apart, both
    /// count after the merge, in either order.
    #[test]
    fn concurrent_movements_both_count() {
        let (mut a, create) =
            RecordDoc::create_part_as(b"ship", "p-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let p = a.to_part().unwrap();
        assert_eq!((p.total, p.below_minimum), (0.0, true));
        let mut b = RecordDoc::from_changes(&[create]).unwrap();
        let first = a
            .add_movement("m-1", &movement(MovementKind::Receipt, 5.0), "second", t(1))
            .unwrap();
        b.apply_changes(std::slice::from_ref(&first)).unwrap();
        let on_board = a
            .add_movement(
                "m-2",
                &movement(MovementKind::Receipt, 3.0),
                "second",
                t(10),
            )
            .unwrap();
        let mut used = movement(MovementKind::Consumption, 1.0);
        used.work_order_id = Some("w-1".into());
        let ashore = b.add_movement("m-3", &used, "third", t(11)).unwrap();
        a.apply_changes(&[ashore]).unwrap();
        b.apply_changes(&[on_board]).unwrap();
        let (pa, pb) = (a.to_part().unwrap(), b.to_part().unwrap());
        assert_eq!(pa, pb);
        assert_eq!(pa.total, 7.0);
        assert_eq!(pa.stock_at("ER store shelf 3"), 7.0);
        assert!(!pa.below_minimum);
        assert_eq!(pa.movements[2].work_order_id.as_deref(), Some("w-1"));
    }

    #[test]
    fn sets_merge_and_patches_write_only_what_differs() {
        let (mut a, _) =
            RecordDoc::create_part_as(b"ship", "p-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let patch = PartPatch {
            locations: Some(vec!["ER store shelf 3".into(), "Bosun store".into()]),
            min_stock: Some(4.0),
            ..PartPatch::default()
        };
        assert!(a.patch_part(&patch, "chief", t(1)).unwrap().is_some());
        assert!(a.patch_part(&patch, "chief", t(2)).unwrap().is_none());
        let p = a.to_part().unwrap();
        assert_eq!(p.locations, ["Bosun store", "ER store shelf 3"]);
        assert_eq!(p.min_stock, 4.0);
    }
}
