//! Maintenance records as the ship and the shore change them.
//!
//! Each operation loads a record's automerge document, changes it through
//! the sync crate's codec, and writes the document, its query projection and
//! the new change-log entries back in one store transaction. Changes that
//! arrive through sync go through [`apply_remote`], which applies a whole
//! batch or nothing.
//!
//! Architecture invariant: this crate holds the rules of who may change
//! what in a record (status transitions, the vessel a record belongs to);
//! it knows neither HTTP nor the wire format.

use chrono::Utc;
use keelson_model::{
    Fault, FaultPatch, NewFault, Status, ValidationError, fault::validate_comment,
};
use keelson_store::{Db, NewChange, Origin, RecordTx, RecordWrite, StoreError};
use keelson_sync::SyncError;
use keelson_sync::record::{FaultDoc, decode_change};

/// Record kind of faults.
pub const FAULT: &str = "fault";

/// Errors of record operations.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document or change could not be decoded or applied.
    #[error("record data: {0}")]
    Sync(#[from] SyncError),
    /// The input failed validation.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No record with that id.
    #[error("no such record")]
    NotFound,
    /// The user's role does not allow this change.
    #[error("{0}")]
    Forbidden(String),
    /// The change is not allowed in the record's current state.
    #[error("{0}")]
    Conflict(String),
    /// A change touches a record of another vessel.
    #[error("record {record_id} belongs to vessel {owner}, not {sender}")]
    WrongVessel {
        /// The record.
        record_id: String,
        /// Its vessel.
        owner: String,
        /// The vessel that sent the change.
        sender: String,
    },
}

/// Who is making a change, and what their role allows.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The name recorded as author or reporter.
    pub name: String,
    /// May change a fault's status.
    pub may_work_faults: bool,
    /// May close a fault.
    pub may_close_faults: bool,
}

/// Logs a new fault on `vessel_id`.
pub fn create_fault(
    db: &Db,
    vessel_id: &str,
    new: NewFault,
    reporter: &str,
) -> Result<Fault, RecordError> {
    let new = new.validated()?;
    let id = uuid::Uuid::new_v4().to_string();
    let (mut doc, change) = FaultDoc::create_as(
        db.session_actor(),
        &id,
        vessel_id,
        &new,
        reporter,
        Utc::now(),
    )?;
    db.transact(|tx| {
        let fault = doc.to_fault()?;
        write_local(tx, &id, &mut doc, &fault, vec![change])?;
        Ok(fault)
    })
}

/// Changes a fault's fields. Status changes need a role that works faults,
/// closing needs the chief engineer, and the status must follow its life
/// cycle.
pub fn patch_fault(
    db: &Db,
    id: &str,
    patch: FaultPatch,
    actor: &Actor,
) -> Result<Fault, RecordError> {
    let patch = patch.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_fault(tx, id)?;
        if let Some(to) = patch.status {
            if to != current.status {
                if !actor.may_work_faults {
                    return Err(RecordError::Forbidden(
                        "changing a fault's status needs the engineer role".into(),
                    ));
                }
                if to == Status::Closed && !actor.may_close_faults {
                    return Err(RecordError::Forbidden(
                        "closing a fault needs the chief engineer".into(),
                    ));
                }
                if !current.status.may_become(to) {
                    return Err(RecordError::Conflict(format!(
                        "a fault that is {} cannot become {}",
                        current.status, to
                    )));
                }
            }
        }
        match doc.apply_patch(&patch, Utc::now())? {
            Some(change) => {
                let fault = doc.to_fault()?;
                write_local(tx, id, &mut doc, &fault, vec![change])?;
                Ok(fault)
            }
            None => Ok(current),
        }
    })
}

/// Adds a comment to a fault.
pub fn comment_fault(db: &Db, id: &str, author: &str, text: &str) -> Result<Fault, RecordError> {
    let text = validate_comment(text)?;
    db.transact(|tx| {
        let (mut doc, _) = load_fault(tx, id)?;
        let comment_id = uuid::Uuid::new_v4().to_string();
        let change = doc.add_comment(&comment_id, author, &text, Utc::now())?;
        let fault = doc.to_fault()?;
        write_local(tx, id, &mut doc, &fault, vec![change])?;
        Ok(fault)
    })
}

/// One change received through sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingChange {
    /// The record it belongs to.
    pub record_id: String,
    /// The automerge change's bytes.
    pub change: Vec<u8>,
}

impl From<keelson_store::ChangeRow> for IncomingChange {
    fn from(r: keelson_store::ChangeRow) -> Self {
        IncomingChange {
            record_id: r.record_id,
            change: r.change,
        }
    }
}

impl From<keelson_sync::wire::ChangeEntry> for IncomingChange {
    fn from(e: keelson_sync::wire::ChangeEntry) -> Self {
        IncomingChange {
            record_id: e.record_id,
            change: e.change,
        }
    }
}

/// The records-lane chunk that carries `rows` of this site's change log to
/// the other side.
pub fn records_chunk(
    vessel_id: &str,
    rows: Vec<keelson_store::ChangeRow>,
) -> keelson_sync::wire::Chunk {
    keelson_sync::wire::Chunk {
        lane: keelson_sync::wire::Lane::Records,
        vessel_id: vessel_id.to_owned(),
        entries: rows
            .into_iter()
            .map(|r| keelson_sync::wire::ChangeEntry {
                seq: r.seq,
                record_id: r.record_id,
                change: r.change,
            })
            .collect(),
    }
}

/// What applying a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Changes new to this site.
    pub applied: usize,
    /// Changes this site already had.
    pub duplicates: usize,
}

/// Who sent a batch of changes: it decides which fields the batch may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The vessel the records belong to.
    Vessel,
    /// The shore office.
    Shore,
}

/// The suffix that marks a comment written ashore.
pub const SHORE_AUTHOR_SUFFIX: &str = "@shore";

/// Checks what a received batch did to a fault against what its sender may
/// write. Nobody may rewrite or remove a comment through sync. The vessel
/// owns the fault's fields and may add its own comments, never one that
/// claims to come from the shore. The shore may only add comments signed
/// as the shore's; it may not create a vessel's fault nor change its fields.
pub fn check_edit(
    sender: Sender,
    before: Option<&Fault>,
    after: &Fault,
) -> Result<(), RecordError> {
    let refuse = |what: String| {
        Err(RecordError::Forbidden(format!(
            "{} may not {what}",
            match sender {
                Sender::Vessel => "a vessel",
                Sender::Shore => "the shore",
            }
        )))
    };
    let empty = Vec::new();
    let old_comments = before.map_or(&empty, |b| &b.comments);
    for old in old_comments {
        if after.comments.iter().find(|c| c.id == old.id) != Some(old) {
            return refuse(format!("change or remove comment {}", old.id));
        }
    }
    for new in after
        .comments
        .iter()
        .filter(|c| !old_comments.iter().any(|o| o.id == c.id))
    {
        let from_shore = new.author.ends_with(SHORE_AUTHOR_SUFFIX);
        match sender {
            Sender::Vessel if from_shore => {
                return refuse(format!("write a comment as {}", new.author));
            }
            Sender::Shore if !from_shore => {
                return refuse(format!("write a comment as {}", new.author));
            }
            _ => {}
        }
    }
    match (sender, before) {
        (Sender::Shore, None) => refuse(format!("create fault {}", after.id)),
        (Sender::Shore, Some(b)) => {
            let fields = [
                ("title", b.title != after.title),
                ("description", b.description != after.description),
                ("equipment", b.equipment != after.equipment),
                ("severity", b.severity != after.severity),
                ("status", b.status != after.status),
                ("reporter", b.reporter != after.reporter),
                ("created_at", b.created_at != after.created_at),
            ];
            match fields.iter().find(|(_, changed)| *changed) {
                Some((field, _)) => refuse(format!("change a fault's {field}")),
                None => Ok(()),
            }
        }
        (Sender::Vessel, Some(b))
            if b.reporter != after.reporter || b.created_at != after.created_at =>
        {
            refuse("change who logged a fault or when".into())
        }
        (Sender::Vessel, _) => Ok(()),
    }
}

/// Applies a batch of received changes, all of which must belong to records
/// of `vessel_id`, in one transaction; `finish` runs inside the same
/// transaction (to move a sync cursor). Every change is checked against
/// what `sender` may write ([`check_edit`]); any bad change refuses the
/// whole batch and nothing of it is stored.
pub fn apply_remote(
    db: &Db,
    vessel_id: &str,
    sender: Sender,
    changes: &[IncomingChange],
    finish: impl FnOnce(&mut RecordTx<'_>) -> Result<(), StoreError>,
) -> Result<ApplyOutcome, RecordError> {
    // Group by record, keeping each record's changes in arrival order.
    let mut groups: Vec<(&str, Vec<NewChange>)> = Vec::new();
    for c in changes {
        let info = decode_change(&c.change)?;
        let entry = NewChange {
            hash: info.hash,
            bytes: c.change.clone(),
        };
        match groups.iter_mut().find(|(id, _)| *id == c.record_id) {
            Some((_, list)) => list.push(entry),
            None => groups.push((&c.record_id, vec![entry])),
        }
    }
    db.transact(|tx| {
        let mut outcome = ApplyOutcome::default();
        for (record_id, list) in &groups {
            let bytes: Vec<Vec<u8>> = list.iter().map(|c| c.bytes.clone()).collect();
            let (mut doc, before) = match tx.load(record_id)? {
                Some(stored) => {
                    if stored.vessel_id != vessel_id {
                        return Err(RecordError::WrongVessel {
                            record_id: (*record_id).to_owned(),
                            owner: stored.vessel_id,
                            sender: vessel_id.to_owned(),
                        });
                    }
                    let mut doc = FaultDoc::load(&stored.doc)?;
                    let before = doc.to_fault()?;
                    doc.apply_changes(&bytes)?;
                    (doc, Some(before))
                }
                None => (FaultDoc::from_changes(&bytes)?, None),
            };
            let fault = doc.to_fault()?;
            // The document itself names its vessel; a change may neither
            // create a record for another vessel nor move one.
            if fault.vessel_id != vessel_id || fault.id != *record_id {
                return Err(RecordError::WrongVessel {
                    record_id: (*record_id).to_owned(),
                    owner: fault.vessel_id,
                    sender: vessel_id.to_owned(),
                });
            }
            check_edit(sender, before.as_ref(), &fault)?;
            let added = tx.write(
                record_id,
                &RecordWrite {
                    vessel_id: vessel_id.to_owned(),
                    kind: FAULT.to_owned(),
                    doc: doc.save(),
                    fault: Some(fault),
                    changes: list.clone(),
                    origin: Origin::Remote,
                },
            )?;
            outcome.applied += added;
            outcome.duplicates += list.len() - added;
        }
        finish(tx)?;
        Ok(outcome)
    })
}

fn load_fault(tx: &RecordTx<'_>, id: &str) -> Result<(FaultDoc, Fault), RecordError> {
    let stored = tx.load(id)?.ok_or(RecordError::NotFound)?;
    if stored.kind != FAULT {
        return Err(RecordError::NotFound);
    }
    let mut doc = FaultDoc::load(&stored.doc)?;
    doc.set_actor(tx.actor())?;
    let fault = doc.to_fault()?;
    Ok((doc, fault))
}

fn write_local(
    tx: &mut RecordTx<'_>,
    id: &str,
    doc: &mut FaultDoc,
    fault: &Fault,
    changes: Vec<Vec<u8>>,
) -> Result<(), RecordError> {
    let changes = changes
        .into_iter()
        .map(|bytes| {
            let info = decode_change(&bytes)?;
            Ok(NewChange {
                hash: info.hash,
                bytes,
            })
        })
        .collect::<Result<Vec<_>, SyncError>>()?;
    tx.write(
        id,
        &RecordWrite {
            vessel_id: fault.vessel_id.clone(),
            kind: FAULT.to_owned(),
            doc: doc.save(),
            fault: Some(fault.clone()),
            changes,
            origin: Origin::Local,
        },
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keelson_model::Severity;
    use keelson_store::Site;

    fn chief() -> Actor {
        Actor {
            name: "chief".into(),
            may_work_faults: true,
            may_close_faults: true,
        }
    }

    /// Ships every local change of `from` after `after` to `to`, as the sync
    /// lanes do, and returns the new cursor.
    fn ship(from: &Db, to: &Db, vessel: &str, after: u64, sender: Sender) -> u64 {
        let rows = from.outbound_changes(vessel, after, usize::MAX).unwrap();
        let last = rows.last().map_or(after, |r| r.seq);
        let batch: Vec<IncomingChange> = rows.into_iter().map(IncomingChange::from).collect();
        apply_remote(to, vessel, sender, &batch, |_| Ok(())).unwrap();
        last
    }

    fn new_fault() -> NewFault {
        NewFault {
            title: "Fuel leak at ME cylinder 3".into(),
            description: "Drops at the HP pipe".into(),
            equipment: "Main engine".into(),
            severity: Severity::High,
        }
    }

    #[test]
    fn concurrent_edits_of_different_fields_both_survive() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let ship_db = Db::open(dir_a.path(), Site::Edge).unwrap();
        let shore_db = Db::open(dir_b.path(), Site::Shore).unwrap();
        let f = create_fault(&ship_db, "v1", new_fault(), "crew1").unwrap();
        let up = ship(&ship_db, &shore_db, "v1", 0, Sender::Vessel);
        assert_eq!(shore_db.fault(&f.id).unwrap().unwrap().title, f.title);

        // Apart: the ship changes the status and the title, the shore
        // comments.
        let patch = FaultPatch {
            status: Some(Status::InProgress),
            ..FaultPatch::default()
        };
        patch_fault(&ship_db, &f.id, patch, &chief()).unwrap();
        comment_fault(
            &shore_db,
            &f.id,
            "office@shore",
            "Spare pipe sent with next supply",
        )
        .unwrap();
        let retitle = FaultPatch {
            title: Some("Fuel leak, ME cyl 3 HP pipe".into()),
            ..FaultPatch::default()
        };
        patch_fault(&ship_db, &f.id, retitle, &chief()).unwrap();

        ship(&ship_db, &shore_db, "v1", up, Sender::Vessel);
        ship(&shore_db, &ship_db, "v1", 0, Sender::Shore);
        let a = ship_db.fault(&f.id).unwrap().unwrap();
        let b = shore_db.fault(&f.id).unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.status, Status::InProgress);
        assert_eq!(a.title, "Fuel leak, ME cyl 3 HP pipe");
        assert_eq!(a.comments.len(), 1);
        // Re-sending everything is harmless.
        ship(&ship_db, &shore_db, "v1", 0, Sender::Vessel);
        assert_eq!(shore_db.fault(&f.id).unwrap().unwrap(), b);
    }

    #[test]
    fn roles_and_life_cycle_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let f = create_fault(&db, "v1", new_fault(), "crew1").unwrap();
        let crew = Actor {
            name: "crew1".into(),
            may_work_faults: false,
            may_close_faults: false,
        };
        let to = |s| FaultPatch {
            status: Some(s),
            ..FaultPatch::default()
        };
        assert!(matches!(
            patch_fault(&db, &f.id, to(Status::Resolved), &crew),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            patch_fault(&db, &f.id, to(Status::Closed), &chief()),
            Err(RecordError::Conflict(_))
        ));
        patch_fault(&db, &f.id, to(Status::Resolved), &chief()).unwrap();
        let engineer = Actor {
            may_work_faults: true,
            ..crew
        };
        assert!(matches!(
            patch_fault(&db, &f.id, to(Status::Closed), &engineer),
            Err(RecordError::Forbidden(_))
        ));
        assert_eq!(
            patch_fault(&db, &f.id, to(Status::Closed), &chief())
                .unwrap()
                .status,
            Status::Closed
        );
        // A patch that changes nothing writes no change.
        let (_, before) = db.record_counts().unwrap();
        patch_fault(&db, &f.id, to(Status::Closed), &chief()).unwrap();
        assert_eq!(db.record_counts().unwrap().1, before);
    }

    #[test]
    fn a_batch_touching_another_vessels_record_is_refused_whole() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_s = tempfile::tempdir().unwrap();
        let a = Db::open(dir_a.path(), Site::Edge).unwrap();
        let shore = Db::open(dir_s.path(), Site::Shore).unwrap();
        let fa = create_fault(&a, "va", new_fault(), "crew").unwrap();
        ship(&a, &shore, "va", 0, Sender::Vessel);
        let fb = create_fault(&a, "va", new_fault(), "crew").unwrap();
        // Vessel B replays vessel A's changes as its own.
        let rows = a.outbound_changes("va", 0, usize::MAX).unwrap();
        let batch: Vec<IncomingChange> = rows.into_iter().map(IncomingChange::from).collect();
        let before = shore.record_counts().unwrap();
        let err = apply_remote(&shore, "vb", Sender::Vessel, &batch, |_| Ok(())).unwrap_err();
        assert!(matches!(err, RecordError::WrongVessel { .. }), "{err}");
        assert_eq!(shore.record_counts().unwrap(), before);
        assert!(shore.fault(&fb.id).unwrap().is_none());
        assert!(shore.fault(&fa.id).unwrap().is_some());
    }

    /// Ships `from`'s changes to `to` and returns the refusal, if any.
    fn try_ship(from: &Db, to: &Db, sender: Sender) -> Result<ApplyOutcome, RecordError> {
        let rows = from.outbound_changes("v1", 0, usize::MAX).unwrap();
        let batch: Vec<IncomingChange> = rows.into_iter().map(IncomingChange::from).collect();
        apply_remote(to, "v1", sender, &batch, |_| Ok(()))
    }

    #[test]
    fn each_side_may_only_write_its_own_fields() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let ship_db = Db::open(dirs[0].path(), Site::Edge).unwrap();
        let shore_db = Db::open(dirs[1].path(), Site::Shore).unwrap();
        let f = create_fault(&ship_db, "v1", new_fault(), "crew1").unwrap();

        // A vessel may not forge a shore comment.
        comment_fault(&ship_db, &f.id, "office@shore", "Approved").unwrap();
        let err = try_ship(&ship_db, &shore_db, Sender::Vessel).unwrap_err();
        assert!(
            matches!(&err, RecordError::Forbidden(m) if m.contains("office@shore")),
            "{err}"
        );
        assert!(
            shore_db.fault(&f.id).unwrap().is_none(),
            "the whole batch was refused"
        );

        // A genuine record goes through; then the shore may comment but not
        // change the fault's fields.
        let dirs2 = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let ship_db = Db::open(dirs2[0].path(), Site::Edge).unwrap();
        let shore_db = Db::open(dirs2[1].path(), Site::Shore).unwrap();
        let f = create_fault(&ship_db, "v1", new_fault(), "crew1").unwrap();
        try_ship(&ship_db, &shore_db, Sender::Vessel).unwrap();
        let close = FaultPatch {
            severity: Some(Severity::Low),
            ..FaultPatch::default()
        };
        patch_fault(&shore_db, &f.id, close, &chief()).unwrap();
        let err = try_ship(&shore_db, &ship_db, Sender::Shore).unwrap_err();
        assert!(
            matches!(&err, RecordError::Forbidden(m) if m.contains("severity")),
            "{err}"
        );
        assert_eq!(
            ship_db.fault(&f.id).unwrap().unwrap().severity,
            Severity::High
        );
    }
}
