//! Requisition documents (order requests for spare parts).
//!
//! # Layout (schema 1)
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"requisition"` |
//! | `schema` | uint | layout version, [`SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `note` | string | free text |
//! | `lines` | map of part id to f64 | how many of each part to order |
//! | `submissions` | list of maps | `{id, by, at}` |
//! | `decisions` | list of maps, absent until the first | `{id, by, at, approved, note}`, the shore office's |
//! | `created_by` | string | who drafted it |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//!
//! The lines are a map keyed by part, so two edits of different lines
//! merge line by line. Submitting appends to `submissions` rather than
//! writing a status, for the reason work orders keep their sign-offs in a
//! list: a concurrent edit cannot take a submission back. Decisions are
//! appended by the shore office alone, so the list is created by one site
//! and two sites never race to create it.

use super::{
    RecordDoc, get_number, get_string, get_time, invalid_field, key, list_maps, read_header,
    sort_entries, updated_at_after, validate_person, validate_record_id,
};
use crate::SyncError;
use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, Utc};
use keelson_model::part::validate_lines;
use keelson_model::{
    Decision, NewDecision, NewRequisition, Requisition, RequisitionLine, RequisitionPatch,
    RequisitionStatus, Submission,
};

/// The `kind` of a requisition document.
pub const KIND: &str = "requisition";
/// The layout version written into new requisition documents.
pub const SCHEMA: u64 = 1;

mod k {
    pub(super) const NOTE: &str = "note";
    pub(super) const LINES: &str = "lines";
    pub(super) const SUBMISSIONS: &str = "submissions";
    pub(super) const DECISIONS: &str = "decisions";
    pub(super) const E_APPROVED: &str = "approved";
    pub(super) const E_NOTE: &str = "note";
    pub(super) const E_ID: &str = "id";
    pub(super) const E_BY: &str = "by";
    pub(super) const E_AT: &str = "at";
}

impl RecordDoc {
    /// Creates the document of a new requisition with the caller's actor (see
    /// [`RecordDoc::set_actor`]).
    pub fn create_requisition_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewRequisition,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        let new = new.clone().validated()?;
        for l in &new.lines {
            validate_record_id("lines", &l.part_id)?;
        }
        Self::create_as(actor, (KIND, SCHEMA), id, vessel_id, author, now, |d| {
            d.put(ROOT, k::NOTE, new.note.as_str())?;
            let lines = d.put_object(ROOT, k::LINES, ObjType::Map)?;
            for l in &new.lines {
                d.put(&lines, l.part_id.as_str(), l.quantity)?;
            }
            d.put_object(ROOT, k::SUBMISSIONS, ObjType::List)?;
            Ok(())
        })
    }

    /// Reads the document as a [`Requisition`]; fails unless it is one.
    pub fn to_requisition(&self) -> Result<Requisition, SyncError> {
        self.to_kind(KIND, |r| match r {
            keelson_model::Record::Requisition(x) => Some(x),
            _ => None,
        })
    }

    /// Applies a patch as `author` and returns the change, or `None` when it
    /// changes nothing. New lines replace the old: lines that differ are
    /// written, lines no longer there are removed. Whether the requisition
    /// may still change is the caller's rule.
    pub fn patch_requisition(
        &mut self,
        patch: &RequisitionPatch,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let patch = patch.clone().validated()?;
        validate_person("author", author)?;
        let current = self.to_requisition()?;
        let note = patch.note.filter(|n| *n != current.note);
        let (mut put, mut removed) = (Vec::new(), Vec::new());
        if let Some(lines) = &patch.lines {
            for l in lines {
                validate_record_id("lines", &l.part_id)?;
                if !current.lines.contains(l) {
                    put.push(l.clone());
                }
            }
            for old in &current.lines {
                if !lines.iter().any(|l| l.part_id == old.part_id) {
                    removed.push(old.part_id.clone());
                }
            }
        }
        if note.is_none() && put.is_empty() && removed.is_empty() {
            return Ok(None);
        }
        let lines_obj = match self.doc.get(ROOT, k::LINES) {
            Ok(Some((Value::Object(ObjType::Map), obj))) => obj,
            _ => return Err(SyncError::malformed("requisition: lines is not a map")),
        };
        let updated = updated_at_after(current.updated_at, now);
        self.transact(author, now, |d| {
            if let Some(n) = &note {
                d.put(ROOT, k::NOTE, n.as_str())?;
            }
            for l in &put {
                d.put(&lines_obj, l.part_id.as_str(), l.quantity)?;
            }
            for p in &removed {
                d.delete(&lines_obj, p.as_str())?;
            }
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })
    }

    /// Appends the submission as `author`. Whether it may be submitted is
    /// the caller's rule.
    pub fn submit_requisition(
        &mut self,
        submission_id: &str,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", submission_id)?;
        validate_person("author", author)?;
        let current = self.to_requisition()?;
        self.append_entry(
            k::SUBMISSIONS,
            current.updated_at,
            author,
            now,
            "submitting",
            vec![
                (k::E_ID, submission_id.into()),
                (k::E_BY, author.into()),
                (k::E_AT, ScalarValue::Timestamp(now.timestamp_millis())),
            ],
        )
    }

    /// Appends the office's decision as `author`. Whether it may decide is
    /// the caller's rule.
    pub fn decide_requisition(
        &mut self,
        decision_id: &str,
        decision: &NewDecision,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", decision_id)?;
        validate_person("author", author)?;
        let decision = decision.clone().validated()?;
        let current = self.to_requisition()?;
        let existing = match self.doc.get(ROOT, k::DECISIONS) {
            Ok(Some((Value::Object(ObjType::List), list))) => Some(list),
            Ok(None) => None,
            _ => return Err(SyncError::malformed("requisition: decisions is not a list")),
        };
        let at = ScalarValue::Timestamp(now.timestamp_millis());
        let updated = updated_at_after(current.updated_at, now);
        let change = self.transact(author, now, |d| {
            let list = match existing {
                Some(list) => list,
                None => d.put_object(ROOT, k::DECISIONS, ObjType::List)?,
            };
            let end = d.length(&list);
            let e = d.insert_object(&list, end, ObjType::Map)?;
            d.put(&e, k::E_ID, decision_id)?;
            d.put(&e, k::E_BY, author)?;
            d.put(&e, k::E_AT, at)?;
            d.put(&e, k::E_APPROVED, decision.approved)?;
            d.put(&e, k::E_NOTE, decision.note.as_str())?;
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })?;
        change.ok_or_else(|| SyncError::Internal("deciding wrote nothing".into()))
    }

    fn read_decisions(&self) -> Result<Vec<Decision>, SyncError> {
        let d = &self.doc;
        if matches!(d.get(ROOT, k::DECISIONS), Ok(None)) {
            return Ok(Vec::new());
        }
        let mut decisions = Vec::new();
        for map in list_maps(d, &ROOT, k::DECISIONS)? {
            let id = get_string(d, &map, k::E_ID)?;
            validate_record_id("decision id", &id).map_err(invalid_field)?;
            let by = get_string(d, &map, k::E_BY)?;
            validate_person("decision by", &by).map_err(invalid_field)?;
            let at = get_time(d, &map, k::E_AT)?;
            let approved = match super::get_scalar(d, &map, k::E_APPROVED)? {
                ScalarValue::Boolean(b) => b,
                _ => {
                    return Err(SyncError::malformed(
                        "requisition: approved is not a boolean",
                    ));
                }
            };
            let note = NewDecision {
                approved,
                note: get_string(d, &map, k::E_NOTE)?,
            }
            .validated()
            .map_err(invalid_field)?
            .note;
            decisions.push(Decision {
                id,
                by,
                at,
                approved,
                note,
            });
        }
        sort_entries(&mut decisions, |e| (e.at, e.id.as_str()));
        Ok(decisions)
    }

    pub(super) fn read_requisition(&self) -> Result<Requisition, SyncError> {
        let d = &self.doc;
        let h = read_header(d)?;
        let lines_obj = match d.get(ROOT, k::LINES) {
            Ok(Some((Value::Object(ObjType::Map), obj))) => obj,
            _ => return Err(SyncError::malformed("requisition: lines is not a map")),
        };
        let mut lines = Vec::new();
        for part_id in d.keys(&lines_obj) {
            validate_record_id("lines", &part_id).map_err(invalid_field)?;
            let quantity = get_number(d, &lines_obj, &part_id)?;
            lines.push(RequisitionLine { part_id, quantity });
        }
        // The creation validator holds the model's rules for these fields.
        let checked = NewRequisition {
            note: get_string(d, &ROOT, k::NOTE)?,
            lines,
        }
        .validated()
        .map_err(invalid_field)?;
        validate_lines(checked.lines.clone()).map_err(invalid_field)?;
        let mut submissions = Vec::new();
        for map in list_maps(d, &ROOT, k::SUBMISSIONS)? {
            let id = get_string(d, &map, k::E_ID)?;
            validate_record_id("submission id", &id).map_err(invalid_field)?;
            let by = get_string(d, &map, k::E_BY)?;
            validate_person("submission by", &by).map_err(invalid_field)?;
            let at = get_time(d, &map, k::E_AT)?;
            submissions.push(Submission { id, by, at });
        }
        sort_entries(&mut submissions, |s| (s.at, s.id.as_str()));
        let decisions = self.read_decisions()?;
        Ok(Requisition {
            id: h.id,
            vessel_id: h.vessel_id,
            status: match (submissions.is_empty(), decisions.last()) {
                (true, _) => RequisitionStatus::Draft,
                (false, None) => RequisitionStatus::Submitted,
                (false, Some(d)) if d.approved => RequisitionStatus::Approved,
                (false, Some(_)) => RequisitionStatus::Rejected,
            },
            note: checked.note,
            lines: checked.lines,
            submissions,
            decisions,
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
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn line(p: &str, q: f64) -> RequisitionLine {
        RequisitionLine {
            part_id: p.into(),
            quantity: q,
        }
    }

    #[test]
    fn lines_edit_and_a_submission_sticks() {
        let new = NewRequisition {
            note: "For the next port".into(),
            lines: vec![line("p-1", 2.0), line("p-2", 1.0)],
        };
        let (mut a, create) =
            RecordDoc::create_requisition_as(b"ship", "r-1", "imo9321483", &new, "chief", t(0))
                .unwrap();
        assert_eq!(a.to_requisition().unwrap().status, RequisitionStatus::Draft);
        let mut b = RecordDoc::from_changes(&[create]).unwrap();
        let edit = RequisitionPatch {
            lines: Some(vec![line("p-1", 3.0)]),
            ..RequisitionPatch::default()
        };
        let edited = a.patch_requisition(&edit, "chief", t(1)).unwrap().unwrap();
        assert!(a.patch_requisition(&edit, "chief", t(2)).unwrap().is_none());
        let submitted = a.submit_requisition("s-1", "chief", t(3)).unwrap();
        let note = RequisitionPatch {
            note: Some("Urgent".into()),
            ..RequisitionPatch::default()
        };
        let concurrent = b.patch_requisition(&note, "master", t(4)).unwrap().unwrap();
        b.apply_changes(&[edited, submitted]).unwrap();
        a.apply_changes(&[concurrent]).unwrap();
        let (ra, rb) = (a.to_requisition().unwrap(), b.to_requisition().unwrap());
        assert_eq!(ra, rb);
        assert_eq!(ra.status, RequisitionStatus::Submitted);
        assert_eq!(ra.lines, [line("p-1", 3.0)]);
        assert_eq!(ra.note, "Urgent");
    }
}
