//! Edge-only storage: sensor samples and the vessel's sync cursors.
//!
//! Samples are rows keyed by (10-second slot, tag, time), written in batches
//! by the single ingest writer; a re-written sample replaces itself. Compaction later
//! moves closed hours of rows into compressed blocks and rollups (see the
//! `tiers` module); the queries here read every tier.

use crate::records::RecordTx;
use crate::tiers::Resolution;
use crate::{Db, StoreError, ms, now_ms};
use chrono::{DateTime, TimeZone, Utc};
use keelson_model::{Quality, Sample};
use rusqlite::{OptionalExtension, params};

/// A stored sample as queries return it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSample {
    /// When it was taken.
    pub ts: DateTime<Utc>,
    /// The value, absent when the quality is bad.
    pub value: Option<f64>,
    /// Its quality.
    pub quality: Quality,
}

/// A sync lane's cursors and last outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Highest local change seq the shore acknowledged as durable.
    pub sent_acked: u64,
    /// Highest shore seq this vessel has made durable.
    pub received: u64,
    /// When a sync was last attempted (ms since the epoch).
    pub last_attempt_ms: Option<i64>,
    /// When a sync last completed (ms since the epoch).
    pub last_success_ms: Option<i64>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
}

impl Db {
    /// Makes sure every tag exists with its unit.
    pub fn register_tags(&self, tags: &[(String, String)]) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for (name, unit) in tags {
            tx.execute(
                "INSERT INTO tags (name, unit) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET unit = excluded.unit",
                params![name, unit],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes a batch of samples in one transaction. Samples of tags not
    /// registered yet register them with an empty unit.
    pub fn insert_samples(&self, samples: &[Sample]) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let mut synced_at = match self.inner.samples_synced_at.lock() {
            Ok(guard) => guard,
            // An instant cannot be left half-written.
            Err(poisoned) => poisoned.into_inner(),
        };
        let sync = synced_at.is_none_or(|at| at.elapsed() >= crate::SAMPLE_SYNC_EVERY);
        if !sync {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        let result = insert_batch(&mut conn, samples);
        if !sync {
            // Every other write keeps its FULL commit, whatever happened here.
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        result?;
        if sync {
            *synced_at = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// A tag's samples in `[from, to]`, oldest first, at most `limit`,
    /// whether they are still rows or already in blocks. Returns `NotFound`
    /// for an unknown tag.
    pub fn samples(
        &self,
        tag: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredSample>, StoreError> {
        let series = self.series(tag, ms(from), ms(to), Some(Resolution::Raw), limit as usize)?;
        Ok(series
            .points
            .into_iter()
            .map(|p| StoredSample {
                ts: Utc
                    .timestamp_millis_opt(p.ts_ms)
                    .single()
                    .unwrap_or_default(),
                value: p.value,
                quality: p.quality,
            })
            .collect())
    }

    /// A text tag's texts in `[from, to]` as (time, text), oldest first, at
    /// most `limit`, each where it changed; the text before the range, if
    /// any, comes first so the range starts with what the tag read.
    /// Returns `NotFound` for an unknown tag.
    pub fn tag_texts(
        &self,
        tag: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        let conn = self.reader()?;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM tags WHERE name = ?1")?
            .query_row([tag], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)?;
        let mut stmt = conn.prepare_cached(
            "SELECT ts_ms, text FROM (
                 SELECT ts_ms, text FROM tag_texts WHERE tag_id = ?1 AND ts_ms < ?2
                 ORDER BY ts_ms DESC LIMIT 1)
             UNION ALL
             SELECT ts_ms, text FROM tag_texts WHERE tag_id = ?1 AND ts_ms >= ?2 AND ts_ms <= ?3
             ORDER BY ts_ms LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![id, ms(from), ms(to), limit], |r| {
            Ok((
                Utc.timestamp_millis_opt(r.get(0)?)
                    .single()
                    .unwrap_or_default(),
                r.get::<_, String>(1)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many samples are stored, as rows and in blocks.
    pub fn sample_count(&self) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))?;
        let packed: i64 =
            conn.query_row("SELECT COALESCE(SUM(n), 0) FROM sample_blocks", [], |r| {
                r.get(0)
            })?;
        Ok((rows + packed) as u64)
    }

    /// Takes note of the shore's epoch for `lane`. When it differs from the
    /// one seen before, the shore was restored from a backup and numbers
    /// its outbound changes again: the received cursor goes back to 0, so
    /// the lane is pulled again from the start. Returns whether it did.
    pub fn note_shore_epoch(&self, lane: &str, epoch: &str) -> Result<bool, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let before: Option<String> = tx
            .query_row(
                "SELECT shore_epoch FROM sync_state WHERE lane = ?1",
                [lane],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let restored = before.is_some_and(|b| b != epoch);
        if restored {
            tx.execute("UPDATE sync_state SET received = 0 WHERE lane = ?1", [lane])?;
        }
        tx.execute(
            "UPDATE sync_state SET shore_epoch = ?2 WHERE lane = ?1",
            params![lane, epoch],
        )?;
        tx.commit()?;
        Ok(restored)
    }

    /// A sync lane's state.
    pub fn sync_state(&self, lane: &str) -> Result<SyncState, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT sent_acked, received, last_attempt_ms, last_success_ms, last_error FROM sync_state WHERE lane = ?1",
                [lane],
                |r| {
                    Ok(SyncState {
                        sent_acked: r.get::<_, i64>(0)? as u64,
                        received: r.get::<_, i64>(1)? as u64,
                        last_attempt_ms: r.get(2)?,
                        last_success_ms: r.get(3)?,
                        last_error: r.get(4)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records the shore's acknowledgement of local changes up to `seq`.
    /// The cursor only moves forward.
    pub fn set_sent_acked(&self, lane: &str, seq: u64) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE sync_state SET sent_acked = MAX(sent_acked, ?2) WHERE lane = ?1",
            params![lane, seq as i64],
        )?;
        Ok(())
    }

    /// Moves the lane's acknowledged cursor back to `seq` when it is above
    /// it: the shore holds less than it once acknowledged (it was restored
    /// from a backup), so the lane is sent again from there.
    pub fn rewind_sent_acked(&self, lane: &str, seq: u64) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE sync_state SET sent_acked = MIN(sent_acked, ?2) WHERE lane = ?1",
            params![lane, i64::try_from(seq).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// Records the outcome of a sync attempt.
    pub fn record_sync_attempt(&self, lane: &str, error: Option<&str>) -> Result<(), StoreError> {
        let conn = self.writer()?;
        let now = now_ms();
        match error {
            None => conn.execute(
                "UPDATE sync_state SET last_attempt_ms = ?2, last_success_ms = ?2, last_error = NULL WHERE lane = ?1",
                params![lane, now],
            )?,
            Some(e) => conn.execute(
                "UPDATE sync_state SET last_attempt_ms = ?2, last_error = ?3 WHERE lane = ?1",
                params![lane, now, e],
            )?,
        };
        Ok(())
    }
}

impl Db {
    /// Adds `bytes` to what sync moved over the link on `day` (YYYY-MM-DD).
    pub fn add_sync_usage(&self, day: &str, bytes: u64) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO sync_usage (day, bytes) VALUES (?1, ?2)
             ON CONFLICT(day) DO UPDATE SET bytes = bytes + excluded.bytes",
            params![day, bytes as i64],
        )?;
        Ok(())
    }

    /// What sync moved over the link on `day` (YYYY-MM-DD), in bytes.
    pub fn sync_usage(&self, day: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row("SELECT bytes FROM sync_usage WHERE day = ?1", [day], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .unwrap_or(0) as u64)
    }
}

impl RecordTx<'_> {
    /// Moves the lane's received cursor to `seq` inside the transaction that
    /// stores what was received, so the cursor never runs ahead of the data.
    pub fn set_received(&mut self, lane: &str, seq: u64) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE sync_state SET received = MAX(received, ?2) WHERE lane = ?1",
            params![lane, seq as i64],
        )?;
        Ok(())
    }
}

/// The rows of one sample batch, in key order: a batch sorted by
/// (slot, tag, time) fills the current slot's pages front to back.
fn insert_batch(conn: &mut rusqlite::Connection, samples: &[Sample]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut tag_id = tx.prepare_cached("SELECT id FROM tags WHERE name = ?1")?;
        let mut new_tag = tx.prepare_cached("INSERT INTO tags (name) VALUES (?1)")?;
        // A batch interleaves every tag of every device, so tag ids are
        // looked up once per tag, not once per sample.
        let mut ids: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        let mut rows = Vec::with_capacity(samples.len());
        for s in samples {
            let id = match ids.get(s.tag.as_str()) {
                Some(id) => *id,
                None => {
                    let id = match tag_id
                        .query_row([&s.tag], |r| r.get::<_, i64>(0))
                        .optional()?
                    {
                        Some(id) => id,
                        None => {
                            new_tag.execute([&s.tag])?;
                            tx.last_insert_rowid()
                        }
                    };
                    ids.insert(&s.tag, id);
                    id
                }
            };
            match crate::tiers::row_key(id, ms(s.ts)) {
                Some(key) => rows.push((key, s)),
                None if id > crate::tiers::MAX_TAG_ID => {
                    return Err(StoreError::Limit(format!(
                        "tag {} has id {id}; samples are stored for tag ids up to {}",
                        s.tag,
                        crate::tiers::MAX_TAG_ID
                    )));
                }
                // Ingest only passes times near the present; a time centuries
                // away is a broken clock's, never a reading worth the batch.
                None => {
                    tracing::warn!(tag = %s.tag, ts = %s.ts, "sample time out of range; not stored")
                }
            }
        }
        // The sort is stable, so of two samples with the same tag and time
        // the later in the batch is still written last and wins.
        rows.sort_by_key(|&(key, _)| key);
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO samples (key, value, quality) VALUES (?1, ?2, ?3)",
        )?;
        for (key, s) in &rows {
            insert.execute(params![key, s.value, s.quality.code()])?;
        }
        let mut last_text = tx.prepare_cached(
            "SELECT text FROM tag_texts WHERE tag_id = ?1 AND ts_ms <= ?2 ORDER BY ts_ms DESC LIMIT 1",
        )?;
        let mut put_text = tx.prepare_cached(
            "INSERT OR REPLACE INTO tag_texts (tag_id, ts_ms, text) VALUES (?1, ?2, ?3)",
        )?;
        for s in samples {
            let Some(text) = &s.text else { continue };
            let Some(&id) = ids.get(s.tag.as_str()) else {
                continue;
            };
            let ts_ms = ms(s.ts);
            let before: Option<String> = last_text
                .query_row(params![id, ts_ms], |r| r.get(0))
                .optional()?;
            if before.as_deref() != Some(text.as_str()) {
                put_text.execute(params![id, ts_ms, text])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Site, test_util::open};

    #[test]
    fn samples_round_trip_and_rewrites_replace() {
        let (_dir, db) = open(Site::Edge);
        let t0 = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("ts");
        let s = |i: i64, v: f64| Sample {
            tag: "me.rpm".into(),
            ts: t0 + chrono::Duration::seconds(i),
            value: Some(v),
            quality: Quality::Good,
            text: None,
        };
        db.insert_samples(&[s(0, 1.0), s(1, 2.0), s(2, 3.0)])
            .expect("insert");
        db.insert_samples(&[s(1, 2.5)]).expect("rewrite");
        let got = db
            .samples("me.rpm", t0, t0 + chrono::Duration::seconds(10), 100)
            .expect("q");
        assert_eq!(
            got.iter().map(|s| s.value).collect::<Vec<_>>(),
            vec![Some(1.0), Some(2.5), Some(3.0)]
        );
        assert!(matches!(
            db.samples("nope", t0, t0, 1),
            Err(StoreError::NotFound)
        ));

        // A broken device clock's sample centuries away is left out; the
        // batch around it, including a duplicate whose later copy wins, is
        // stored.
        let mut far = s(3, 9.0);
        far.ts = Utc
            .with_ymd_and_hms(2999, 1, 1, 0, 0, 0)
            .single()
            .expect("ts");
        db.insert_samples(&[s(3, 4.0), far, s(4, 5.0), s(4, 5.5)])
            .expect("insert around a broken clock");
        let got = db
            .samples("me.rpm", t0, t0 + chrono::Duration::days(365_000), 100)
            .expect("q");
        assert_eq!(
            got.iter().map(|s| s.value).collect::<Vec<_>>(),
            vec![Some(1.0), Some(2.5), Some(3.0), Some(4.0), Some(5.5)]
        );
    }

    #[test]
    fn texts_are_kept_where_they_change() {
        let (_dir, db) = open(Site::Edge);
        let t0 = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("ts");
        let at = |i: i64| t0 + chrono::Duration::seconds(i);
        let s = |i: i64, text: &str| Sample {
            tag: "ge1.mode".into(),
            ts: at(i),
            value: None,
            quality: Quality::Good,
            text: Some(text.into()),
        };
        db.insert_samples(&[s(0, "STANDBY"), s(1, "STANDBY"), s(2, "RUNNING")])
            .expect("insert");
        db.insert_samples(&[s(3, "RUNNING"), s(4, "STANDBY")])
            .expect("insert");
        let all = db.tag_texts("ge1.mode", at(0), at(10), 100).expect("q");
        assert_eq!(
            all,
            vec![
                (at(0), "STANDBY".to_owned()),
                (at(2), "RUNNING".to_owned()),
                (at(4), "STANDBY".to_owned())
            ]
        );
        // A range starts with what the tag read when it began.
        let later = db.tag_texts("ge1.mode", at(3), at(10), 100).expect("q");
        assert_eq!(
            later,
            vec![(at(2), "RUNNING".to_owned()), (at(4), "STANDBY".to_owned())]
        );
        // Every reading is still a sample, for the counts and the quality.
        assert_eq!(
            db.samples("ge1.mode", at(0), at(10), 100).expect("q").len(),
            5
        );
        assert!(matches!(
            db.tag_texts("nope", at(0), at(1), 1),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn cursors_only_move_forward() {
        let (_dir, db) = open(Site::Edge);
        db.set_sent_acked("records", 5).expect("ack");
        db.set_sent_acked("records", 3).expect("ack");
        assert_eq!(db.sync_state("records").expect("q").sent_acked, 5);
        // Only a shore that holds less moves it back.
        db.rewind_sent_acked("records", 9).expect("rewind");
        assert_eq!(db.sync_state("records").expect("q").sent_acked, 5);
        db.rewind_sent_acked("records", 2).expect("rewind");
        assert_eq!(db.sync_state("records").expect("q").sent_acked, 2);
        db.set_sent_acked("records", 5).expect("ack");
        // The alarms lane has its own cursor.
        db.set_sent_acked("alarms", 7).expect("ack");
        assert_eq!(db.sync_state("alarms").expect("q").sent_acked, 7);
        assert_eq!(db.sync_state("records").expect("q").sent_acked, 5);
        db.record_sync_attempt("records", Some("link down"))
            .expect("attempt");
        let st = db.sync_state("records").expect("q");
        assert_eq!(st.last_error.as_deref(), Some("link down"));
        assert_eq!(st.last_success_ms, None);
    }
}
