//! Maintenance records as automerge documents: one document per record,
//! never one per vessel, because memory and load time grow with each
//! document's history and a vessel-wide document would grow without bound.
//!
//! [`RecordDoc`] holds a record of any kind. What every kind shares lives
//! here: loading, saving, merging remote changes all or nothing, the history
//! and the comment thread. Where kinds differ (their fields and their rules)
//! the code dispatches on the root's `kind`: faults below, equipment in
//! [`equipment`], work orders in [`work_order`], counters in [`counter`],
//! plans in [`plan`], spare parts in [`part`], requisitions in
//! [`requisition`]. [`RecordDoc::to_record`] reads any kind back as a
//! [`Record`].
//!
//! Every document's root map holds `kind` (string), `schema` (uint, the
//! layout version of that kind), `id` and `vessel_id` (strings that never
//! change after creation), `created_at` and `updated_at` (timestamps).
//!
//! # Fault layout (schema 1)
//!
//! The root map of a fault document holds:
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `kind` | string | always `"fault"` |
//! | `schema` | uint | layout version, [`FAULT_SCHEMA`] |
//! | `id`, `vessel_id` | string | identity; never change after creation |
//! | `title`, `description`, `equipment` | string | free text |
//! | `severity`, `status` | string | the model's snake_case names |
//! | `reporter` | string | who logged the fault |
//! | `created_at`, `updated_at` | timestamp | milliseconds since the unix epoch |
//! | `comments` | list of maps | `{id, author, text, at}`, `at` a timestamp |
//! | `attachments` | list of maps, absent until the first | see [`attachment`] |
//! | `cause`, `corrective_action` | string, absent until first recorded | free text |
//!
//! `cause` and `corrective_action` came after the first faults were written.
//! They are read as empty when absent and are not written when a fault is
//! created, so documents from before them stay valid and a new fault's first
//! change stays as small as it was.
//!
//! Text fields are plain string scalars rather than automerge Text objects:
//! each is replaced whole, so concurrent edits of different fields both
//! survive a merge and concurrent edits of the same field resolve to one
//! winner (last writer wins), which is acceptable for these short fields and
//! keeps each change small on the wire. Timestamps are stored as automerge
//! timestamps (i64 milliseconds), so anything finer than a millisecond is
//! dropped; [`RecordDoc::to_fault`] returns the truncated values.
//!
//! # Changes
//!
//! Every local edit is committed as exactly one automerge change and its raw
//! bytes are returned, so the caller can append them to its change log in the
//! same database transaction as the saved document. Each change carries its
//! author's user name as the change message and the time to the second, so
//! the audit trail ([`RecordDoc::history`]) reads who changed a record and
//! when from the changes themselves, on both sites. That costs a few bytes
//! per change on the wire (a short name and a varint), which is the price of
//! an audit trail nobody can rewrite without rewriting the change's hash.
//!
//! # Actors
//!
//! Each [`RecordDoc`] value gets a fresh random 16-byte actor id when it is
//! created, loaded or rebuilt from changes. Two sites, or two handlers on the
//! same site that load the same record at once, therefore never share an
//! actor, and automerge never sees two different changes with the same actor
//! and sequence number. The price is one more actor entry in a document per
//! editing session (16 bytes) and chunks that compress a little worse, since
//! every change names its actor. A caller that can guarantee the conditions
//! listed on [`RecordDoc::set_actor`] may reuse one actor instead. For the
//! same reason `RecordDoc` is not `Clone`.
//!
//! # Applying remote changes
//!
//! [`RecordDoc::apply_changes`] is all-or-nothing: the batch is decoded first,
//! applied to a scratch copy, and only swapped in when the result is still a
//! valid fault with the same id and vessel. A batch that references changes
//! the document lacks is refused too, because automerge would otherwise hold
//! those changes in a queue that [`RecordDoc::save`] silently drops.

use std::fmt;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, AutomergeError, Change, ChangeHash, ObjId, ObjType, ROOT, ReadDoc,
    ScalarValue, Value,
};
use chrono::{DateTime, Utc};
use keelson_model::{
    Comment, Fault, FaultPatch, HistoryEntry, NewFault, Record, Severity, Status, ValidationError,
    validate_vessel_id,
};
use ring::rand::{SecureRandom, SystemRandom};

use crate::SyncError;

pub mod attachment;
pub mod counter;
pub mod equipment;
pub mod part;
pub mod plan;
pub mod requisition;
pub mod work_order;

/// The `kind` of a fault document.
pub const FAULT_KIND: &str = "fault";
/// The layout version written into new fault documents.
pub const FAULT_SCHEMA: u64 = 1;
/// Longest record or comment id accepted, in characters.
pub const MAX_RECORD_ID_LEN: usize = 64;
/// Longest reporter or comment author accepted, in characters.
pub const MAX_PERSON_LEN: usize = 128;

/// Root map keys, named once so writer and reader cannot drift apart.
mod key {
    pub(super) const KIND: &str = "kind";
    pub(super) const SCHEMA: &str = "schema";
    pub(super) const ID: &str = "id";
    pub(super) const VESSEL_ID: &str = "vessel_id";
    pub(super) const TITLE: &str = "title";
    pub(super) const DESCRIPTION: &str = "description";
    pub(super) const EQUIPMENT: &str = "equipment";
    pub(super) const SEVERITY: &str = "severity";
    pub(super) const STATUS: &str = "status";
    pub(super) const CAUSE: &str = "cause";
    pub(super) const CORRECTIVE_ACTION: &str = "corrective_action";
    pub(super) const REPORTER: &str = "reporter";
    pub(super) const CREATED_AT: &str = "created_at";
    pub(super) const UPDATED_AT: &str = "updated_at";
    pub(super) const CREATED_BY: &str = "created_by";
    pub(super) const COMMENTS: &str = "comments";
    pub(super) const C_ID: &str = "id";
    pub(super) const C_AUTHOR: &str = "author";
    pub(super) const C_TEXT: &str = "text";
    pub(super) const C_AT: &str = "at";
}

/// What a caller needs to know about an encoded change before applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The change's hash as 64 hex characters; changes are content-addressed,
    /// so this is the key to deduplicate on.
    pub hash: String,
    /// Length of the encoded change in bytes.
    pub len: usize,
    /// The author actor id, as hex.
    pub actor: String,
    /// The change's sequence number for its actor (1-based).
    pub seq: u64,
    /// Hashes (hex) of the changes this one depends on.
    pub deps: Vec<String>,
    /// Number of operations in the change.
    pub ops: usize,
}

/// Decodes one change without applying it, so a receiver can validate,
/// size-check and deduplicate before touching a document.
pub fn decode_change(bytes: &[u8]) -> Result<ChangeInfo, SyncError> {
    guarded("change", || decode_change_unguarded(bytes))
}

fn decode_change_unguarded(bytes: &[u8]) -> Result<ChangeInfo, SyncError> {
    let change = parse_change(bytes)?;
    Ok(ChangeInfo {
        hash: change.hash().to_string(),
        len: bytes.len(),
        actor: change.actor_id().to_hex_string(),
        seq: change.seq(),
        deps: change.deps().iter().map(ToString::to_string).collect(),
        ops: change.len(),
    })
}

/// Checks a record or comment id: 1 to [`MAX_RECORD_ID_LEN`] characters and
/// no control characters.
pub fn validate_record_id(field: &'static str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if id.chars().count() > MAX_RECORD_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_RECORD_ID_LEN} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn validate_person(field: &'static str, name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if name.chars().count() > MAX_PERSON_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_PERSON_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// One fault record as an automerge document.
pub struct RecordDoc {
    doc: AutoCommit,
}

impl fmt::Debug for RecordDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The whole op set is far too noisy for a log line; the actor is what
        // tells two in-memory copies apart.
        f.debug_struct("RecordDoc")
            .field("actor", &self.actor_hex())
            .finish_non_exhaustive()
    }
}

impl RecordDoc {
    /// Creates the document of a newly logged fault and returns it with the
    /// one change that creates it. The input is validated (and trimmed) with
    /// the model's rules; the status starts as open.
    pub fn create_fault(
        id: &str,
        vessel_id: &str,
        new: &NewFault,
        reporter: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        Self::create_fault_as(
            random_actor()?.to_bytes(),
            id,
            vessel_id,
            new,
            reporter,
            now,
        )
    }

    /// [`RecordDoc::create`] with a caller-chosen actor, under the conditions
    /// listed on [`RecordDoc::set_actor`].
    pub fn create_fault_as(
        actor: &[u8],
        id: &str,
        vessel_id: &str,
        new: &NewFault,
        reporter: &str,
        now: DateTime<Utc>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        validate_record_id("id", id)?;
        validate_vessel_id(vessel_id)?;
        validate_person("reporter", reporter)?;
        let new = new.clone().validated()?;
        let at = ScalarValue::Timestamp(now.timestamp_millis());

        let mut fault = RecordDoc {
            doc: AutoCommit::new(),
        };
        fault.set_actor(actor)?;
        let change = fault.transact(reporter, now, |d| {
            d.put(ROOT, key::KIND, FAULT_KIND)?;
            d.put(ROOT, key::SCHEMA, FAULT_SCHEMA)?;
            d.put(ROOT, key::ID, id)?;
            d.put(ROOT, key::VESSEL_ID, vessel_id)?;
            d.put(ROOT, key::TITLE, new.title.as_str())?;
            d.put(ROOT, key::DESCRIPTION, new.description.as_str())?;
            d.put(ROOT, key::EQUIPMENT, new.equipment.as_str())?;
            d.put(ROOT, key::SEVERITY, new.severity.as_str())?;
            d.put(ROOT, key::STATUS, Status::Open.as_str())?;
            d.put(ROOT, key::REPORTER, reporter)?;
            d.put(ROOT, key::CREATED_AT, at.clone())?;
            d.put(ROOT, key::UPDATED_AT, at)?;
            d.put_object(ROOT, key::COMMENTS, ObjType::List)?;
            Ok(())
        })?;
        let change =
            change.ok_or_else(|| SyncError::Internal("creating a fault wrote nothing".into()))?;
        Ok((fault, change))
    }

    /// Loads a document saved with [`RecordDoc::save`]. The content is checked
    /// lazily, by [`RecordDoc::to_fault`].
    pub fn load(bytes: &[u8]) -> Result<RecordDoc, SyncError> {
        guarded("document", || Self::load_unguarded(bytes))
    }

    fn load_unguarded(bytes: &[u8]) -> Result<RecordDoc, SyncError> {
        // An empty input loads as an empty automerge document, which is never
        // a record, so it is refused here rather than at first use.
        if bytes.is_empty() {
            return Err(SyncError::malformed("record document: no bytes"));
        }
        let doc = AutoCommit::load(bytes)
            .map_err(|e| SyncError::malformed(format!("record document: {e}")))?;
        Ok(RecordDoc {
            doc: doc.with_actor(random_actor()?),
        })
    }

    /// Builds a document from scratch out of its changes, as the receiver of
    /// a record it has never seen does. The changes may come in any order but
    /// must be complete and must form a valid fault.
    pub fn from_changes(changes: &[Vec<u8>]) -> Result<RecordDoc, SyncError> {
        guarded("changes", || Self::from_changes_unguarded(changes))
    }

    fn from_changes_unguarded(changes: &[Vec<u8>]) -> Result<RecordDoc, SyncError> {
        if changes.is_empty() {
            return Err(SyncError::malformed("record: no changes to build it from"));
        }
        let mut fault = RecordDoc {
            doc: AutoCommit::new().with_actor(random_actor()?),
        };
        fault.apply_changes(changes)?;
        Ok(fault)
    }

    /// The whole document in automerge's compact form, for the store.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Replaces this value's random actor with a caller-chosen one (1 to 32
    /// bytes) for the edits that follow.
    ///
    /// Reusing one actor across many edits makes chunks compress better
    /// (each change names its actor), but it is only safe when the caller
    /// guarantees that no two `RecordDoc` values with that actor ever edit the
    /// same record at once, that every local change is saved before the next
    /// edit, and that the actor is replaced whenever the database could have
    /// gone back in time (a restore from backup); otherwise two different
    /// changes get the same actor and sequence number and peers refuse the
    /// second. A fresh random actor per process start, with record edits
    /// serialized by the store, meets all three.
    pub fn set_actor(&mut self, actor: &[u8]) -> Result<(), SyncError> {
        if actor.is_empty() || actor.len() > 32 {
            return Err(SyncError::Internal(format!(
                "actor ids are 1 to 32 bytes, got {}",
                actor.len()
            )));
        }
        self.doc.set_actor(ActorId::from(actor));
        Ok(())
    }

    /// This value's actor id, as hex (for logs and diagnostics).
    pub fn actor_hex(&self) -> String {
        self.doc.get_actor().to_hex_string()
    }

    /// The hashes (hex) of the document's current heads, for the repair path
    /// that compares heads when sequence cursors disagree.
    pub fn heads(&mut self) -> Vec<String> {
        self.doc
            .get_heads()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The raw bytes of every change that is not an ancestor of `heads`
    /// (hex hashes), oldest first; an empty `heads` gives the whole history.
    /// Heads this document does not know are ignored, which only makes the
    /// answer larger, never incomplete.
    pub fn changes_after(&mut self, heads: &[String]) -> Result<Vec<Vec<u8>>, SyncError> {
        let heads = parse_hashes(heads)?;
        Ok(self
            .doc
            .get_changes(&heads)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect())
    }

    /// Packs the changes `hashes` (hex) of this document into one automerge
    /// bundle: the document encoding's columnar tricks applied to a set of
    /// changes, which names dependencies inside the set by index instead of
    /// by 32-byte hash. It is far smaller on the wire than the changes one
    /// by one, and [`expand_bundle`] turns it back into the same changes.
    pub fn bundle(&self, hashes: &[String]) -> Result<Vec<u8>, SyncError> {
        let hashes = parse_hashes(hashes)?;
        let bundle = self
            .doc
            .bundle(hashes)
            .map_err(|e| SyncError::Internal(format!("bundling changes: {e}")))?;
        Ok(bundle.bytes().to_vec())
    }

    /// written (and then `updated_at` too), so re-sending the same form makes
    /// no change at all: the result is `None`.
    ///
    /// Status transitions are not checked here; which moves a user may make
    /// is a business rule of the caller, and merges may combine any two.
    pub fn apply_patch(
        &mut self,
        patch: &FaultPatch,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let patch = patch.clone().validated()?;
        validate_person("author", author)?;
        let current = self.to_fault()?;

        let mut writes: Vec<(&'static str, String)> = Vec::new();
        let mut differs = |k: &'static str, new: Option<&str>, old: &str| {
            if let Some(new) = new.filter(|n| *n != old) {
                writes.push((k, new.to_owned()));
            }
        };
        differs(key::TITLE, patch.title.as_deref(), &current.title);
        differs(
            key::DESCRIPTION,
            patch.description.as_deref(),
            &current.description,
        );
        differs(
            key::EQUIPMENT,
            patch.equipment.as_deref(),
            &current.equipment,
        );
        differs(
            key::SEVERITY,
            patch.severity.map(Severity::as_str),
            current.severity.as_str(),
        );
        differs(
            key::STATUS,
            patch.status.map(Status::as_str),
            current.status.as_str(),
        );
        differs(key::CAUSE, patch.cause.as_deref(), &current.cause);
        differs(
            key::CORRECTIVE_ACTION,
            patch.corrective_action.as_deref(),
            &current.corrective_action,
        );
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

    /// Appends a comment to the thread and returns the change. A comment id
    /// already in the thread is refused, so a retried request cannot post the
    /// same comment twice.
    pub fn add_comment(
        &mut self,
        comment_id: &str,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", comment_id)?;
        validate_person("author", author)?;
        let text = keelson_model::fault::validate_comment(text)?;
        let current = self.to_record()?;
        if !current.takes_comments() {
            return Err(ValidationError::new(
                "text",
                format!("{} records take no comments", current.kind()),
            )
            .into());
        }
        ensure_new_entry(
            current.comments().iter().map(|c| c.id.as_str()),
            comment_id,
            "a comment",
        )?;
        // Appending at the end keeps the list in local order; concurrent
        // appends from two sites both survive and are ordered by `at` when
        // read.
        self.append_entry(
            key::COMMENTS,
            current.updated_at(),
            author,
            now,
            "adding a comment",
            vec![
                (key::C_ID, comment_id.into()),
                (key::C_AUTHOR, author.into()),
                (key::C_TEXT, text.as_str().into()),
                (key::C_AT, ScalarValue::Timestamp(now.timestamp_millis())),
            ],
        )
    }

    /// Applies changes received from another site, all or nothing.
    ///
    /// Every change is decoded first (any that does not decode makes the
    /// whole batch [`SyncError::Malformed`]); changes already held are
    /// skipped, so re-sent data is harmless. The batch is refused with
    /// [`SyncError::MissingDependencies`] when it needs changes the document
    /// lacks, [`SyncError::Rejected`] when it clashes with the history or
    /// leaves an invalid record or changes the record's kind or id, and
    /// [`SyncError::WrongVessel`] when it moves the record to another vessel.
    pub fn apply_changes(&mut self, changes: &[Vec<u8>]) -> Result<(), SyncError> {
        guarded("changes", || self.apply_changes_unguarded(changes))
    }

    fn apply_changes_unguarded(&mut self, changes: &[Vec<u8>]) -> Result<(), SyncError> {
        let decoded = changes
            .iter()
            .map(|c| parse_change(c))
            .collect::<Result<Vec<_>, _>>()?;
        if decoded.is_empty() {
            return Ok(());
        }
        let identity = if self.doc.is_empty() {
            None
        } else {
            Some((
                get_string(&self.doc, &ROOT, key::KIND)?,
                get_string(&self.doc, &ROOT, key::ID)?,
                get_string(&self.doc, &ROOT, key::VESSEL_ID)?,
            ))
        };

        // Work on a copy so a refused batch leaves the document untouched.
        let mut trial = self.doc.clone();
        trial
            .apply_changes(decoded)
            .map_err(|e| SyncError::Rejected(e.to_string()))?;
        let missing = trial.get_missing_deps(&[]);
        if !missing.is_empty() {
            return Err(SyncError::MissingDependencies(
                missing.iter().map(ToString::to_string).collect(),
            ));
        }
        let trial = RecordDoc { doc: trial };
        let record = trial
            .to_record()
            .map_err(|e| SyncError::Rejected(format!("result is not a valid record: {e}")))?;
        if let Some((kind, id, vessel_id)) = identity {
            if record.kind() != kind {
                return Err(SyncError::Rejected(format!(
                    "changes would turn {kind} {id} into a {}",
                    record.kind()
                )));
            }
            if record.id() != id {
                return Err(SyncError::Rejected(format!(
                    "changes would rename {kind} {id} to {}",
                    record.id()
                )));
            }
            if record.vessel_id() != vessel_id {
                return Err(SyncError::WrongVessel {
                    expected: vessel_id,
                    got: record.vessel_id().to_owned(),
                });
            }
        }
        tracing::debug!(
            record_id = %record.id(),
            changes = changes.len(),
            "applied remote changes"
        );
        self.doc = trial.doc;
        Ok(())
    }

    /// Reads the document as a [`Fault`], checking everything a peer could
    /// have got wrong: the kind and schema, that each field is present with
    /// the right type, that enums parse and that texts obey the model's
    /// limits. Any failure is [`SyncError::Malformed`]. Comments come sorted
    /// by time, then id, so every site shows the same order.
    pub fn to_fault(&self) -> Result<Fault, SyncError> {
        self.to_kind(FAULT_KIND, |r| match r {
            Record::Fault(f) => Some(f),
            _ => None,
        })
    }

    /// The record's kind as its root says, unchecked.
    pub fn kind(&self) -> Result<String, SyncError> {
        guarded("document", || get_string(&self.doc, &ROOT, key::KIND))
    }

    /// Reads the document as whatever record its `kind` says, checking
    /// everything a peer could have got wrong (see [`RecordDoc::to_fault`]).
    /// An unknown kind is [`SyncError::Malformed`].
    pub fn to_record(&self) -> Result<Record, SyncError> {
        guarded("document", || {
            let kind = get_string(&self.doc, &ROOT, key::KIND)?;
            match kind.as_str() {
                FAULT_KIND => {
                    check_schema(&self.doc, FAULT_KIND, FAULT_SCHEMA)?;
                    self.read_fault().map(Record::Fault)
                }
                equipment::KIND => {
                    check_schema(&self.doc, equipment::KIND, equipment::SCHEMA)?;
                    self.read_equipment().map(Record::Equipment)
                }
                work_order::KIND => {
                    check_schema(&self.doc, work_order::KIND, work_order::SCHEMA)?;
                    self.read_work_order().map(Record::WorkOrder)
                }
                counter::KIND => {
                    check_schema(&self.doc, counter::KIND, counter::SCHEMA)?;
                    self.read_counter().map(Record::Counter)
                }
                plan::KIND => {
                    check_schema(&self.doc, plan::KIND, plan::SCHEMA)?;
                    self.read_plan().map(Record::Plan)
                }
                part::KIND => {
                    check_schema(&self.doc, part::KIND, part::SCHEMA)?;
                    self.read_part().map(Record::Part)
                }
                requisition::KIND => {
                    check_schema(&self.doc, requisition::KIND, requisition::SCHEMA)?;
                    self.read_requisition().map(Record::Requisition)
                }
                other => Err(SyncError::malformed(format!(
                    "record: unknown kind {other:?}"
                ))),
            }
        })
    }

    /// The record's history for its audit trail, oldest first: each
    /// change with the author and time it carries. Changes made before
    /// changes carried them show neither.
    pub fn history(&mut self) -> Vec<HistoryEntry> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|c| HistoryEntry {
                hash: c.hash().to_string(),
                author: c.message().filter(|m| !m.is_empty()).map(str::to_owned),
                at: (c.timestamp() > 0)
                    .then(|| DateTime::from_timestamp(c.timestamp(), 0))
                    .flatten(),
                ops: c.len(),
            })
            .collect()
    }

    fn read_fault(&self) -> Result<Fault, SyncError> {
        let d = &self.doc;

        let id = get_string(d, &ROOT, key::ID)?;
        validate_record_id("id", &id).map_err(invalid_field)?;
        let vessel_id = get_string(d, &ROOT, key::VESSEL_ID)?;
        validate_vessel_id(&vessel_id).map_err(invalid_field)?;
        let title = get_string(d, &ROOT, key::TITLE)?;
        let description = get_string(d, &ROOT, key::DESCRIPTION)?;
        let equipment = get_string(d, &ROOT, key::EQUIPMENT)?;
        let cause = get_optional(d, &ROOT, key::CAUSE, get_string)?.unwrap_or_default();
        let corrective_action =
            get_optional(d, &ROOT, key::CORRECTIVE_ACTION, get_string)?.unwrap_or_default();
        // The patch validator holds the model's length and character rules
        // for these texts; its trimmed output is not needed here.
        FaultPatch {
            title: Some(title.clone()),
            description: Some(description.clone()),
            equipment: Some(equipment.clone()),
            cause: Some(cause.clone()),
            corrective_action: Some(corrective_action.clone()),
            ..FaultPatch::default()
        }
        .validated()
        .map_err(invalid_field)?;
        let severity = get_string(d, &ROOT, key::SEVERITY)?
            .parse::<Severity>()
            .map_err(invalid_field)?;
        let status = get_string(d, &ROOT, key::STATUS)?
            .parse::<Status>()
            .map_err(invalid_field)?;
        let reporter = get_string(d, &ROOT, key::REPORTER)?;
        validate_person("reporter", &reporter).map_err(invalid_field)?;
        let created_at = get_time(d, &ROOT, key::CREATED_AT)?;
        let updated_at = get_latest_time(d, key::UPDATED_AT)?;
        let comments = read_comments(d)?;
        let attachments = attachment::read_attachments(d)?;

        Ok(Fault {
            id,
            vessel_id,
            title,
            description,
            equipment,
            severity,
            status,
            cause,
            corrective_action,
            reporter,
            created_at,
            updated_at,
            comments,
            attachments,
        })
    }

    /// Creates the document of a new record of `layout` (its kind and
    /// schema) with the caller's actor, as one change by `author`: the
    /// root's identity, what `fields` writes, then who created it and when.
    /// Every kind but the fault, which names its reporter instead, is
    /// created through here.
    fn create_as(
        actor: &[u8],
        layout: (&'static str, u64),
        id: &str,
        vessel_id: &str,
        author: &str,
        now: DateTime<Utc>,
        fields: impl FnOnce(&mut AutoCommit) -> Result<(), AutomergeError>,
    ) -> Result<(RecordDoc, Vec<u8>), SyncError> {
        validate_record_id("id", id)?;
        validate_vessel_id(vessel_id)?;
        validate_person("author", author)?;
        let (kind, schema) = layout;
        let at = ScalarValue::Timestamp(now.timestamp_millis());
        let mut doc = RecordDoc {
            doc: AutoCommit::new(),
        };
        doc.set_actor(actor)?;
        let change = doc.transact(author, now, |d| {
            d.put(ROOT, key::KIND, kind)?;
            d.put(ROOT, key::SCHEMA, schema)?;
            d.put(ROOT, key::ID, id)?;
            d.put(ROOT, key::VESSEL_ID, vessel_id)?;
            fields(d)?;
            d.put(ROOT, key::CREATED_BY, author)?;
            d.put(ROOT, key::CREATED_AT, at.clone())?;
            d.put(ROOT, key::UPDATED_AT, at)?;
            Ok(())
        })?;
        let change = change
            .ok_or_else(|| SyncError::Internal(format!("creating a {kind} wrote nothing")))?;
        Ok((doc, change))
    }

    /// The record as `pick` takes it out of [`Record`]; a record of another
    /// kind than `kind` is malformed for the caller.
    fn to_kind<T>(&self, kind: &str, pick: fn(Record) -> Option<T>) -> Result<T, SyncError> {
        let record = self.to_record()?;
        let got = record.kind();
        pick(record).ok_or_else(|| {
            SyncError::malformed(format!("record: kind is {got:?}, expected {kind:?}"))
        })
    }

    /// Runs `write` as one transaction and commits it. On a write error the
    /// transaction is rolled back so no half-made edit leaks into a later
    /// commit. Returns the change's raw bytes, or `None` when `write` made no
    /// operation (automerge then makes no change).
    fn transact(
        &mut self,
        author: &str,
        now: DateTime<Utc>,
        write: impl FnOnce(&mut AutoCommit) -> Result<(), AutomergeError>,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        if let Err(e) = write(&mut self.doc) {
            self.doc.rollback();
            return Err(SyncError::Internal(format!("writing the record: {e}")));
        }
        let options = CommitOptions::default()
            .with_message(author)
            .with_time(now.timestamp());
        let Some(hash) = self.doc.commit_with(options) else {
            return Ok(None);
        };
        let change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| SyncError::Internal(format!("committed change {hash} not found")))?;
        Ok(Some(change.raw_bytes().to_vec()))
    }

    /// Appends one entry, a map of `fields`, to the end of the root list
    /// `list` and moves `updated_at` on from `updated_at`, as one change by
    /// `author`. Every append-only list of every kind (comments, work
    /// entries, sign-offs, readings, corrections, postponements, stock
    /// movements) is written through here: automerge keeps every concurrent
    /// insert into a list, so entries made on two sites while apart all
    /// survive a merge. `what` names the edit in the error raised if it
    /// wrote nothing.
    fn append_entry(
        &mut self,
        list: &str,
        updated_at: DateTime<Utc>,
        author: &str,
        now: DateTime<Utc>,
        what: &str,
        fields: Fields,
    ) -> Result<Vec<u8>, SyncError> {
        self.append_nested_entry(list, updated_at, author, now, what, fields.into())
    }

    /// [`RecordDoc::append_entry`] for an entry that holds lists of its own.
    fn append_nested_entry(
        &mut self,
        list: &str,
        updated_at: DateTime<Utc>,
        author: &str,
        now: DateTime<Utc>,
        what: &str,
        entry: Entry,
    ) -> Result<Vec<u8>, SyncError> {
        let Entry { fields, lists } = entry;
        let list = list_in(&self.doc, &ROOT, list)?;
        let updated = updated_at_after(updated_at, now);
        let change = self.transact(author, now, |d| {
            let end = d.length(&list);
            let entry = d.insert_object(&list, end, ObjType::Map)?;
            for (k, v) in fields {
                d.put(&entry, k, v)?;
            }
            for (k, maps) in lists {
                let inner = d.put_object(&entry, k, ObjType::List)?;
                for (i, map) in maps.into_iter().enumerate() {
                    let m = d.insert_object(&inner, i, ObjType::Map)?;
                    for (k, v) in map {
                        d.put(&m, k, v)?;
                    }
                }
            }
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })?;
        change.ok_or_else(|| SyncError::Internal(format!("{what} wrote nothing")))
    }
}

/// The fields of a map: names and values.
type Fields = Vec<(&'static str, ScalarValue)>;

/// One entry of an append-only list: its fields and, for the few entries
/// that hold lists of their own (the parts a work entry used), those lists
/// of maps. They are written once with the entry and never change.
struct Entry {
    fields: Fields,
    lists: Vec<(&'static str, Vec<Fields>)>,
}

impl From<Fields> for Entry {
    fn from(fields: Fields) -> Entry {
        Entry {
            fields,
            lists: Vec::new(),
        }
    }
}

/// Refuses an entry id already in an append-only list (`ids`), so a retried
/// request cannot append the same entry twice. `what` names the entry ("a
/// reading").
fn ensure_new_entry<'a>(
    mut ids: impl Iterator<Item = &'a str>,
    id: &str,
    what: &str,
) -> Result<(), SyncError> {
    if ids.any(|i| i == id) {
        return Err(
            ValidationError::new("id", format!("{what} with this id already exists")).into(),
        );
    }
    Ok(())
}

/// Sorts the entries of an append-only list by time, then id: list order
/// differs between sites after a merge, this order does not.
fn sort_entries<T>(entries: &mut [T], key: impl Fn(&T) -> (DateTime<Utc>, &str)) {
    entries.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// What the root of every kind but the fault holds besides its fields.
struct Header {
    id: String,
    vessel_id: String,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Reads and checks a record's identity and who created it and when.
fn read_header(d: &AutoCommit) -> Result<Header, SyncError> {
    let id = get_string(d, &ROOT, key::ID)?;
    validate_record_id("id", &id).map_err(invalid_field)?;
    let vessel_id = get_string(d, &ROOT, key::VESSEL_ID)?;
    validate_vessel_id(&vessel_id).map_err(invalid_field)?;
    let created_by = get_string(d, &ROOT, key::CREATED_BY)?;
    validate_person("created_by", &created_by).map_err(invalid_field)?;
    Ok(Header {
        id,
        vessel_id,
        created_by,
        created_at: get_time(d, &ROOT, key::CREATED_AT)?,
        updated_at: get_latest_time(d, key::UPDATED_AT)?,
    })
}

/// The `updated_at` to write with an edit made at `now`. It never moves
/// backwards: clocks on board and ashore differ, and a comment timed before
/// the last edit must not make the fault look older than it is.
fn updated_at_after(current: DateTime<Utc>, now: DateTime<Utc>) -> ScalarValue {
    ScalarValue::Timestamp(now.max(current).timestamp_millis())
}

fn check_schema(doc: &AutoCommit, kind: &str, expected: u64) -> Result<(), SyncError> {
    let schema = match get_scalar(doc, &ROOT, key::SCHEMA)? {
        ScalarValue::Uint(n) => Some(n),
        ScalarValue::Int(n) => u64::try_from(n).ok(),
        _ => None,
    };
    if schema != Some(expected) {
        return Err(SyncError::malformed(format!(
            "{kind}: unsupported schema {schema:?}, expected {expected}"
        )));
    }
    Ok(())
}

/// Turns a bundle made by [`RecordDoc::bundle`] back into the raw changes it
/// holds that `base` (the receiver's copy of the record, or `None` for a
/// record it does not have) lacks. The bundle is only decoded, on a scratch
/// copy: nothing is applied, so the caller can check and apply the changes
/// as usual. A bundle that depends on changes `base` lacks is
/// [`SyncError::MissingDependencies`]; one that does not decode is
/// [`SyncError::Malformed`].
pub fn expand_bundle(base: Option<&RecordDoc>, bundle: &[u8]) -> Result<Vec<Vec<u8>>, SyncError> {
    guarded("bundle", || expand_bundle_unguarded(base, bundle))
}

fn expand_bundle_unguarded(
    base: Option<&RecordDoc>,
    bundle: &[u8],
) -> Result<Vec<Vec<u8>>, SyncError> {
    let mut trial = match base {
        Some(b) => b.doc.clone(),
        None => AutoCommit::new(),
    };
    let before = trial.get_heads();
    trial
        .load_incremental(bundle)
        .map_err(|e| SyncError::malformed(format!("bundle: {e}")))?;
    let missing = trial.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(SyncError::MissingDependencies(
            missing.iter().map(ToString::to_string).collect(),
        ));
    }
    Ok(trial
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect())
}

/// Runs automerge's decoding of foreign bytes, turning a panic inside it
/// into [`SyncError::Malformed`]. automerge's decoders are not total: some
/// corrupted inputs make them panic (found by the property tests in
/// `tests/hostile_input.rs`). A hostile or damaged payload must cost one
/// refused request, never a crashed handler or a poisoned lock. The panic
/// still reaches the process's panic hook, so it shows in the log.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, SyncError>) -> Result<T, SyncError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_) => Err(SyncError::malformed(format!(
            "{what}: automerge could not decode it"
        ))),
    }
}

fn parse_hashes(hashes: &[String]) -> Result<Vec<ChangeHash>, SyncError> {
    hashes
        .iter()
        .map(|h| {
            h.parse::<ChangeHash>()
                .map_err(|e| SyncError::malformed(format!("change hash {h:?}: {e}")))
        })
        .collect()
}

fn parse_change(bytes: &[u8]) -> Result<Change, SyncError> {
    Change::try_from(bytes).map_err(|e| SyncError::malformed(format!("change: {e}")))
}

fn random_actor() -> Result<ActorId, SyncError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SyncError::Internal("no randomness for an actor id".into()))?;
    Ok(ActorId::from(bytes))
}

fn invalid_field(e: ValidationError) -> SyncError {
    SyncError::malformed(format!("record: {e}"))
}

pub(super) fn get_scalar(doc: &AutoCommit, obj: &ObjId, k: &str) -> Result<ScalarValue, SyncError> {
    match doc.get(obj, k) {
        Ok(Some((Value::Scalar(s), _))) => Ok(s.into_owned()),
        Ok(Some((Value::Object(_), _))) => Err(SyncError::malformed(format!(
            "record: {k} is an object, expected a value"
        ))),
        Ok(None) => Err(SyncError::malformed(format!("record: {k} is missing"))),
        Err(e) => Err(SyncError::malformed(format!("record: reading {k}: {e}"))),
    }
}

fn get_string(doc: &AutoCommit, obj: &ObjId, k: &str) -> Result<String, SyncError> {
    match get_scalar(doc, obj, k)? {
        ScalarValue::Str(s) => Ok(s.to_string()),
        _ => Err(SyncError::malformed(format!("record: {k} is not a string"))),
    }
}

fn time_of(k: &str, value: &ScalarValue) -> Result<DateTime<Utc>, SyncError> {
    match value {
        ScalarValue::Timestamp(ms) => DateTime::from_timestamp_millis(*ms)
            .ok_or_else(|| SyncError::malformed(format!("record: {k} is out of range"))),
        _ => Err(SyncError::malformed(format!(
            "record: {k} is not a timestamp"
        ))),
    }
}

fn get_time(doc: &AutoCommit, obj: &ObjId, k: &str) -> Result<DateTime<Utc>, SyncError> {
    time_of(k, &get_scalar(doc, obj, k)?)
}

/// Reads a root timestamp that sites write concurrently. Automerge settles a
/// conflict by actor order, not by time, so the newest of the conflicting
/// values is taken instead: `updated_at` then means what it says after a
/// merge.
fn get_latest_time(doc: &AutoCommit, k: &str) -> Result<DateTime<Utc>, SyncError> {
    let values = doc
        .get_all(ROOT, k)
        .map_err(|e| SyncError::malformed(format!("record: reading {k}: {e}")))?;
    let mut latest: Option<DateTime<Utc>> = None;
    for (value, _) in values {
        let Value::Scalar(s) = value else {
            return Err(SyncError::malformed(format!(
                "record: {k} is an object, expected a value"
            )));
        };
        let t = time_of(k, &s)?;
        latest = Some(latest.map_or(t, |l| l.max(t)));
    }
    latest.ok_or_else(|| SyncError::malformed(format!("record: {k} is missing")))
}

/// The list `name` in the map `obj`.
fn list_in(doc: &AutoCommit, obj: &ObjId, name: &str) -> Result<ObjId, SyncError> {
    match doc.get(obj, name) {
        Ok(Some((Value::Object(ObjType::List), list))) => Ok(list),
        Ok(Some(_)) => Err(SyncError::malformed(format!(
            "record: {name} is not a list"
        ))),
        Ok(None) => Err(SyncError::malformed(format!("record: {name} is missing"))),
        Err(e) => Err(SyncError::malformed(format!("record: reading {name}: {e}"))),
    }
}

/// The maps of the list `name` in the map `obj`, in list order.
fn list_maps(doc: &AutoCommit, obj: &ObjId, name: &str) -> Result<Vec<ObjId>, SyncError> {
    let list = list_in(doc, obj, name)?;
    (0..doc.length(&list))
        .map(|i| match doc.get(&list, i) {
            Ok(Some((Value::Object(ObjType::Map), map))) => Ok(map),
            Ok(_) => Err(SyncError::malformed(format!(
                "record: {name} {i} is not a map"
            ))),
            Err(e) => Err(SyncError::malformed(format!(
                "record: reading {name} {i}: {e}"
            ))),
        })
        .collect()
}

/// The root map `name`, a map used as a set, and its keys. Sets are kept as
/// maps of key to `true` rather than lists: an entry added on one site and
/// another removed on the other then merge into the set both meant, where
/// two rewritten lists would interleave or duplicate.
fn root_set(doc: &AutoCommit, name: &str) -> Result<(ObjId, Vec<String>), SyncError> {
    match doc.get(ROOT, name) {
        Ok(Some((Value::Object(ObjType::Map), obj))) => {
            let keys = doc.keys(&obj).collect();
            Ok((obj, keys))
        }
        _ => Err(SyncError::malformed(format!("record: {name} is not a map"))),
    }
}

/// Writes a new set (a map of key to `true`) as the root's `name`.
fn put_set(d: &mut AutoCommit, name: &str, items: &[String]) -> Result<(), AutomergeError> {
    let set = d.put_object(ROOT, name, ObjType::Map)?;
    for i in items {
        d.put(&set, i.as_str(), true)?;
    }
    Ok(())
}

/// What a patch does to a set: the entries it adds and the ones it
/// removes.
#[derive(Debug, Default)]
struct SetChanges {
    added: Vec<String>,
    removed: Vec<String>,
}

impl SetChanges {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Writes the changes into the set's map `obj`.
    fn write(&self, d: &mut AutoCommit, obj: &ObjId) -> Result<(), AutomergeError> {
        for a in &self.added {
            d.put(obj, a.as_str(), true)?;
        }
        for r in &self.removed {
            d.delete(obj, r.as_str())?;
        }
        Ok(())
    }
}

/// The changes that turn the set `current` into `new` (no change when the
/// patch leaves the set alone).
fn set_changes(new: Option<&[String]>, current: &[String]) -> SetChanges {
    let Some(new) = new else {
        return SetChanges::default();
    };
    SetChanges {
        added: new
            .iter()
            .filter(|n| !current.contains(n))
            .cloned()
            .collect(),
        removed: current
            .iter()
            .filter(|c| !new.contains(c))
            .cloned()
            .collect(),
    }
}

/// A number, whichever of automerge's numeric types holds it.
fn get_number(doc: &AutoCommit, obj: &ObjId, name: &str) -> Result<f64, SyncError> {
    match get_scalar(doc, obj, name)? {
        ScalarValue::F64(v) => Ok(v),
        ScalarValue::Int(v) => Ok(v as f64),
        ScalarValue::Uint(v) => Ok(v as f64),
        _ => Err(SyncError::malformed(format!(
            "record: {name} is not a number"
        ))),
    }
}

/// A field that is absent for none.
fn get_optional<T>(
    doc: &AutoCommit,
    obj: &ObjId,
    name: &str,
    read: impl FnOnce(&AutoCommit, &ObjId, &str) -> Result<T, SyncError>,
) -> Result<Option<T>, SyncError> {
    match doc.get(obj, name) {
        Ok(None) => Ok(None),
        _ => read(doc, obj, name).map(Some),
    }
}

fn read_comments(doc: &AutoCommit) -> Result<Vec<Comment>, SyncError> {
    let mut comments = Vec::new();
    for map in list_maps(doc, &ROOT, key::COMMENTS)? {
        let id = get_string(doc, &map, key::C_ID)?;
        validate_record_id("comment id", &id).map_err(invalid_field)?;
        let author = get_string(doc, &map, key::C_AUTHOR)?;
        validate_person("comment author", &author).map_err(invalid_field)?;
        let text = get_string(doc, &map, key::C_TEXT)?;
        keelson_model::fault::validate_comment(&text).map_err(invalid_field)?;
        let at = get_time(doc, &map, key::C_AT)?;
        comments.push(Comment {
            id,
            author,
            text,
            at,
        });
    }
    sort_entries(&mut comments, |c| (c.at, c.id.as_str()));
    Ok(comments)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn new_fault() -> NewFault {
        NewFault {
            title: "Leak at ME fuel pump".into(),
            description: "Drip at the flange".into(),
            equipment: "ME".into(),
            severity: Severity::High,
        }
    }

    fn create() -> (RecordDoc, Vec<u8>) {
        RecordDoc::create_fault("f-1", "imo9321483", &new_fault(), "chief", t(0)).unwrap()
    }

    #[test]
    fn create_and_read_back() {
        let (mut doc, change) = create();
        assert!(!change.is_empty());
        let fault = doc.to_fault().unwrap();
        assert_eq!(fault.id, "f-1");
        assert_eq!(fault.vessel_id, "imo9321483");
        assert_eq!(fault.title, "Leak at ME fuel pump");
        assert_eq!(fault.severity, Severity::High);
        assert_eq!(fault.status, Status::Open);
        assert_eq!(fault.reporter, "chief");
        assert_eq!(fault.created_at, t(0));
        assert_eq!(fault.updated_at, t(0));
        assert!(fault.comments.is_empty());

        let info = decode_change(&change).unwrap();
        assert_eq!(info.len, change.len());
        assert_eq!(info.hash.len(), 64);
        assert_eq!(info.seq, 1);
        assert!(info.deps.is_empty());
        assert_eq!(info.actor, doc.actor_hex());

        let saved = doc.save();
        let loaded = RecordDoc::load(&saved).unwrap();
        assert_eq!(loaded.to_fault().unwrap(), fault);
        assert_ne!(loaded.actor_hex(), doc.actor_hex());
    }

    #[test]
    fn create_validates_input() {
        let bad = NewFault {
            title: "  ".into(),
            ..new_fault()
        };
        assert!(matches!(
            RecordDoc::create_fault("f-1", "imo9321483", &bad, "chief", t(0)),
            Err(SyncError::Invalid(_))
        ));
        assert!(matches!(
            RecordDoc::create_fault("f-1", "Bad Vessel", &new_fault(), "chief", t(0)),
            Err(SyncError::Invalid(_))
        ));
        assert!(matches!(
            RecordDoc::create_fault("", "imo9321483", &new_fault(), "chief", t(0)),
            Err(SyncError::Invalid(_))
        ));
        assert!(matches!(
            RecordDoc::create_fault("f-1", "imo9321483", &new_fault(), "", t(0)),
            Err(SyncError::Invalid(_))
        ));
    }

    #[test]
    fn patch_writes_only_what_differs() {
        let (mut doc, _) = create();
        let same = FaultPatch {
            title: Some("Leak at ME fuel pump".into()),
            severity: Some(Severity::High),
            ..FaultPatch::default()
        };
        assert_eq!(doc.apply_patch(&same, "chief", t(10)).unwrap(), None);
        assert_eq!(
            doc.apply_patch(&FaultPatch::default(), "chief", t(10))
                .unwrap(),
            None
        );
        assert_eq!(doc.heads().len(), 1);

        let change = doc
            .apply_patch(
                &FaultPatch {
                    title: Some("Leak at ME fuel pump".into()),
                    status: Some(Status::InProgress),
                    ..FaultPatch::default()
                },
                "chief",
                t(10),
            )
            .unwrap()
            .unwrap();
        assert_eq!(decode_change(&change).unwrap().seq, 2);
        let fault = doc.to_fault().unwrap();
        assert_eq!(fault.status, Status::InProgress);
        assert_eq!(fault.updated_at, t(10));
        assert_eq!(fault.created_at, t(0));

        let bad = FaultPatch {
            title: Some(String::new()),
            ..FaultPatch::default()
        };
        assert!(matches!(
            doc.apply_patch(&bad, "chief", t(11)),
            Err(SyncError::Invalid(_))
        ));
    }

    #[test]
    fn comments_and_duplicate_comment_ids() {
        let (mut doc, _) = create();
        doc.add_comment("c-2", "second", "later", t(20)).unwrap();
        doc.add_comment("c-1", "first", "earlier", t(10)).unwrap();
        assert!(matches!(
            doc.add_comment("c-1", "first", "again", t(30)),
            Err(SyncError::Invalid(_))
        ));
        assert!(matches!(
            doc.add_comment("c-3", "first", "  ", t(30)),
            Err(SyncError::Invalid(_))
        ));
        let fault = doc.to_fault().unwrap();
        let ids: Vec<_> = fault.comments.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c-1", "c-2"]);
        assert_eq!(fault.comments[0].text, "earlier");
        assert_eq!(fault.updated_at, t(20));
    }

    #[test]
    fn concurrent_edits_converge() {
        // Site A (the vessel) creates the fault and ships the change to B.
        let (mut a, create_change) = create();
        let mut b = RecordDoc::from_changes(std::slice::from_ref(&create_change)).unwrap();
        assert_eq!(b.to_fault().unwrap(), a.to_fault().unwrap());
        assert_ne!(a.actor_hex(), b.actor_hex());

        // Both edit different fields and comment while apart.
        let a1 = a
            .apply_patch(
                &FaultPatch {
                    status: Some(Status::InProgress),
                    ..FaultPatch::default()
                },
                "chief",
                t(10),
            )
            .unwrap()
            .unwrap();
        let a2 = a
            .add_comment("c-a", "chief", "isolated the pump", t(11))
            .unwrap();
        let b1 = b
            .apply_patch(
                &FaultPatch {
                    severity: Some(Severity::Critical),
                    description: Some("Spray, not a drip".into()),
                    ..FaultPatch::default()
                },
                "chief",
                t(12),
            )
            .unwrap()
            .unwrap();
        let b2 = b
            .add_comment("c-b", "super@shore", "spare on its way", t(9))
            .unwrap();

        a.apply_changes(&[b1.clone(), b2.clone()]).unwrap();
        b.apply_changes(&[a1.clone(), a2.clone()]).unwrap();

        let fa = a.to_fault().unwrap();
        let fb = b.to_fault().unwrap();
        assert_eq!(fa, fb);
        assert_eq!(fa.status, Status::InProgress);
        assert_eq!(fa.severity, Severity::Critical);
        assert_eq!(fa.description, "Spray, not a drip");
        assert_eq!(fa.updated_at, t(12));
        let ids: Vec<_> = fa.comments.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c-b", "c-a"]);

        // Re-sent changes, in any order and more than once, change nothing.
        let heads = a.heads();
        a.apply_changes(&[b2.clone(), b1.clone(), create_change.clone(), a1, b2])
            .unwrap();
        assert_eq!(a.heads(), heads);
        assert_eq!(a.to_fault().unwrap(), fa);

        // The saved form survives a round trip, and a third site can be built
        // from the full history in any order.
        let mut all = a.changes_after(&[]).unwrap();
        assert_eq!(all.len(), 5);
        all.reverse();
        let c = RecordDoc::from_changes(&all).unwrap();
        assert_eq!(c.to_fault().unwrap(), fa);
        let reloaded = RecordDoc::load(&a.save()).unwrap();
        assert_eq!(reloaded.to_fault().unwrap(), fa);
        assert!(a.changes_after(&heads).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            decode_change(b"not a change"),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(decode_change(&[]), Err(SyncError::Malformed(_))));
        let (mut doc, change) = create();
        let before = doc.heads();
        assert!(matches!(
            doc.apply_changes(&[b"\x85\x6f\x4a\x83garbage".to_vec()]),
            Err(SyncError::Malformed(_))
        ));
        // A good change next to a bad one is not applied either.
        let (_, other) =
            RecordDoc::create_fault("f-2", "imo9321483", &new_fault(), "x", t(0)).unwrap();
        assert!(doc.apply_changes(&[other, b"junk".to_vec()]).is_err());
        assert_eq!(doc.heads(), before);
        for cut in 0..change.len() {
            assert!(decode_change(&change[..cut]).is_err());
        }
        assert!(matches!(
            RecordDoc::load(b"junk"),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(RecordDoc::load(&[]), Err(SyncError::Malformed(_))));
        assert!(matches!(
            RecordDoc::from_changes(&[]),
            Err(SyncError::Malformed(_))
        ));
        assert!(matches!(
            doc.changes_after(&["zz".into()]),
            Err(SyncError::Malformed(_))
        ));
    }

    /// A document whose root says it is something else must never read as a
    /// fault, and changes that would turn a fault into one are refused.
    #[test]
    fn foreign_kind_is_refused() {
        let mut other = AutoCommit::new();
        other.put(ROOT, "kind", "work_order").unwrap();
        other.put(ROOT, "id", "w-1").unwrap();
        other.commit();
        let bytes = other.save();
        let doc = RecordDoc::load(&bytes).unwrap();
        assert!(matches!(doc.to_fault(), Err(SyncError::Malformed(_))));
        let change = other.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            RecordDoc::from_changes(&[change]),
            Err(SyncError::Rejected(_))
        ));

        // A hostile peer edits the kind of an existing fault.
        let (mut a, _) = create();
        let mut evil = AutoCommit::load(&a.save()).unwrap();
        evil.put(ROOT, "kind", "alarm").unwrap();
        evil.commit();
        let evil_change = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[evil_change]),
            Err(SyncError::Rejected(_))
        ));
        assert!(a.to_fault().is_ok());
    }

    #[test]
    fn hostile_changes_to_identity_or_values_are_refused() {
        let (mut a, _) = create();
        let saved = a.save();

        let mut evil = AutoCommit::load(&saved).unwrap();
        evil.put(ROOT, "vessel_id", "imo0000001").unwrap();
        evil.commit();
        let moved = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[moved]),
            Err(SyncError::WrongVessel { .. })
        ));

        let mut evil = AutoCommit::load(&saved).unwrap();
        evil.put(ROOT, "severity", "apocalyptic").unwrap();
        evil.commit();
        let bad_enum = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[bad_enum]),
            Err(SyncError::Rejected(_))
        ));

        let mut evil = AutoCommit::load(&saved).unwrap();
        evil.put(ROOT, "title", 42_i64).unwrap();
        evil.commit();
        let bad_type = evil.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert!(matches!(
            a.apply_changes(&[bad_type]),
            Err(SyncError::Rejected(_))
        ));

        assert_eq!(a.to_fault().unwrap().vessel_id, "imo9321483");
        assert_eq!(a.to_fault().unwrap().severity, Severity::High);
    }

    #[test]
    fn chosen_actor_continues_its_sequence() {
        let (mut a, _) = create();
        let actor = [3u8; 16];
        a.set_actor(&actor).unwrap();
        let c1 = a.add_comment("c-1", "chief", "one", t(1)).unwrap();
        let mut again = RecordDoc::load(&a.save()).unwrap();
        again.set_actor(&actor).unwrap();
        let c2 = again.add_comment("c-2", "chief", "two", t(2)).unwrap();
        let (i1, i2) = (decode_change(&c1).unwrap(), decode_change(&c2).unwrap());
        assert_eq!(i1.actor, hex::encode(actor));
        assert_eq!((i1.seq, i2.seq), (1, 2));
        assert!(again.set_actor(&[]).is_err());
        assert!(again.set_actor(&[0; 33]).is_err());
    }

    #[test]
    fn clashing_history_is_refused() {
        // Two writers that wrongly share an actor make two different changes
        // with the same sequence number; the second must not be merged.
        let (mut a, _) = create();
        let saved = a.save();
        let actor = ActorId::from([7u8; 16]);
        let mut one = AutoCommit::load(&saved).unwrap().with_actor(actor.clone());
        let mut two = AutoCommit::load(&saved).unwrap().with_actor(actor);
        one.put(ROOT, "title", "One").unwrap();
        one.commit();
        two.put(ROOT, "title", "Two").unwrap();
        two.commit();
        let c1 = one.get_last_local_change().unwrap().raw_bytes().to_vec();
        let c2 = two.get_last_local_change().unwrap().raw_bytes().to_vec();
        a.apply_changes(&[c1]).unwrap();
        let before = a.heads();
        assert!(matches!(
            a.apply_changes(&[c2]),
            Err(SyncError::Rejected(_))
        ));
        assert_eq!(a.heads(), before);
        assert_eq!(a.to_fault().unwrap().title, "One");
    }

    #[test]
    fn missing_dependencies_are_refused_whole() {
        let (mut a, create_change) = create();
        let c1 = a.add_comment("c-1", "chief", "one", t(1)).unwrap();
        let c2 = a.add_comment("c-2", "chief", "two", t(2)).unwrap();
        let mut b = RecordDoc::from_changes(&[create_change]).unwrap();
        let before = b.heads();
        match b.apply_changes(std::slice::from_ref(&c2)) {
            Err(SyncError::MissingDependencies(missing)) => {
                assert_eq!(missing, vec![decode_change(&c1).unwrap().hash]);
            }
            other => panic!("expected missing dependencies, got {other:?}"),
        }
        assert_eq!(b.heads(), before);
        // Once the gap is filled, the same change applies.
        b.apply_changes(&[c2, c1]).unwrap();
        assert_eq!(b.to_fault().unwrap(), a.to_fault().unwrap());
        // A history without its creating change cannot start a record.
        let tail = a.changes_after(&[]).unwrap()[1..].to_vec();
        assert!(matches!(
            RecordDoc::from_changes(&tail),
            Err(SyncError::MissingDependencies(_))
        ));
    }
}
