//! Attaching files to faults and work orders.
//!
//! The caller stores the file's bytes first (by their SHA-256) and then
//! records its metadata here, so a record never names a file its own site
//! lacks. Who may attach follows who may work the record: everyone on board
//! may add to a fault (as anyone may log one), engineers to a work order,
//! and a signed-off work order takes nothing more but comments.

use crate::{Actor, FAULT, RecordError, WORK_ORDER, forbid_unless, load_kind, write_local};
use chrono::Utc;
use keelson_model::{Attachment, Fault, NewAttachment, NewFault, Record};
use keelson_store::Db;
use keelson_sync::SyncError;
use keelson_sync::record::RecordDoc;

/// Logs a new fault on `vessel_id`, with a first attachment when `photo`
/// is given (its file already stored): the fault and the attachment are
/// written in one transaction, so the fault is never seen without it.
pub fn create_fault_with(
    db: &Db,
    vessel_id: &str,
    new: NewFault,
    reporter: &str,
    photo: Option<NewAttachment>,
) -> Result<Fault, RecordError> {
    let new = new.validated()?;
    let photo = photo.map(NewAttachment::validated).transpose()?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    let (mut doc, change) =
        RecordDoc::create_fault_as(db.session_actor(), &id, vessel_id, &new, reporter, now)
            .map_err(RecordError::from_codec)?;
    let mut changes = vec![change];
    if let Some(photo) = &photo {
        let attachment_id = uuid::Uuid::new_v4().to_string();
        changes.push(
            doc.add_attachment(&attachment_id, photo, reporter, now)
                .map_err(RecordError::from_codec)?,
        );
    }
    db.transact(|tx| match write_local(tx, &id, &mut doc, changes)? {
        Record::Fault(f) => Ok(f),
        _ => Err(RecordError::Sync(SyncError::Internal(
            "a new fault reads as another kind".into(),
        ))),
    })
}

/// Checks that `actor` may attach files to records of `kind`, before the
/// caller reads and stores a file at all.
pub fn may_attach(kind: &str, actor: &Actor) -> Result<(), RecordError> {
    match kind {
        FAULT => Ok(()),
        WORK_ORDER => forbid_unless(
            actor.role.may_work_orders(),
            "attaching files to a work order needs the engineer role",
        ),
        _ => Err(RecordError::NotFound),
    }
}

/// Checks, before the caller reads or stores a file at all, that `actor`
/// may attach one to the record `id` of `kind` as it stands now, so a
/// refused upload leaves no file behind. [`attach`] checks again in its
/// transaction, which decides.
pub fn check_attach(db: &Db, id: &str, kind: &str, actor: &Actor) -> Result<(), RecordError> {
    may_attach(kind, actor)?;
    let stored = db.record(id)?.ok_or(RecordError::NotFound)?;
    if stored.kind != kind {
        return Err(RecordError::NotFound);
    }
    match db.work_order(id)? {
        Some(w) => takes_attachments(&Record::WorkOrder(w)),
        None => Ok(()),
    }
}

/// A signed-off work order takes nothing more but comments.
fn takes_attachments(record: &Record) -> Result<(), RecordError> {
    match record {
        Record::WorkOrder(w) if w.is_signed_off() => Err(RecordError::Conflict(
            "a signed-off work order takes only comments".into(),
        )),
        _ => Ok(()),
    }
}

/// Appends an attachment to the fault or work order `id` (of `kind`) and
/// returns the record as now read and the new attachment.
pub fn attach(
    db: &Db,
    id: &str,
    kind: &str,
    new: NewAttachment,
    actor: &Actor,
) -> Result<(Record, Attachment), RecordError> {
    may_attach(kind, actor)?;
    let new = new.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_kind(tx, id, kind)?;
        takes_attachments(&current)?;
        let attachment_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .add_attachment(&attachment_id, &new, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?;
        let record = write_local(tx, id, &mut doc, vec![change])?;
        let attachment = record
            .attachments()
            .iter()
            .find(|a| a.id == attachment_id)
            .cloned()
            .ok_or(RecordError::NotFound)?;
        Ok((record, attachment))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Sender, check_edit};
    use keelson_model::{ContentType, Role, Severity};
    use keelson_store::Site;

    fn photo() -> NewAttachment {
        NewAttachment {
            file_name: "pump.png".into(),
            content_type: ContentType::Png,
            size: 10,
            sha256: "a".repeat(64),
            caption: String::new(),
        }
    }

    #[test]
    fn attachments_are_append_only_and_the_shore_adds_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let crew = Actor {
            name: "crew".into(),
            role: Role::Crew,
        };
        let fault = crate::create_fault(
            &db,
            "imo1",
            NewFault {
                title: "Leak".into(),
                description: String::new(),
                equipment: String::new(),
                severity: Severity::Low,
            },
            "crew",
        )
        .unwrap();
        let before = Record::Fault(fault.clone());
        let (after, a) = attach(&db, &fault.id, FAULT, photo(), &crew).unwrap();
        assert_eq!(a.author, "crew");
        assert_eq!(after.attachments(), std::slice::from_ref(&a));
        check_edit(Sender::Vessel, Some(&before), &after).unwrap();
        let err = check_edit(Sender::Shore, Some(&before), &after).unwrap_err();
        assert!(err.to_string().contains("attachments"), "{err}");
        let err = check_edit(Sender::Vessel, Some(&after), &before).unwrap_err();
        assert!(err.to_string().contains("attachment"), "{err}");
        assert!(matches!(
            attach(&db, &fault.id, WORK_ORDER, photo(), &crew),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            attach(&db, "no-such", FAULT, photo(), &crew),
            Err(RecordError::NotFound)
        ));
        check_attach(&db, &fault.id, FAULT, &crew).unwrap();
        assert!(matches!(
            check_attach(
                &db,
                &fault.id,
                WORK_ORDER,
                &Actor {
                    role: Role::Engineer,
                    ..crew.clone()
                }
            ),
            Err(RecordError::NotFound)
        ));
        assert!(matches!(
            check_attach(&db, "no-such", FAULT, &crew),
            Err(RecordError::NotFound)
        ));

        let with_photo = create_fault_with(
            &db,
            "imo1",
            NewFault {
                title: "Cracked gauge glass".into(),
                description: String::new(),
                equipment: String::new(),
                severity: Severity::Medium,
            },
            "crew",
            Some(photo()),
        )
        .unwrap();
        assert_eq!(with_photo.attachments.len(), 1);
        assert_eq!(with_photo.attachments[0].author, "crew");
        let (_, history) = crate::history(&db, &with_photo.id).unwrap();
        assert_eq!(history.len(), 2, "created and attached in one write");
    }
}
