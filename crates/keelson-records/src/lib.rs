//! Maintenance records as the ship and the shore change them.
//!
//! Each operation loads a record's automerge document, changes it through
//! the sync crate's codec, and writes the document, its query projection and
//! the new change-log entries back in one store transaction. Changes that
//! arrive through sync go through [`apply_remote`], which applies a whole
//! batch or nothing. Every kind of record (faults here, [`equipment`],
//! [`work_order`], [`counter`], [`plan`] and [`part`] (spare parts and
//! requisitions) in their modules) goes through
//! the same load and write path; the kinds differ only in their fields and rules.
//!
//! Architecture invariant: this crate holds the rules of who may change
//! what in a record (roles, status transitions, the sign-off, the vessel a
//! record belongs to); it knows neither HTTP nor the wire format.

pub mod attachment;
pub mod counter;
pub mod equipment;
pub mod part;
pub mod plan;
pub mod work_order;

use chrono::{DateTime, Utc};
use keelson_model::{
    Fault, FaultPatch, HistoryEntry, NewFault, Record, Role, Status, ValidationError,
    fault::validate_comment,
};
use keelson_store::{Db, NewChange, Origin, RecordTx, RecordWrite, StoreError};
use keelson_sync::SyncError;
use keelson_sync::record::{RecordDoc, decode_change};

pub use attachment::{attach, check_attach, may_attach};
pub use counter::{correct_counter, create_counter, record_reading, record_sensor_reading};
pub use equipment::{create_equipment, patch_equipment};
pub use keelson_model::record::{COUNTER, EQUIPMENT, FAULT, PART, PLAN, REQUISITION, WORK_ORDER};
pub use part::{
    create_part, create_requisition, decide_requisition, draft_from_minimum, patch_part,
    patch_requisition, record_movement, submit_requisition,
};
pub use plan::{
    ScheduledPlan, create_plan, open_due_work_orders, patch_plan, postpone_plan, scheduled_plans,
};
pub use work_order::{
    add_work_entry, comment_work_order, create_work_order, patch_work_order, sign_off_work_order,
};

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

impl RecordError {
    /// Validation errors raised inside the sync codec are the user's input
    /// errors too; everything else it raises is about stored data.
    fn from_codec(e: SyncError) -> RecordError {
        match e {
            SyncError::Invalid(v) => RecordError::Invalid(v),
            other => RecordError::Sync(other),
        }
    }
}

/// Who is making a change on board: the name recorded as author, and the
/// role whose rights apply.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The name recorded as author or reporter.
    pub name: String,
    /// The user's role on board.
    pub role: Role,
}

fn forbid_unless(allowed: bool, what: &str) -> Result<(), RecordError> {
    if allowed {
        Ok(())
    } else {
        Err(RecordError::Forbidden(what.to_owned()))
    }
}

/// Logs a new fault on `vessel_id`.
pub fn create_fault(
    db: &Db,
    vessel_id: &str,
    new: NewFault,
    reporter: &str,
) -> Result<Fault, RecordError> {
    attachment::create_fault_with(db, vessel_id, new, reporter, None)
}

/// Changes a fault's fields. Status changes and the cause and corrective
/// action need a role that works faults, closing needs the chief engineer,
/// the status must follow its life cycle, and a fault is resolved only once
/// its corrective action is recorded.
pub fn patch_fault(
    db: &Db,
    id: &str,
    patch: FaultPatch,
    actor: &Actor,
) -> Result<Fault, RecordError> {
    let patch = patch.validated()?;
    forbid_unless(
        !patch.touches_findings() || actor.role.may_work_faults(),
        "recording a fault's cause or corrective action needs the engineer role",
    )?;
    db.transact(|tx| {
        let (mut doc, current) = load_fault(tx, id)?;
        if let Some(to) = patch.status {
            if to != current.status {
                forbid_unless(
                    actor.role.may_work_faults(),
                    "changing a fault's status needs the engineer role",
                )?;
                forbid_unless(
                    to != Status::Closed || actor.role.may_close_faults(),
                    "closing a fault needs the chief engineer",
                )?;
                if !current.status.may_become(to) {
                    return Err(RecordError::Conflict(format!(
                        "a fault that is {} cannot become {}",
                        current.status, to
                    )));
                }
            }
        }
        if patch.status == Some(Status::Resolved) && current.status != Status::Resolved {
            // ISM Code 10.2 asks for the corrective action taken; a fault
            // marked resolved without one leaves the record incomplete.
            let action = patch
                .corrective_action
                .as_deref()
                .unwrap_or(&current.corrective_action);
            if action.is_empty() {
                return Err(ValidationError::new(
                    "corrective_action",
                    "must be recorded before the fault is resolved",
                )
                .into());
            }
        }
        match doc
            .apply_patch(&patch, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?
        {
            Some(change) => match write_local(tx, id, &mut doc, vec![change])? {
                Record::Fault(f) => Ok(f),
                _ => Err(RecordError::NotFound),
            },
            None => Ok(current),
        }
    })
}

/// Adds a comment to a fault.
pub fn comment_fault(db: &Db, id: &str, author: &str, text: &str) -> Result<Fault, RecordError> {
    match comment_record(db, id, FAULT, author, text)? {
        Record::Fault(f) => Ok(f),
        _ => Err(RecordError::NotFound),
    }
}

/// Adds a comment to a record of `kind` (faults and work orders have a
/// thread). Comments are allowed whatever state the record is in, even on
/// a signed-off work order.
pub fn comment_record(
    db: &Db,
    id: &str,
    kind: &str,
    author: &str,
    text: &str,
) -> Result<Record, RecordError> {
    let text = validate_comment(text)?;
    db.transact(|tx| {
        let (mut doc, _) = load_kind(tx, id, kind)?;
        let comment_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .add_comment(&comment_id, author, &text, Utc::now())
            .map_err(RecordError::from_codec)?;
        write_local(tx, id, &mut doc, vec![change])
    })
}

/// A record's audit trail: its kind and every change in it, oldest first,
/// with who made it and when.
pub fn history(db: &Db, id: &str) -> Result<(String, Vec<HistoryEntry>), RecordError> {
    let stored = db.record(id)?.ok_or(RecordError::NotFound)?;
    let mut doc = RecordDoc::load(&stored.doc)?;
    let mut entries = doc.history();
    // Changes are in causal order; within that, the time reads best.
    entries.sort_by_key(|e| e.at);
    Ok((stored.kind, entries))
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

/// Checks what a received batch did to a record against what its sender
/// may write.
///
/// - Nobody may rewrite or remove a comment, an attachment, a work entry or
///   a sign-off: they are append-only.
/// - The vessel owns the record's fields and may add its own comments,
///   never one that claims to come from the shore; nor may it change who
///   created a record or when.
/// - The shore may add comments signed as the shore's, and it plans the
///   vessel's maintenance from the office: it may create plans and work
///   orders signed as the shore's and change the fields in
///   [`SHORE_PLAN_FIELDS`] and [`SHORE_WORK_ORDER_FIELDS`]; it decides on
///   submitted requisitions ([`SHORE_REQUISITION_FIELDS`]), which the
///   vessel may not. Every other
///   field of every record belongs to the vessel. A vessel may not create a
///   record that claims to come from the shore.
pub fn check_edit(
    sender: Sender,
    before: Option<&Record>,
    after: &Record,
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
    if let Some(entry) = removed_or_rewritten_entry(before, after) {
        return refuse(format!("change or remove {entry}"));
    }
    let old_comments = before.map_or(&[][..], Record::comments);
    for new in after
        .comments()
        .iter()
        .filter(|c| !old_comments.iter().any(|o| o.id == c.id))
    {
        let from_shore = new.author.ends_with(SHORE_AUTHOR_SUFFIX);
        if from_shore != (sender == Sender::Shore) {
            return refuse(format!("write a comment as {}", new.author));
        }
    }
    if let (Record::Requisition(a), Sender::Vessel) = (after, sender) {
        let old = match before {
            Some(Record::Requisition(b)) => b.decisions.len(),
            _ => 0,
        };
        if a.decisions.len() > old {
            return refuse("decide on a requisition".into());
        }
    }
    let by_shore = after.created().0.ends_with(SHORE_AUTHOR_SUFFIX);
    match (sender, before) {
        (Sender::Shore, None)
            if by_shore && matches!(after, Record::Plan(_) | Record::WorkOrder(_)) =>
        {
            match vessel_owned_content(after) {
                Some(what) => refuse(format!("create a {} with {what}", after.kind())),
                None => Ok(()),
            }
        }
        (Sender::Shore, None) => refuse(format!("create {} {}", after.kind(), after.id())),
        (Sender::Shore, Some(b)) => {
            let allowed = shore_fields(after).unwrap_or(&[]);
            match changed_fields(b, after)
                .into_iter()
                .find(|f| !allowed.contains(&f.as_str()))
            {
                Some(field) => refuse(format!("change a {}'s {field}", after.kind())),
                None => Ok(()),
            }
        }
        (Sender::Vessel, Some(b)) if b.created() != after.created() => {
            refuse(format!("change who created a {} or when", after.kind()))
        }
        (Sender::Vessel, None) if by_shore => refuse(format!(
            "create a {} as {}",
            after.kind(),
            after.created().0
        )),
        (Sender::Vessel, _) => Ok(()),
    }
}

/// The plan fields the shore office may set, when it creates a plan or
/// changes one: what is to be done and how often. When the job was last
/// done and its postponements are the vessel's.
pub const SHORE_PLAN_FIELDS: &[&str] = &[
    "title",
    "instructions",
    "interval_days",
    "interval_hours",
    "tolerance_days",
    "tolerance_hours",
];

/// The work-order fields the shore office may set: what is to be done and
/// by whom. The work, its status and its sign-off are the vessel's.
pub const SHORE_WORK_ORDER_FIELDS: &[&str] = &["title", "description", "assignee"];

/// What a new record holds that only the vessel may write (work done, a
/// status past open, a sign-off, a postponement, an attachment), named for
/// the refusal, or `None` when it holds none of it.
fn vessel_owned_content(record: &Record) -> Option<&'static str> {
    if !record.attachments().is_empty() {
        return Some("attachments");
    }
    match record {
        Record::WorkOrder(w) => {
            if w.status != keelson_model::WorkStatus::Open {
                Some("a status past open")
            } else if !w.entries.is_empty() || !w.work_done.is_empty() || w.hours_spent != 0.0 {
                Some("work recorded")
            } else if !w.sign_offs.is_empty() {
                Some("a sign-off")
            } else {
                None
            }
        }
        Record::Plan(p) if !p.postponements.is_empty() => Some("postponements"),
        _ => None,
    }
}

/// What the shore office writes on a requisition: its decisions, and the
/// status they set.
pub const SHORE_REQUISITION_FIELDS: &[&str] = &["decisions", "status"];

/// The fields the shore may change in a record of this kind, or `None` for
/// the kinds whose fields it may not change.
fn shore_fields(record: &Record) -> Option<&'static [&'static str]> {
    match record {
        Record::Plan(_) => Some(SHORE_PLAN_FIELDS),
        Record::WorkOrder(_) => Some(SHORE_WORK_ORDER_FIELDS),
        Record::Requisition(_) => Some(SHORE_REQUISITION_FIELDS),
        _ => None,
    }
}

/// The first entry of an append-only list (a comment, a work entry, a
/// sign-off, a reading, a correction, a postponement, a stock movement, a
/// submission) that `before` holds
/// and `after` lacks or holds changed, named for the refusal.
fn removed_or_rewritten_entry(before: Option<&Record>, after: &Record) -> Option<String> {
    let before = before?;
    if let Some(lost) = first_lost("comment", before.comments(), after.comments(), |c| {
        c.id.as_str()
    })
    .or_else(|| {
        first_lost(
            "attachment",
            before.attachments(),
            after.attachments(),
            |a| a.id.as_str(),
        )
    }) {
        return Some(lost);
    }
    match (before, after) {
        (Record::WorkOrder(b), Record::WorkOrder(a)) => {
            first_lost("work entry", &b.entries, &a.entries, |e| e.id.as_str())
                .or_else(|| first_lost("sign-off", &b.sign_offs, &a.sign_offs, |e| e.id.as_str()))
        }
        (Record::Counter(b), Record::Counter(a)) => {
            first_lost("reading", &b.readings, &a.readings, |e| e.id.as_str()).or_else(|| {
                first_lost("correction", &b.corrections, &a.corrections, |e| {
                    e.id.as_str()
                })
            })
        }
        (Record::Plan(b), Record::Plan(a)) => {
            first_lost("postponement", &b.postponements, &a.postponements, |e| {
                e.id.as_str()
            })
        }
        (Record::Part(b), Record::Part(a)) => {
            first_lost("stock movement", &b.movements, &a.movements, |e| {
                e.id.as_str()
            })
        }
        (Record::Requisition(b), Record::Requisition(a)) => {
            first_lost("submission", &b.submissions, &a.submissions, |e| {
                e.id.as_str()
            })
            .or_else(|| first_lost("decision", &b.decisions, &a.decisions, |e| e.id.as_str()))
        }
        _ => None,
    }
}

/// The first entry of `old` that `new` lacks or holds changed (entries are
/// matched by `id`), as `what` and its id.
fn first_lost<T: PartialEq>(
    what: &str,
    old: &[T],
    new: &[T],
    id: impl Fn(&T) -> &str,
) -> Option<String> {
    old.iter()
        .find(|o| new.iter().find(|n| id(n) == id(o)) != Some(*o))
        .map(|o| format!("{what} {}", id(o)))
}

/// The fields, other than the comment thread and the time of the last
/// change, in which two versions of a record differ, in name order.
/// Comparing the records' JSON keeps this one rule for every kind.
fn changed_fields(before: &Record, after: &Record) -> Vec<String> {
    let (Ok(serde_json::Value::Object(b)), Ok(serde_json::Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return vec!["content".into()];
    };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| *k != "comments" && *k != "updated_at")
        .filter(|k| b.get(*k) != a.get(*k))
        .cloned()
        .collect()
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
                    let mut doc = RecordDoc::load(&stored.doc)?;
                    let before = doc.to_record()?;
                    doc.apply_changes(&bytes)?;
                    (doc, Some(before))
                }
                None => (RecordDoc::from_changes(&bytes)?, None),
            };
            let record = doc.to_record()?;
            // The document itself names its vessel; a change may neither
            // create a record for another vessel nor move one.
            if record.vessel_id() != vessel_id || record.id() != *record_id {
                return Err(RecordError::WrongVessel {
                    record_id: (*record_id).to_owned(),
                    owner: record.vessel_id().to_owned(),
                    sender: vessel_id.to_owned(),
                });
            }
            check_edit(sender, before.as_ref(), &record)?;
            let added = tx.write(
                record_id,
                &RecordWrite {
                    vessel_id: vessel_id.to_owned(),
                    kind: record.kind().to_owned(),
                    doc: doc.save(),
                    projection: Some(record),
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

fn load_fault(tx: &RecordTx<'_>, id: &str) -> Result<(RecordDoc, Fault), RecordError> {
    match load_kind(tx, id, FAULT)? {
        (doc, Record::Fault(f)) => Ok((doc, f)),
        _ => Err(RecordError::NotFound),
    }
}

/// The codec's constructor of a kind: actor, id, vessel, what to create,
/// author, time.
type Create<N> =
    fn(&[u8], &str, &str, &N, &str, DateTime<Utc>) -> Result<(RecordDoc, Vec<u8>), SyncError>;

/// Creates a record of `vessel_id` with `create` under a new id, with this
/// handle's actor, and writes it: the one creation path of every kind.
pub(crate) fn write_new<N>(
    tx: &mut RecordTx<'_>,
    create: Create<N>,
    vessel_id: &str,
    new: &N,
    author: &str,
    now: DateTime<Utc>,
) -> Result<Record, RecordError> {
    let id = uuid::Uuid::new_v4().to_string();
    let (mut doc, change) =
        create(tx.actor(), &id, vessel_id, new, author, now).map_err(RecordError::from_codec)?;
    write_local(tx, &id, &mut doc, vec![change])
}

/// Loads a record of `kind` for a local edit, with this handle's actor. A
/// record of another kind is not found: ids are not guessable across
/// kinds' endpoints.
pub(crate) fn load_kind(
    tx: &RecordTx<'_>,
    id: &str,
    kind: &str,
) -> Result<(RecordDoc, Record), RecordError> {
    let stored = tx.load(id)?.ok_or(RecordError::NotFound)?;
    if stored.kind != kind {
        return Err(RecordError::NotFound);
    }
    let mut doc = RecordDoc::load(&stored.doc)?;
    doc.set_actor(tx.actor())?;
    let record = doc.to_record()?;
    Ok((doc, record))
}

/// Writes a locally changed document, its projection and its new changes;
/// the one write path of every kind. Returns the record as now read.
pub(crate) fn write_local(
    tx: &mut RecordTx<'_>,
    id: &str,
    doc: &mut RecordDoc,
    changes: Vec<Vec<u8>>,
) -> Result<Record, RecordError> {
    let record = doc.to_record()?;
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
            vessel_id: record.vessel_id().to_owned(),
            kind: record.kind().to_owned(),
            doc: doc.save(),
            projection: Some(record.clone()),
            changes,
            origin: Origin::Local,
        },
    )?;
    Ok(record)
}

/// What the tests of every kind start from.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use super::{Actor, Db};
    use keelson_model::{Criticality, Equipment, Level, NewEquipment, Role};

    /// A user `name` with `role`.
    pub(crate) fn actor(name: &str, role: Role) -> Actor {
        Actor {
            name: name.into(),
            role,
        }
    }

    /// The main engine, system 6 of vessel `v1`, added by the chief.
    pub(crate) fn main_engine(db: &Db) -> Equipment {
        crate::create_equipment(
            db,
            "v1",
            NewEquipment {
                code: "6".into(),
                name: "Main engine".into(),
                level: Level::System,
                criticality: Criticality::Critical,
                maker: String::new(),
                model: String::new(),
                serial: String::new(),
                tags: vec![],
            },
            &actor("chief", Role::ChiefEngineer),
        )
        .unwrap()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keelson_model::Severity;
    use keelson_store::{FaultFilter, Site};

    fn chief() -> Actor {
        Actor {
            name: "chief".into(),
            role: Role::ChiefEngineer,
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
    fn the_fault_list_searches_filters_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let log = |title: &str, severity| {
            let new = NewFault {
                title: title.into(),
                severity,
                ..new_fault()
            };
            create_fault(&db, "v1", new, "crew1").unwrap()
        };
        log("Lube oil filter 50% clogged", Severity::High);
        log("Lube oil filter 500 h check", Severity::Low);
        let leak = log("Fuel leak at cylinder 3", Severity::Critical);
        create_fault(&db, "v2", new_fault(), "crew2").unwrap();
        let list = |f: FaultFilter| {
            let titles: Vec<String> = db
                .list_faults(&f)
                .unwrap()
                .into_iter()
                .map(|f| f.title)
                .collect();
            assert_eq!(db.count_faults(&f).unwrap(), titles.len() as u64);
            titles
        };
        let on_v1 = |f: FaultFilter| FaultFilter {
            vessel_id: Some("v1".into()),
            ..f
        };
        assert_eq!(list(on_v1(FaultFilter::default())).len(), 3);
        // A typed % matches itself, not any text.
        let search = |q: &str| FaultFilter {
            search: Some(q.into()),
            ..FaultFilter::default()
        };
        assert_eq!(list(on_v1(search("50%"))), ["Lube oil filter 50% clogged"]);
        assert_eq!(list(on_v1(search("LUBE OIL"))).len(), 2);
        assert_eq!(list(on_v1(search(&leak.id))), ["Fuel leak at cylinder 3"]);
        let critical = FaultFilter {
            severity: Some("critical".into()),
            status: Some("open".into()),
            ..FaultFilter::default()
        };
        assert_eq!(list(on_v1(critical)), ["Fuel leak at cylinder 3"]);
        let second_page = FaultFilter {
            limit: 2,
            offset: 2,
            ..on_v1(FaultFilter::default())
        };
        assert_eq!(db.list_faults(&second_page).unwrap().len(), 1);
        assert_eq!(db.count_faults(&second_page).unwrap(), 3);
    }

    #[test]
    fn roles_and_life_cycle_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let f = create_fault(&db, "v1", new_fault(), "crew1").unwrap();
        let crew = Actor {
            name: "crew1".into(),
            role: Role::Crew,
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
        // The crew log faults; the cause and the corrective action are the
        // engineers' findings.
        assert!(matches!(
            patch_fault(
                &db,
                &f.id,
                FaultPatch {
                    cause: Some("Worn gasket".into()),
                    ..FaultPatch::default()
                },
                &crew
            ),
            Err(RecordError::Forbidden(_))
        ));
        // Nothing is resolved before its corrective action is recorded.
        match patch_fault(&db, &f.id, to(Status::Resolved), &chief()) {
            Err(RecordError::Invalid(e)) => assert_eq!(e.field, "corrective_action"),
            other => panic!("resolved without a corrective action: {other:?}"),
        }
        let resolved = patch_fault(
            &db,
            &f.id,
            FaultPatch {
                status: Some(Status::Resolved),
                cause: Some(" Worn gasket ".into()),
                corrective_action: Some("Gasket renewed, flange bolts torqued".into()),
                ..FaultPatch::default()
            },
            &chief(),
        )
        .unwrap();
        assert_eq!(resolved.cause, "Worn gasket");
        assert_eq!(
            resolved.corrective_action,
            "Gasket renewed, flange bolts torqued"
        );
        let engineer = Actor {
            role: Role::Engineer,
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

    #[test]
    fn the_shore_plans_work_but_the_work_stays_the_vessels() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let ship_db = Db::open(dirs[0].path(), Site::Edge).unwrap();
        let shore_db = Db::open(dirs[1].path(), Site::Shore).unwrap();
        let pump = crate::equipment::create_equipment(
            &ship_db,
            "v1",
            serde_json::from_value(
                serde_json::json!({"code": "6", "name": "Main engine", "level": "system"}),
            )
            .unwrap(),
            &chief(),
        )
        .unwrap();
        try_ship(&ship_db, &shore_db, Sender::Vessel).unwrap();

        // The office plans a job and opens a work order; both reach the
        // ship, which then owns the work.
        let office = Actor {
            name: "super@shore".into(),
            role: Role::ChiefEngineer,
        };
        let plan = crate::plan::create_plan(
            &shore_db,
            "v1",
            serde_json::from_value(serde_json::json!({
                "equipment_id": pump.id, "title": "Inspect turbocharger", "interval_days": 90
            }))
            .unwrap(),
            &office,
        )
        .unwrap();
        let wo = crate::work_order::create_work_order(
            &shore_db,
            "v1",
            serde_json::from_value(serde_json::json!({
                "equipment_id": pump.id, "title": "Renew air filter"
            }))
            .unwrap(),
            &office,
        )
        .unwrap();
        try_ship(&shore_db, &ship_db, Sender::Shore).unwrap();
        assert_eq!(
            ship_db.plan(&plan.id).unwrap().unwrap().created_by,
            "super@shore"
        );
        assert!(ship_db.work_order(&wo.id).unwrap().is_some());

        // The office may change how often; not when it was last done.
        let mut b = Record::Plan(plan.clone());
        let mut a = plan.clone();
        a.interval_days = Some(60);
        check_edit(Sender::Shore, Some(&b), &Record::Plan(a.clone())).unwrap();
        a.last_done_at = Utc::now() - chrono::Duration::days(400);
        let err = check_edit(Sender::Shore, Some(&b), &Record::Plan(a)).unwrap_err();
        assert!(err.to_string().contains("last_done_at"), "{err}");
        // Nor may it record work or sign off, or create a work order that
        // is already done, or any record but a plan or a work order.
        let mut worked = wo.clone();
        worked.status = keelson_model::WorkStatus::Done;
        b = Record::WorkOrder(wo.clone());
        let err =
            check_edit(Sender::Shore, Some(&b), &Record::WorkOrder(worked.clone())).unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
        let err = check_edit(Sender::Shore, None, &Record::WorkOrder(worked)).unwrap_err();
        assert!(err.to_string().contains("status past open"), "{err}");
        let err = check_edit(Sender::Shore, None, &Record::Equipment(pump)).unwrap_err();
        assert!(matches!(err, RecordError::Forbidden(_)), "{err}");
        // A plan created ashore must be signed as the shore's, and a vessel
        // may not pass its own off as the shore's.
        let mut unsigned = plan.clone();
        unsigned.created_by = "chief".into();
        assert!(check_edit(Sender::Shore, None, &Record::Plan(unsigned)).is_err());
        assert!(check_edit(Sender::Vessel, None, &Record::Plan(plan)).is_err());

        // Only the office decides on a requisition: a vessel's decision is
        // refused, and so is one made on board through the operation.
        let req: keelson_model::Requisition = serde_json::from_value(serde_json::json!({
            "id": "r1", "vessel_id": "v1", "status": "submitted", "note": "", "lines": [],
            "submissions": [{"id": "s1", "by": "chief", "at": "2026-11-01T00:00:00Z"}],
            "created_by": "chief", "created_at": "2026-11-01T00:00:00Z",
            "updated_at": "2026-11-01T00:00:00Z"
        }))
        .unwrap();
        let mut decided = req.clone();
        decided.status = keelson_model::RequisitionStatus::Approved;
        decided.decisions.push(keelson_model::Decision {
            id: "d1".into(),
            by: "chief".into(),
            at: Utc::now(),
            approved: true,
            note: String::new(),
        });
        let before = Record::Requisition(req);
        let after = Record::Requisition(decided);
        assert!(check_edit(Sender::Vessel, Some(&before), &after).is_err());
        check_edit(Sender::Shore, Some(&before), &after).unwrap();
        assert!(matches!(
            crate::decide_requisition(
                &ship_db,
                "r1",
                keelson_model::NewDecision {
                    approved: true,
                    note: String::new()
                },
                &chief()
            ),
            Err(RecordError::Forbidden(_))
        ));
    }
}
