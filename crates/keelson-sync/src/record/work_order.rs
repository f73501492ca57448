//! Work-order documents.
//!
//! # Layout (schema 1)
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"work_order"` |
//! | `schema` | uint | layout version, [`SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `title`, `description`, `work_done` | string | free text |
//! | `equipment_id` | string | the equipment record it is about |
//! | `plan_id` | string, absent for none | the maintenance plan that generated it; never changes |
//! | `assignee` | string | a user name, or empty |
//! | `status` | string | open, in_progress, done or cancelled (never signed_off) |
//! | `entries` | list of maps | `{id, author, text, hours, at, parts?}`, `hours` an f64; `parts` (absent for none) a list of `{part_id, location, quantity}` |
//! | `sign_offs` | list of maps | `{id, author, note, at}` |
//! | `created_by` | string | who opened it |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//! | `comments` | list of maps | as in faults |
//! | `attachments` | list of maps, absent until the first | as in faults |
//!
//! The sign-off is an entry appended to `sign_offs`, not a status value:
//! automerge keeps every concurrent insert into a list, while a concurrent
//! write to the `status` field could win over it. Reading the document says
//! signed off as soon as `sign_offs` has an entry, whatever `status` holds,
//! so no concurrent or later edit of the fields can undo a sign-off. Removing
//! or rewriting an entry is refused by the records layer's sync rules.
//!
//! The hours spent are the sum of the entries' hours rather than a field of
//! their own, so hours recorded on two sites while apart add up after a
//! merge instead of one total overwriting the other.

use super::{
    Entry, RecordDoc, ensure_new_entry, get_number, get_optional, get_string, get_time,
    invalid_field, key, list_maps, random_actor, read_comments, read_header, sort_entries,
    updated_at_after, validate_person, validate_record_id,
};
use crate::SyncError;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ScalarValue};
use chrono::{DateTime, Utc};
use keelson_model::work_order::validate_hours;
use keelson_model::{
    NewSignOff, NewWorkEntry, NewWorkOrder, PartUse, SignOff, WorkEntry, WorkOrder, WorkOrderPatch,
    WorkStatus,
};

/// The `kind` of a work-order document.
pub const KIND: &str = "work_order";
/// The layout version written into new work-order documents.
pub const SCHEMA: u64 = 1;

mod k {
    pub(super) const TITLE: &str = "title";
    pub(super) const DESCRIPTION: &str = "description";
    pub(super) const EQUIPMENT_ID: &str = "equipment_id";
    pub(super) const PLAN_ID: &str = "plan_id";
    pub(super) const ASSIGNEE: &str = "assignee";
    pub(super) const STATUS: &str = "status";
    pub(super) const WORK_DONE: &str = "work_done";
    pub(super) const ENTRIES: &str = "entries";
    pub(super) const SIGN_OFFS: &str = "sign_offs";
    pub(super) const E_ID: &str = "id";
    pub(super) const E_AUTHOR: &str = "author";
    pub(super) const E_TEXT: &str = "text";
    pub(super) const E_HOURS: &str = "hours";
    pub(super) const E_NOTE: &str = "note";
    pub(super) const E_AT: &str = "at";
    pub(super) const E_PARTS: &str = "parts";
    pub(super) const P_PART_ID: &str = "part_id";
    pub(super) const P_LOCATION: &str = "location";
    pub(super) const P_QUANTITY: &str = "quantity";
}

impl RecordDoc {
    /// Creates the document of a new work order (status open) with a fresh
    /// random actor.
    pub fn create_work_order(
        id: &str,
        vessel_id: &str,
        new: &NewWorkOrder,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        Self::create_work_order_as(random_actor()?.to_bytes(), id, vessel_id, new, author, now)
    }

    /// [`RecordDoc::create_work_order`] with a caller-chosen actor, under
    /// the conditions listed on [`RecordDoc::set_actor`].
    pub fn create_work_order_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewWorkOrder,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        let new = new.clone().validated()?;
        validate_record_id("equipment_id", &new.equipment_id)?;
        if let Some(plan) = &new.plan_id {
            validate_record_id("plan_id", plan)?;
        }
        Self::create_as(actor, (KIND, SCHEMA), id, vessel_id, author, now, |d| {
            d.put(ROOT, k::TITLE, new.title.as_str())?;
            d.put(ROOT, k::DESCRIPTION, new.description.as_str())?;
            d.put(ROOT, k::EQUIPMENT_ID, new.equipment_id.as_str())?;
            // Written only when there is a plan, so work orders made
            // before plans existed and those made by hand read the same.
            if let Some(plan) = &new.plan_id {
                d.put(ROOT, k::PLAN_ID, plan.as_str())?;
            }
            d.put(ROOT, k::ASSIGNEE, new.assignee.as_str())?;
            d.put(ROOT, k::STATUS, WorkStatus::Open.as_str())?;
            d.put(ROOT, k::WORK_DONE, "")?;
            d.put_object(ROOT, k::ENTRIES, ObjType::List)?;
            d.put_object(ROOT, k::SIGN_OFFS, ObjType::List)?;
            d.put_object(ROOT, key::COMMENTS, ObjType::List)?;
            Ok(())
        })
    }

    /// Reads the document as a [`WorkOrder`]; fails unless it is one.
    pub fn to_work_order(&self) -> Result<WorkOrder, SyncError> {
        self.to_kind(KIND, |r| match r {
            keelson_model::Record::WorkOrder(x) => Some(x),
            _ => None,
        })
    }

    /// Applies a patch as `author` and returns the change, or `None` when
    /// the patch changes nothing. Status moves are a rule of the caller.
    pub fn patch_work_order(
        &mut self,
        patch: &WorkOrderPatch,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let patch = patch.clone().validated()?;
        validate_person("author", author)?;
        let current = self.to_work_order()?;
        let mut writes: Vec<(&'static str, String)> = Vec::new();
        let mut differs = |k: &'static str, new: Option<&str>, old: &str| {
            if let Some(new) = new.filter(|n| *n != old) {
                writes.push((k, new.to_owned()));
            }
        };
        differs(k::TITLE, patch.title.as_deref(), &current.title);
        differs(
            k::DESCRIPTION,
            patch.description.as_deref(),
            &current.description,
        );
        differs(k::ASSIGNEE, patch.assignee.as_deref(), &current.assignee);
        differs(
            k::STATUS,
            patch.status.map(WorkStatus::as_str),
            current.status.as_str(),
        );
        differs(k::WORK_DONE, patch.work_done.as_deref(), &current.work_done);
        if writes.is_empty() {
            return Ok(None);
        }
        let updated = updated_at_after(current.updated_at, now);
        self.transact(author, now, |d| {
            for (k, v) in &writes {
                d.put(ROOT, *k, v.as_str())?;
            }
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })
    }

    /// Appends an entry to the work log as `author` and returns the change.
    pub fn add_work_entry(
        &mut self,
        entry_id: &str,
        entry: &NewWorkEntry,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", entry_id)?;
        validate_person("author", author)?;
        let entry = entry.clone().validated()?;
        let current = self.to_work_order()?;
        ensure_new_entry(
            current.entries.iter().map(|e| e.id.as_str()),
            entry_id,
            "an entry",
        )?;
        self.append_nested_entry(
            k::ENTRIES,
            current.updated_at,
            author,
            now,
            "adding a work entry",
            Entry {
                fields: vec![
                    (k::E_ID, entry_id.into()),
                    (k::E_AUTHOR, author.into()),
                    (k::E_TEXT, entry.text.as_str().into()),
                    (k::E_HOURS, entry.hours.into()),
                    (k::E_AT, ScalarValue::Timestamp(now.timestamp_millis())),
                ],
                // Entries without parts keep the layout they had before
                // parts existed.
                lists: if entry.parts.is_empty() {
                    vec![]
                } else {
                    vec![(
                        k::E_PARTS,
                        entry
                            .parts
                            .iter()
                            .map(|p| {
                                vec![
                                    (k::P_PART_ID, p.part_id.as_str().into()),
                                    (k::P_LOCATION, p.location.as_str().into()),
                                    (k::P_QUANTITY, p.quantity.into()),
                                ]
                            })
                            .collect(),
                    )]
                },
            },
        )
    }

    /// Appends the sign-off entry as `author` and returns the change. Whether
    /// the work order may be signed off is a rule of the caller.
    pub fn sign_off_work_order(
        &mut self,
        sign_off_id: &str,
        sign_off: &NewSignOff,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", sign_off_id)?;
        validate_person("author", author)?;
        let sign_off = sign_off.clone().validated()?;
        let current = self.to_work_order()?;
        self.append_entry(
            k::SIGN_OFFS,
            current.updated_at,
            author,
            now,
            "signing off",
            vec![
                (k::E_ID, sign_off_id.into()),
                (k::E_AUTHOR, author.into()),
                (k::E_NOTE, sign_off.note.as_str().into()),
                (k::E_AT, ScalarValue::Timestamp(now.timestamp_millis())),
            ],
        )
    }

    pub(super) fn read_work_order(&self) -> Result<WorkOrder, SyncError> {
        let d = &self.doc;
        let h = read_header(d)?;
        let title = get_string(d, &ROOT, k::TITLE)?;
        let description = get_string(d, &ROOT, k::DESCRIPTION)?;
        let assignee = get_string(d, &ROOT, k::ASSIGNEE)?;
        let work_done = get_string(d, &ROOT, k::WORK_DONE)?;
        let stored_status = get_string(d, &ROOT, k::STATUS)?
            .parse::<WorkStatus>()
            .map_err(invalid_field)?;
        // The patch validator holds the model's rules for these fields,
        // including that the status field never says signed off by itself.
        WorkOrderPatch {
            title: Some(title.clone()),
            description: Some(description.clone()),
            assignee: Some(assignee.clone()),
            work_done: Some(work_done.clone()),
            status: Some(stored_status),
        }
        .validated()
        .map_err(invalid_field)?;
        let equipment_id = get_string(d, &ROOT, k::EQUIPMENT_ID)?;
        validate_record_id("equipment_id", &equipment_id).map_err(invalid_field)?;
        let plan_id = get_optional(d, &ROOT, k::PLAN_ID, get_string)?;
        if let Some(plan) = &plan_id {
            validate_record_id("plan_id", plan).map_err(invalid_field)?;
        }
        let entries = read_entries(d)?;
        let sign_offs = read_sign_offs(d)?;
        let hours_spent = entries.iter().map(|e| e.hours).sum();
        let status = if sign_offs.is_empty() {
            stored_status
        } else {
            WorkStatus::SignedOff
        };
        Ok(WorkOrder {
            id: h.id,
            vessel_id: h.vessel_id,
            title,
            equipment_id,
            plan_id,
            description,
            assignee,
            status,
            work_done,
            hours_spent,
            entries,
            sign_offs,
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
            comments: read_comments(d)?,
            attachments: super::attachment::read_attachments(d)?,
        })
    }
}

fn read_entries(doc: &AutoCommit) -> Result<Vec<WorkEntry>, SyncError> {
    let mut out = Vec::new();
    for map in list_maps(doc, &ROOT, k::ENTRIES)? {
        let id = get_string(doc, &map, k::E_ID)?;
        validate_record_id("entry id", &id).map_err(invalid_field)?;
        let author = get_string(doc, &map, k::E_AUTHOR)?;
        validate_person("entry author", &author).map_err(invalid_field)?;
        let text = get_string(doc, &map, k::E_TEXT)?;
        let hours = get_number(doc, &map, k::E_HOURS)?;
        let parts = match get_optional(doc, &map, k::E_PARTS, list_maps)? {
            None => vec![],
            Some(maps) => maps
                .iter()
                .map(|p| {
                    Ok(PartUse {
                        part_id: get_string(doc, p, k::P_PART_ID)?,
                        location: get_string(doc, p, k::P_LOCATION)?,
                        quantity: get_number(doc, p, k::P_QUANTITY)?,
                    })
                })
                .collect::<Result<Vec<_>, SyncError>>()?,
        };
        let checked = NewWorkEntry {
            text: text.clone(),
            hours,
            parts,
        }
        .validated()
        .map_err(invalid_field)?;
        validate_hours(hours).map_err(invalid_field)?;
        let at = get_time(doc, &map, k::E_AT)?;
        out.push(WorkEntry {
            id,
            author,
            at,
            text,
            hours,
            parts: checked.parts,
        });
    }
    sort_entries(&mut out, |e| (e.at, e.id.as_str()));
    Ok(out)
}

fn read_sign_offs(doc: &AutoCommit) -> Result<Vec<SignOff>, SyncError> {
    let mut out = Vec::new();
    for map in list_maps(doc, &ROOT, k::SIGN_OFFS)? {
        let id = get_string(doc, &map, k::E_ID)?;
        validate_record_id("sign-off id", &id).map_err(invalid_field)?;
        let author = get_string(doc, &map, k::E_AUTHOR)?;
        validate_person("sign-off author", &author).map_err(invalid_field)?;
        let note = get_string(doc, &map, k::E_NOTE)?;
        NewSignOff { note: note.clone() }
            .validated()
            .map_err(invalid_field)?;
        let at = get_time(doc, &map, k::E_AT)?;
        out.push(SignOff {
            id,
            author,
            at,
            note,
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

    fn new() -> NewWorkOrder {
        NewWorkOrder {
            title: "Overhaul ME fuel pump 3".into(),
            equipment_id: "e-1".into(),
            description: String::new(),
            assignee: "second".into(),
            plan_id: None,
        }
    }

    fn status(s: WorkStatus) -> WorkOrderPatch {
        WorkOrderPatch {
            status: Some(s),
            ..WorkOrderPatch::default()
        }
    }

    /// The ship signs off while the shore's copy (or a second handler)
    /// concurrently reopens the job and edits it; after the merge, in either
    /// order, the work order still reads signed off with its sign-off.
    #[test]
    fn a_concurrent_edit_does_not_undo_a_sign_off() {
        let (mut a, create) =
            RecordDoc::create_work_order("w-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let mut changes = vec![create];
        changes.push(
            a.patch_work_order(&status(WorkStatus::InProgress), "second", t(1))
                .unwrap()
                .unwrap(),
        );
        let entry = NewWorkEntry {
            text: "Replaced the plunger".into(),
            hours: 2.5,
            parts: vec![],
        };
        changes.push(a.add_work_entry("e-1", &entry, "second", t(2)).unwrap());
        changes.push(
            a.patch_work_order(&status(WorkStatus::Done), "second", t(3))
                .unwrap()
                .unwrap(),
        );
        let mut b = RecordDoc::from_changes(&changes).unwrap();

        let sign = a
            .sign_off_work_order("s-1", &NewSignOff::default(), "chief", t(10))
            .unwrap();
        let reopen = b
            .patch_work_order(
                &WorkOrderPatch {
                    status: Some(WorkStatus::InProgress),
                    title: Some("Overhaul ME fuel pump 3 again".into()),
                    ..WorkOrderPatch::default()
                },
                "third",
                t(11),
            )
            .unwrap()
            .unwrap();
        let more = b
            .add_work_entry(
                "e-2",
                &NewWorkEntry {
                    text: "Tested".into(),
                    hours: 0.5,
                    parts: vec![],
                },
                "third",
                t(12),
            )
            .unwrap();
        a.apply_changes(&[reopen.clone(), more.clone()]).unwrap();
        b.apply_changes(std::slice::from_ref(&sign)).unwrap();
        let wa = a.to_work_order().unwrap();
        let wb = b.to_work_order().unwrap();
        assert_eq!(wa, wb);
        assert_eq!(wa.status, WorkStatus::SignedOff);
        assert_eq!(wa.sign_offs.len(), 1);
        assert_eq!(wa.sign_offs[0].author, "chief");
        assert_eq!(wa.title, "Overhaul ME fuel pump 3 again");
        assert!((wa.hours_spent - 3.0).abs() < 1e-9);

        // A later status edit on top of the merge does not undo it either.
        let later = a
            .patch_work_order(&status(WorkStatus::Open), "third", t(20))
            .unwrap()
            .unwrap();
        b.apply_changes(&[later]).unwrap();
        assert_eq!(b.to_work_order().unwrap().status, WorkStatus::SignedOff);
    }

    #[test]
    fn a_forged_signed_off_status_is_refused() {
        let (mut a, _) =
            RecordDoc::create_work_order("w-1", "imo9321483", &new(), "chief", t(0)).unwrap();
        let mut evil = AutoCommit::load(&a.save()).unwrap();
        evil.put(ROOT, "status", "signed_off").unwrap();
        evil.commit();
        let change = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[change]),
            Err(SyncError::Rejected(_))
        ));
        assert_eq!(a.to_work_order().unwrap().status, WorkStatus::Open);
    }
}
