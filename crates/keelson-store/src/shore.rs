//! Shore-only storage: the vessel registry, replay protection for signed
//! sync requests, quarantined batches, and the sensor rollups vessels send.
//!
//! A vessel's rollups (`vessel_rollups`) are keyed by vessel, width, tag
//! and interval start: a re-sent or recomputed rollup replaces the stored
//! one, and a chunk's rollups are written in one transaction before the
//! chunk is acknowledged.
//!
//! A vessel's inbound cursor (`records_acked`) moves inside the same
//! transaction that applies the vessel's changes, so an acknowledgement is
//! never sent for data that is not yet durable.

use crate::block::Rollup;
use crate::records::RecordTx;
use crate::tiers::Resolution;
use crate::{Db, StoreError, now_ms};
use rusqlite::{OptionalExtension, params};

/// A registered vessel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VesselRow {
    /// The vessel's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its Ed25519 public key, base64.
    pub public_key: String,
    /// Highest vessel change seq made durable here.
    pub records_acked: u64,
    /// When it last synced (ms since the epoch).
    pub last_sync_ms: Option<i64>,
    /// Bytes the vessel last reported waiting on board.
    pub pending_bytes: u64,
    /// The vessel's last estimate of the time to send them, in seconds.
    pub eta_secs: Option<u64>,
    /// The organization the vessel belongs to.
    pub org_id: String,
    /// Alarm history entries the vessel last reported waiting on board.
    pub pending_alarm_events: u64,
}

/// An organization at the shore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A batch refused and kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    /// Its id.
    pub id: i64,
    /// The vessel that sent it.
    pub vessel_id: String,
    /// When it arrived (ms since the epoch).
    pub received_at_ms: i64,
    /// Why it was refused.
    pub reason: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The organization of users and vessels registered without one.
pub const DEFAULT_ORG: &str = "default";

/// Whether a request nonce was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceOutcome {
    /// First use; now recorded.
    Fresh,
    /// Seen before: the request is a replay.
    Replayed,
}

impl Db {
    /// Registers a vessel, or updates its name and key (key rotation).
    pub fn upsert_vessel(&self, id: &str, name: &str, public_key: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO vessels (id, name, public_key, created_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, public_key = excluded.public_key",
            params![id, name, public_key, now_ms()],
        )?;
        Ok(())
    }

    /// A registered vessel.
    pub fn vessel(&self, id: &str) -> Result<Option<VesselRow>, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT id, name, public_key, records_acked, last_sync_ms, pending_bytes, eta_secs, org_id, pending_alarm_events
                 FROM vessels WHERE id = ?1",
                [id],
                vessel_row,
            )
            .optional()?)
    }

    /// Every registered vessel, by name; only `org`'s when given.
    pub fn vessels(&self, org: Option<&str>) -> Result<Vec<VesselRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, public_key, records_acked, last_sync_ms, pending_bytes, eta_secs, org_id, pending_alarm_events
             FROM vessels WHERE (?1 IS NULL OR org_id = ?1) ORDER BY name, id",
        )?;
        let rows = stmt.query_map([org], vessel_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds an organization, or renames one.
    pub fn upsert_org(&self, id: &str, name: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO organizations (id, name, created_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            params![id, name, now_ms()],
        )?;
        Ok(())
    }

    /// Every organization, by id.
    pub fn orgs(&self) -> Result<Vec<OrgRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT id, name FROM organizations ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(OrgRow {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn require_org(conn: &rusqlite::Connection, org: &str) -> Result<(), StoreError> {
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = ?1)",
            [org],
            |r| r.get(0),
        )?;
        if known {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!("no organization `{org}`")))
        }
    }

    /// Moves a vessel to an organization.
    pub fn set_vessel_org(&self, vessel_id: &str, org: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        Self::require_org(&conn, org)?;
        if conn.execute(
            "UPDATE vessels SET org_id = ?2 WHERE id = ?1",
            params![vessel_id, org],
        )? == 0
        {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Puts a user in an organization.
    pub fn set_user_org(&self, username: &str, org: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        Self::require_org(&conn, org)?;
        conn.execute(
            "INSERT INTO user_orgs (username, org_id) VALUES (?1, ?2)
             ON CONFLICT(username) DO UPDATE SET org_id = excluded.org_id",
            params![username, org],
        )?;
        Ok(())
    }

    /// The organization of a user ([`DEFAULT_ORG`] when none was set).
    pub fn user_org(&self, username: &str) -> Result<String, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT org_id FROM user_orgs WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| DEFAULT_ORG.to_owned()))
    }

    /// Quarantined batches of `org`'s vessels, newest first.
    pub fn quarantined(&self, org: &str, limit: u32) -> Result<Vec<QuarantineRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT q.id, q.vessel_id, q.received_at_ms, q.reason, LENGTH(q.payload) FROM quarantine q
             JOIN vessels v ON v.id = q.vessel_id WHERE v.org_id = ?1 ORDER BY q.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![org, limit], |r| {
            Ok(QuarantineRow {
                id: r.get(0)?,
                vessel_id: r.get(1)?,
                received_at_ms: r.get(2)?,
                reason: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a request nonce, or reports that it was used before. Expired
    /// nonces are swept on the way, since a request that old fails the
    /// timestamp check anyway.
    pub fn use_nonce(
        &self,
        vessel_id: &str,
        nonce: &str,
        expires_at_ms: i64,
    ) -> Result<NonceOutcome, StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "DELETE FROM sync_nonces WHERE expires_at_ms < ?1",
            [now_ms()],
        )?;
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO sync_nonces (vessel_id, nonce, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![vessel_id, nonce, expires_at_ms],
        )?;
        Ok(if inserted == 1 {
            NonceOutcome::Fresh
        } else {
            NonceOutcome::Replayed
        })
    }

    /// Notes that a vessel completed a sync step.
    pub fn touch_vessel_sync(&self, vessel_id: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE vessels SET last_sync_ms = ?2 WHERE id = ?1",
            params![vessel_id, now_ms()],
        )?;
        Ok(())
    }

    /// Stores a vessel's rollups of one width (minute or hour), replacing
    /// any stored for the same tag and interval, all in one transaction.
    pub fn put_vessel_rollups(
        &self,
        vessel_id: &str,
        width: Resolution,
        rollups: &[(String, Rollup)],
    ) -> Result<(), StoreError> {
        let width = rollup_width(width)?;
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO vessel_rollups
                 (vessel_id, width, tag, bucket_ms, min, max, mean, last, count, good)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for (tag, r) in rollups {
                put.execute(params![
                    vessel_id, width, tag, r.start_ms, r.min, r.max, r.mean, r.last, r.count,
                    r.good
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The end of the newest hour of sensor data a vessel has sent (ms since
    /// the epoch), or `None` before its first rollup: how old the shore's
    /// view of the vessel's sensors is.
    pub fn vessel_data_until(&self, vessel_id: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        let newest: Option<i64> = conn.query_row(
            "SELECT MAX(bucket_ms) FROM vessel_rollups WHERE vessel_id = ?1 AND width = 'hour'",
            [vessel_id],
            |r| r.get(0),
        )?;
        Ok(newest.map(|start| start + crate::tiers::HOUR_MS))
    }

    /// Each tag a vessel has sent hourly rollups for, with its latest one,
    /// sorted by tag.
    pub fn vessel_tags(&self, vessel_id: &str) -> Result<Vec<(String, Rollup)>, StoreError> {
        let conn = self.reader()?;
        // SQLite takes the bare columns from the row that holds the MAX.
        let mut stmt = conn.prepare_cached(
            "SELECT tag, MAX(bucket_ms), min, max, mean, last, count, good FROM vessel_rollups
             WHERE vessel_id = ?1 AND width = 'hour' GROUP BY tag ORDER BY tag",
        )?;
        let rows = stmt.query_map([vessel_id], |r| {
            Ok((r.get::<_, String>(0)?, crate::tiers::rollup_at(r, 1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A vessel's rollups of `tag` at `width` starting in `[from_ms, to_ms]`,
    /// oldest first, at most `limit`.
    pub fn vessel_rollups(
        &self,
        vessel_id: &str,
        tag: &str,
        width: Resolution,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<Rollup>, StoreError> {
        let width = rollup_width(width)?;
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT bucket_ms, min, max, mean, last, count, good FROM vessel_rollups
             WHERE vessel_id = ?1 AND width = ?2 AND tag = ?3 AND bucket_ms >= ?4 AND bucket_ms <= ?5
             ORDER BY bucket_ms LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![
                vessel_id,
                width,
                tag,
                from_ms,
                to_ms,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| crate::tiers::rollup_at(r, 0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Takes note of a vessel's epoch at the start of a session. When it
    /// differs from the one seen before, the vessel was restored from a
    /// backup and numbers its changes again from there: what this shore
    /// acknowledged no longer says what it holds, so the acknowledgement
    /// goes back to 0 and the vessel sends its whole lane again (changes
    /// already here are recognised and skipped). Returns whether it did.
    pub fn note_vessel_epoch(&self, vessel_id: &str, epoch: &str) -> Result<bool, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let before: Option<String> = tx
            .query_row(
                "SELECT epoch FROM vessels WHERE id = ?1",
                [vessel_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let restored = before.is_some_and(|b| b != epoch);
        if restored {
            tx.execute(
                "UPDATE vessels SET records_acked = 0 WHERE id = ?1",
                [vessel_id],
            )?;
        }
        tx.execute(
            "UPDATE vessels SET epoch = ?2 WHERE id = ?1",
            params![vessel_id, epoch],
        )?;
        tx.commit()?;
        Ok(restored)
    }

    /// Records what a vessel reported of its own backlog at the start of a
    /// session: bytes in every lane, the time to send them, and its alarm
    /// history entries waiting.
    pub fn set_vessel_progress(
        &self,
        vessel_id: &str,
        pending_bytes: u64,
        eta_secs: Option<u64>,
        pending_alarm_events: u64,
    ) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE vessels SET pending_bytes = ?2, eta_secs = ?3, pending_alarm_events = ?4
             WHERE id = ?1",
            params![
                vessel_id,
                pending_bytes as i64,
                eta_secs.map(|e| e as i64),
                i64::try_from(pending_alarm_events).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(())
    }

    /// Takes `raw_bytes` and `alarm_events` the vessel just delivered off
    /// what it reported waiting, so the fleet view does not show a backlog
    /// that has arrived.
    pub fn reduce_vessel_pending(
        &self,
        vessel_id: &str,
        raw_bytes: u64,
        alarm_events: u64,
    ) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE vessels SET pending_bytes = MAX(0, pending_bytes - ?2),
                eta_secs = CASE WHEN pending_bytes <= ?2 THEN 0 ELSE eta_secs END,
                pending_alarm_events = MAX(0, pending_alarm_events - ?3)
             WHERE id = ?1",
            params![
                vessel_id,
                i64::try_from(raw_bytes).unwrap_or(i64::MAX),
                i64::try_from(alarm_events).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(())
    }

    /// Keeps a refused batch for a fleet admin to inspect.
    pub fn quarantine(
        &self,
        vessel_id: &str,
        reason: &str,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO quarantine (vessel_id, received_at_ms, reason, payload) VALUES (?1, ?2, ?3, ?4)",
            params![vessel_id, now_ms(), reason, payload],
        )?;
        Ok(())
    }

    /// How many batches are quarantined for a vessel.
    pub fn quarantine_count(&self, vessel_id: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM quarantine WHERE vessel_id = ?1",
            [vessel_id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

impl RecordTx<'_> {
    /// Moves a vessel's inbound cursor forward, in the transaction that
    /// stores the changes it covers.
    pub fn set_vessel_acked(&mut self, vessel_id: &str, seq: u64) -> Result<u64, StoreError> {
        self.tx.execute(
            "UPDATE vessels SET records_acked = MAX(records_acked, ?2), last_sync_ms = ?3 WHERE id = ?1",
            params![vessel_id, seq as i64, now_ms()],
        )?;
        Ok(self.tx.query_row(
            "SELECT records_acked FROM vessels WHERE id = ?1",
            [vessel_id],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

fn vessel_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VesselRow> {
    Ok(VesselRow {
        id: r.get(0)?,
        name: r.get(1)?,
        public_key: r.get(2)?,
        records_acked: r.get::<_, i64>(3)? as u64,
        last_sync_ms: r.get(4)?,
        pending_bytes: r.get::<_, i64>(5)? as u64,
        eta_secs: r.get::<_, Option<i64>>(6)?.map(|e| e as u64),
        org_id: r.get(7)?,
        pending_alarm_events: r.get::<_, i64>(8)? as u64,
    })
}

/// The `width` column's value for a rollup resolution.
fn rollup_width(width: Resolution) -> Result<&'static str, StoreError> {
    match width {
        Resolution::Minute => Ok("minute"),
        Resolution::Hour => Ok("hour"),
        Resolution::Raw => Err(StoreError::Conflict("raw samples are not rollups".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Site, test_util::open};

    #[test]
    fn nonces_refuse_replays() {
        let (_dir, db) = open(Site::Shore);
        db.upsert_vessel("v1", "MV One", "key").expect("vessel");
        let exp = now_ms() + 60_000;
        assert_eq!(
            db.use_nonce("v1", "n1", exp).expect("n"),
            NonceOutcome::Fresh
        );
        assert_eq!(
            db.use_nonce("v1", "n1", exp).expect("n"),
            NonceOutcome::Replayed
        );
        assert_eq!(
            db.use_nonce("v2", "n1", exp).expect("n"),
            NonceOutcome::Fresh
        );
    }

    #[test]
    fn vessel_cursor_moves_forward_only() {
        let (_dir, db) = open(Site::Shore);
        db.upsert_vessel("v1", "MV One", "key").expect("vessel");
        let acked = db.transact(|tx| tx.set_vessel_acked("v1", 7)).expect("ack");
        assert_eq!(acked, 7);
        let acked = db.transact(|tx| tx.set_vessel_acked("v1", 3)).expect("ack");
        assert_eq!(acked, 7);
        assert_eq!(
            db.vessel("v1").expect("q").map(|v| v.records_acked),
            Some(7)
        );
        assert_eq!(db.vessels(None).expect("q").len(), 1);
        assert_eq!(db.vessels(Some("other")).expect("q").len(), 0);
    }

    #[test]
    fn a_new_vessel_epoch_forgets_the_acknowledgement() {
        let (_dir, db) = open(Site::Shore);
        db.upsert_vessel("v1", "MV One", "key").expect("vessel");
        assert!(!db.note_vessel_epoch("v1", "e1").expect("first"));
        db.transact(|tx| tx.set_vessel_acked("v1", 9)).expect("ack");
        assert!(!db.note_vessel_epoch("v1", "e1").expect("same"));
        assert_eq!(
            db.vessel("v1").expect("q").map(|v| v.records_acked),
            Some(9)
        );
        assert!(db.note_vessel_epoch("v1", "e2").expect("restored"));
        assert_eq!(
            db.vessel("v1").expect("q").map(|v| v.records_acked),
            Some(0)
        );
    }

    #[test]
    fn vessel_rollups_replace_themselves_and_read_back_by_tag() {
        let (_dir, db) = open(Site::Shore);
        db.upsert_vessel("v1", "MV One", "key").expect("vessel");
        let r = |start_ms: i64, mean: f64| Rollup {
            start_ms,
            min: Some(mean - 1.0),
            max: Some(mean + 1.0),
            mean: Some(mean),
            last: Some(mean),
            count: 3600,
            good: 3600,
        };
        let hour = 3_600_000;
        db.put_vessel_rollups(
            "v1",
            Resolution::Hour,
            &[
                ("me.rpm".into(), r(0, 80.0)),
                ("me.rpm".into(), r(hour, 81.0)),
                ("bilge".into(), r(0, 0.2)),
            ],
        )
        .expect("put");
        // The same interval again (a re-sent chunk or late samples) replaces.
        db.put_vessel_rollups("v1", Resolution::Hour, &[("me.rpm".into(), r(hour, 82.0))])
            .expect("put again");
        db.put_vessel_rollups(
            "v1",
            Resolution::Minute,
            &[("me.rpm".into(), r(60_000, 90.0))],
        )
        .expect("minutes");
        assert_eq!(db.vessel_data_until("v1").expect("age"), Some(2 * hour));
        assert_eq!(db.vessel_data_until("v2").expect("none"), None);
        let tags = db.vessel_tags("v1").expect("tags");
        assert_eq!(
            tags.iter()
                .map(|(t, r)| (t.as_str(), r.start_ms, r.mean))
                .collect::<Vec<_>>(),
            vec![("bilge", 0, Some(0.2)), ("me.rpm", hour, Some(82.0))]
        );
        let series = db
            .vessel_rollups("v1", "me.rpm", Resolution::Hour, 0, hour, 10)
            .expect("series");
        assert_eq!(
            series.iter().map(|r| r.mean).collect::<Vec<_>>(),
            vec![Some(80.0), Some(82.0)]
        );
        assert_eq!(
            db.vessel_rollups("v1", "me.rpm", Resolution::Minute, 0, hour, 10)
                .expect("minutes")
                .len(),
            1
        );
        assert!(db.vessel_tags("v2").expect("none").is_empty());
        assert!(matches!(
            db.put_vessel_rollups("v1", Resolution::Raw, &[]),
            Err(StoreError::Conflict(_))
        ));
    }
}
