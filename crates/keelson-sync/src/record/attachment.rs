//! The attachment list of faults and work orders.
//!
//! # Layout
//!
//! | key | automerge type | meaning |
//! | --- | --- | --- |
//! | `attachments` | list of maps, absent until the first attachment | `{id, file_name, content_type, size, sha256, caption, author, at}` |
//!
//! `size` is a uint, `at` a timestamp, the rest strings. The list is
//! append-only: an attachment is never changed or removed (the records
//! layer refuses a sync batch that tries), so attachments made on two sites
//! while apart both survive a merge. Documents made before attachments
//! existed have no list; the first attachment creates it. Only the vessel
//! attaches files, and it writes each record under its writer lock, so the
//! list is never created twice concurrently (two concurrent creations
//! would conflict, and one list would hide the other's entries).
//!
//! The document holds metadata only. The bytes are stored by their SHA-256
//! beside the database and travel in their own sync lane.

use super::{
    RecordDoc, get_scalar, get_string, get_time, invalid_field, key, updated_at_after,
    validate_person, validate_record_id,
};
use crate::SyncError;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, Utc};
use keelson_model::attachment::{
    validate_caption, validate_file_name, validate_sha256, validate_size,
};
use keelson_model::{Attachment, ContentType, NewAttachment, Record, ValidationError};

mod k {
    pub(super) const ATTACHMENTS: &str = "attachments";
    pub(super) const ID: &str = "id";
    pub(super) const FILE_NAME: &str = "file_name";
    pub(super) const CONTENT_TYPE: &str = "content_type";
    pub(super) const SIZE: &str = "size";
    pub(super) const SHA256: &str = "sha256";
    pub(super) const CAPTION: &str = "caption";
    pub(super) const AUTHOR: &str = "author";
    pub(super) const AT: &str = "at";
}

impl RecordDoc {
    /// Appends an attachment's metadata as `author` and returns the change.
    /// Only faults and work orders take attachments; whether this one may
    /// is a rule of the caller.
    pub fn add_attachment(
        &mut self,
        attachment_id: &str,
        new: &NewAttachment,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, SyncError> {
        validate_record_id("id", attachment_id)?;
        validate_person("author", author)?;
        let new = new.clone().validated()?;
        let current = self.to_record()?;
        if !matches!(current, Record::Fault(_) | Record::WorkOrder(_)) {
            return Err(ValidationError::new(
                "file",
                format!("{} records take no attachments", current.kind()),
            )
            .into());
        }
        if current.attachments().iter().any(|a| a.id == attachment_id) {
            return Err(
                ValidationError::new("id", "an attachment with this id already exists").into(),
            );
        }
        let existing = match self.doc.get(ROOT, k::ATTACHMENTS) {
            Ok(Some((Value::Object(ObjType::List), list))) => Some(list),
            Ok(None) => None,
            _ => return Err(SyncError::malformed("record: attachments is not a list")),
        };
        let at = ScalarValue::Timestamp(now.timestamp_millis());
        let updated = updated_at_after(current.updated_at(), now);
        let change = self.transact(author, now, |d| {
            let list = match existing {
                Some(list) => list,
                None => d.put_object(ROOT, k::ATTACHMENTS, ObjType::List)?,
            };
            let end = d.length(&list);
            let a = d.insert_object(&list, end, ObjType::Map)?;
            d.put(&a, k::ID, attachment_id)?;
            d.put(&a, k::FILE_NAME, new.file_name.as_str())?;
            d.put(&a, k::CONTENT_TYPE, new.content_type.as_str())?;
            d.put(&a, k::SIZE, ScalarValue::Uint(new.size))?;
            d.put(&a, k::SHA256, new.sha256.as_str())?;
            d.put(&a, k::CAPTION, new.caption.as_str())?;
            d.put(&a, k::AUTHOR, author)?;
            d.put(&a, k::AT, at)?;
            d.put(ROOT, key::UPDATED_AT, updated)?;
            Ok(())
        })?;
        change.ok_or_else(|| SyncError::Internal("adding an attachment wrote nothing".into()))
    }
}

/// Reads the attachment list, oldest first (then by id, so every site
/// shows the same order), checking every field a peer could have got wrong.
/// A document without the list has no attachments.
pub(super) fn read_attachments(doc: &AutoCommit) -> Result<Vec<Attachment>, SyncError> {
    let list = match doc.get(ROOT, k::ATTACHMENTS) {
        Ok(None) => return Ok(Vec::new()),
        Ok(Some((Value::Object(ObjType::List), list))) => list,
        Ok(Some(_)) => return Err(SyncError::malformed("record: attachments is not a list")),
        Err(e) => {
            return Err(SyncError::malformed(format!(
                "record: reading attachments: {e}"
            )));
        }
    };
    let mut out = Vec::with_capacity(doc.length(&list));
    for i in 0..doc.length(&list) {
        let map = match doc.get(&list, i) {
            Ok(Some((Value::Object(ObjType::Map), map))) => map,
            _ => {
                return Err(SyncError::malformed(format!(
                    "record: attachment {i} is not a map"
                )));
            }
        };
        let id = get_string(doc, &map, k::ID)?;
        validate_record_id("attachment id", &id).map_err(invalid_field)?;
        let file_name = get_string(doc, &map, k::FILE_NAME)?;
        validate_file_name(&file_name).map_err(invalid_field)?;
        let content_type = get_string(doc, &map, k::CONTENT_TYPE)?;
        let content_type = ContentType::from_mime(&content_type).ok_or_else(|| {
            SyncError::malformed(format!(
                "record: attachment {i} has the unknown type {content_type:?}"
            ))
        })?;
        let size = match get_scalar(doc, &map, k::SIZE)? {
            ScalarValue::Uint(n) => n,
            _ => {
                return Err(SyncError::malformed(format!(
                    "record: attachment {i} has a size that is not a uint"
                )));
            }
        };
        validate_size(size).map_err(invalid_field)?;
        let sha256 = get_string(doc, &map, k::SHA256)?;
        validate_sha256(&sha256).map_err(invalid_field)?;
        let caption = get_string(doc, &map, k::CAPTION)?;
        validate_caption(&caption).map_err(invalid_field)?;
        let author = get_string(doc, &map, k::AUTHOR)?;
        validate_person("attachment author", &author).map_err(invalid_field)?;
        let at = get_time(doc, &map, k::AT)?;
        out.push(Attachment {
            id,
            file_name,
            content_type,
            size,
            sha256,
            caption,
            author,
            at,
        });
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use keelson_model::{NewFault, Severity};

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
    }

    fn photo(sha: char) -> NewAttachment {
        NewAttachment {
            file_name: "C:\\photos\\pump.jpg".into(),
            content_type: ContentType::Jpeg,
            size: 2048,
            sha256: sha.to_string().repeat(64),
            caption: "Leak at the flange".into(),
        }
    }

    #[test]
    fn concurrent_attachments_both_survive_and_the_list_reads_in_order() {
        let new = NewFault {
            title: "Leak".into(),
            description: String::new(),
            equipment: String::new(),
            severity: Severity::Low,
        };
        let (mut ship, _) = RecordDoc::create_fault("f-1", "imo1", &new, "crew", t(0)).unwrap();
        assert!(ship.to_fault().unwrap().attachments.is_empty());
        ship.add_attachment("a-1", &photo('a'), "crew", t(10))
            .unwrap();
        let mut other = RecordDoc::load(&ship.save()).unwrap();
        let c2 = ship
            .add_attachment("a-2", &photo('b'), "crew", t(20))
            .unwrap();
        let c3 = other
            .add_attachment("a-3", &photo('c'), "chief", t(15))
            .unwrap();
        ship.apply_changes(&[c3]).unwrap();
        other.apply_changes(&[c2]).unwrap();
        let (a, b) = (ship.to_fault().unwrap(), other.to_fault().unwrap());
        assert_eq!(a.attachments, b.attachments);
        let ids: Vec<_> = a.attachments.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["a-1", "a-3", "a-2"]);
        assert_eq!(a.attachments[0].file_name, "pump.jpg");
        assert_eq!(a.attachments[0].author, "crew");
        assert_eq!(a.updated_at, t(20));
        assert!(matches!(
            ship.add_attachment("a-1", &photo('d'), "crew", t(30)),
            Err(SyncError::Invalid(_))
        ));
        let mut bad = photo('e');
        bad.sha256 = "../../etc/passwd".into();
        assert!(matches!(
            ship.add_attachment("a-9", &bad, "crew", t(30)),
            Err(SyncError::Invalid(_))
        ));
    }
}
