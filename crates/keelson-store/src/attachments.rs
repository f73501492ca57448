//! The attachments table (projected from fault and work-order documents)
//! and the progress of attachment files through the files lane: on board,
//! what the shore has acknowledged of each file (`file_uploads`); ashore,
//! what has arrived of each vessel's files (`vessel_files`).
//!
//! The bytes themselves are in [`crate::files`].

use crate::records::RecordTx;
use crate::{Db, StoreError, ms};
use keelson_model::{Attachment, ContentType};
use rusqlite::{OptionalExtension, params};

/// An attachment file as both sites look it up to serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The file's type.
    pub content_type: ContentType,
    /// Its size in bytes.
    pub size: u64,
    /// The name it was attached under (the first, when attached twice).
    pub file_name: String,
}

/// A file on board the shore has not yet stored whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFile {
    /// The file's SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// How many leading bytes the shore has acknowledged.
    pub acked: u64,
}

/// Where a vessel's file stands ashore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArrivingFile {
    /// Leading bytes durable in the part file.
    pub received: u64,
    /// Whether the whole file was verified and stored.
    pub complete: bool,
}

impl RecordTx<'_> {
    /// Adds a record's attachments to the attachments table. The list is
    /// append-only, so rows already there stay as they are.
    pub(crate) fn project_attachments(
        &mut self,
        record_id: &str,
        vessel_id: &str,
        attachments: &[Attachment],
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO attachments
                 (record_id, id, vessel_id, sha256, content_type, size, file_name, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for a in attachments {
            stmt.execute(params![
                record_id,
                a.id,
                vessel_id,
                a.sha256,
                a.content_type.as_str(),
                a.size as i64,
                a.file_name,
                ms(a.at),
            ])?;
        }
        Ok(())
    }
}

impl Db {
    /// The type, size and name of an attachment file of `vessel_id`, when a
    /// record of that vessel names it.
    pub fn attachment_file(
        &self,
        vessel_id: &str,
        sha256: &str,
    ) -> Result<Option<FileMeta>, StoreError> {
        let conn = self.reader()?;
        let row: Option<(String, i64, String)> = conn
            .query_row(
                "SELECT content_type, size, file_name FROM attachments
                 WHERE vessel_id = ?1 AND sha256 = ?2 ORDER BY at_ms, id LIMIT 1",
                params![vessel_id, sha256],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(t, size, file_name)| {
            Ok(FileMeta {
                content_type: ContentType::from_mime(&t)
                    .ok_or_else(|| StoreError::Corrupt(format!("attachment type {t:?}")))?,
                size: size as u64,
                file_name,
            })
        })
        .transpose()
    }

    /// The files of `vessel_id` the shore has not stored whole yet, oldest
    /// attachment first, at most `limit`.
    pub fn pending_files(
        &self,
        vessel_id: &str,
        limit: usize,
    ) -> Result<Vec<PendingFile>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.sha256, MAX(a.size), COALESCE(MAX(u.acked), 0) FROM attachments a
             LEFT JOIN file_uploads u ON u.sha256 = a.sha256
             WHERE a.vessel_id = ?1 AND COALESCE(u.done, 0) = 0
             GROUP BY a.sha256 ORDER BY MIN(a.at_ms), a.sha256 LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![vessel_id, limit as i64], |r| {
            Ok(PendingFile {
                sha256: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                acked: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many files of `vessel_id` wait for the shore, and how many of
    /// their bytes it has not acknowledged.
    pub fn pending_file_totals(&self, vessel_id: &str) -> Result<(u64, u64), StoreError> {
        let conn = self.reader()?;
        let (n, bytes): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size - acked), 0) FROM (
                 SELECT MAX(a.size) AS size, COALESCE(MAX(u.acked), 0) AS acked FROM attachments a
                 LEFT JOIN file_uploads u ON u.sha256 = a.sha256
                 WHERE a.vessel_id = ?1 AND COALESCE(u.done, 0) = 0
                 GROUP BY a.sha256)",
            [vessel_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n as u64, bytes.max(0) as u64))
    }

    /// Records what the shore acknowledged of a file: `acked` leading bytes,
    /// and whether it now holds the whole file. The shore's word is taken
    /// even when it is less than before (a shore restored from a backup).
    pub fn ack_file(&self, sha256: &str, acked: u64, done: bool) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO file_uploads (sha256, acked, done) VALUES (?1, ?2, ?3)
             ON CONFLICT(sha256) DO UPDATE SET acked = excluded.acked, done = excluded.done",
            params![sha256, acked as i64, done],
        )?;
        Ok(())
    }

    /// Where a vessel's file stands ashore; all zero when nothing arrived.
    pub fn arriving_file(&self, vessel_id: &str, sha256: &str) -> Result<ArrivingFile, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT received, complete FROM vessel_files WHERE vessel_id = ?1 AND sha256 = ?2",
                params![vessel_id, sha256],
                |r| {
                    Ok(ArrivingFile {
                        received: r.get::<_, i64>(0)? as u64,
                        complete: r.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records how much of a vessel's file is durable ashore.
    pub fn set_arriving_file(
        &self,
        vessel_id: &str,
        sha256: &str,
        state: ArrivingFile,
    ) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO vessel_files (vessel_id, sha256, received, complete) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(vessel_id, sha256) DO UPDATE SET received = excluded.received,
                 complete = excluded.complete",
            params![vessel_id, sha256, state.received as i64, state.complete],
        )?;
        Ok(())
    }
}
