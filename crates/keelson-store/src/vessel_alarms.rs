//! Shore-only storage of the alarms vessels send: each vessel's alarm
//! history as it arrived over the alarms lane, and its active alarms
//! derived from that history.
//!
//! - `vessel_alarm_events` is append-only. A re-sent entry (a chunk sent
//!   again after a lost acknowledgement) matches its stored copy and is
//!   stored once.
//! - `vessel_alarms` holds one row per vessel, tag and kind from `raised`
//!   until `cleared`. Only entries stored for the first time move it, in
//!   the transaction that stores them and in the order they happened, so it
//!   is always what the stored history says.
//!
//! Unlike the edge's alarm store, this one reads the event names, because
//! it derives the alarm list from them: `raised`, `acknowledged`,
//! `returned`, `cleared` and `fault_logged`, with the states the vessel's
//! alarm engine uses. Any other event is kept in the history and leaves
//! the list alone, so a newer vessel's events cannot break an older shore.

use crate::{AlarmEventRow, Db, StoreError};
use rusqlite::{Transaction, params};

/// An active alarm of a vessel, as its history says.
#[derive(Debug, Clone, PartialEq)]
pub struct VesselAlarm {
    /// The alarm's id on board, when the vessel sent it.
    pub alarm_id: Option<i64>,
    /// The rule's tag.
    pub tag: String,
    /// The kind's name (`high`, `stale`, …).
    pub kind: String,
    /// `active_unacknowledged`, `active_acknowledged` or
    /// `returned_unacknowledged`.
    pub state: String,
    /// The value that raised it.
    pub value: Option<f64>,
    /// When it raised on board (ms since the epoch).
    pub raised_ms: i64,
    /// When its state last changed on board (ms since the epoch).
    pub changed_ms: i64,
    /// Who acknowledged it, once somebody did.
    pub acknowledged_by: Option<String>,
    /// The fault logged from it, if any.
    pub fault_id: Option<String>,
}

impl VesselAlarm {
    /// Whether it waits for somebody on board to acknowledge it.
    pub fn is_unacknowledged(&self) -> bool {
        self.state != ACKNOWLEDGED
    }
}

const RAISED: &str = "active_unacknowledged";
const ACKNOWLEDGED: &str = "active_acknowledged";
const RETURNED: &str = "returned_unacknowledged";

/// Moves the vessel's alarm list by one history entry.
fn apply(tx: &Transaction<'_>, vessel_id: &str, e: &AlarmEventRow) -> rusqlite::Result<()> {
    match e.event.as_str() {
        // A raise starts the alarm afresh, whatever was left of an earlier
        // one of the same tag and kind.
        "raised" => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO vessel_alarms
                 (vessel_id, tag, kind, alarm_id, state, value, raised_ms, changed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params![
                vessel_id, e.tag, e.kind, e.alarm_id, RAISED, e.value, e.at_ms
            ])?;
        }
        // An acknowledged alarm that had returned clears in the entry that
        // follows; until then it keeps its state and notes who acted.
        "acknowledged" => {
            tx.prepare_cached(
                "UPDATE vessel_alarms SET acknowledged_by = ?4, changed_ms = ?5,
                     state = CASE state WHEN ?6 THEN ?7 ELSE state END
                 WHERE vessel_id = ?1 AND tag = ?2 AND kind = ?3",
            )?
            .execute(params![
                vessel_id,
                e.tag,
                e.kind,
                e.by,
                e.at_ms,
                RAISED,
                ACKNOWLEDGED
            ])?;
        }
        "returned" => {
            tx.prepare_cached(
                "UPDATE vessel_alarms SET state = ?4, changed_ms = ?5
                 WHERE vessel_id = ?1 AND tag = ?2 AND kind = ?3",
            )?
            .execute(params![vessel_id, e.tag, e.kind, RETURNED, e.at_ms])?;
        }
        "cleared" => {
            tx.prepare_cached(
                "DELETE FROM vessel_alarms WHERE vessel_id = ?1 AND tag = ?2 AND kind = ?3",
            )?
            .execute(params![vessel_id, e.tag, e.kind])?;
        }
        "fault_logged" => {
            tx.prepare_cached(
                "UPDATE vessel_alarms SET fault_id = ?4
                 WHERE vessel_id = ?1 AND tag = ?2 AND kind = ?3",
            )?
            .execute(params![vessel_id, e.tag, e.kind, e.fault_id])?;
        }
        _ => {}
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "seq, alarm_id, tag, kind, event, at_ms, value, by_user, fault_id";

impl Db {
    /// Stores a run of a vessel's alarm history (each entry's `id` is the
    /// vessel's seq) in one transaction, and moves its alarm list by the
    /// entries not stored before. Returns how many were new.
    pub fn put_vessel_alarm_events(
        &self,
        vessel_id: &str,
        events: &[AlarmEventRow],
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let mut new = 0u64;
        for e in events {
            let stored = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO vessel_alarm_events
                     (vessel_id, seq, alarm_id, tag, kind, event, at_ms, value, by_user, fault_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    vessel_id, e.id, e.alarm_id, e.tag, e.kind, e.event, e.at_ms, e.value, e.by,
                    e.fault_id
                ])?;
            if stored == 1 {
                apply(&tx, vessel_id, e)?;
                new += 1;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    /// The highest seq of a vessel's alarm history held here (0 for none).
    pub fn vessel_alarms_held(&self, vessel_id: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let held: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(MAX(seq), 0) FROM vessel_alarm_events WHERE vessel_id = ?1",
            )?
            .query_row([vessel_id], |r| r.get(0))?;
        Ok(u64::try_from(held).unwrap_or(0))
    }

    /// A vessel's active alarms, oldest first.
    pub fn vessel_alarms(&self, vessel_id: &str) -> Result<Vec<VesselAlarm>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT alarm_id, tag, kind, state, value, raised_ms, changed_ms, acknowledged_by, fault_id
             FROM vessel_alarms WHERE vessel_id = ?1 ORDER BY raised_ms, tag, kind",
        )?;
        let rows = stmt.query_map([vessel_id], |r| {
            Ok(VesselAlarm {
                alarm_id: r.get(0)?,
                tag: r.get(1)?,
                kind: r.get(2)?,
                state: r.get(3)?,
                value: r.get(4)?,
                raised_ms: r.get(5)?,
                changed_ms: r.get(6)?,
                acknowledged_by: r.get(7)?,
                fault_id: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many alarms a vessel has active, and how many of them wait for
    /// an acknowledgement.
    pub fn vessel_alarm_counts(&self, vessel_id: &str) -> Result<(u64, u64), StoreError> {
        let conn = self.reader()?;
        let (all, unacked): (i64, i64) = conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(state <> ?2), 0) FROM vessel_alarms
                 WHERE vessel_id = ?1",
            )?
            .query_row(params![vessel_id, ACKNOWLEDGED], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok((
            u64::try_from(all).unwrap_or(0),
            u64::try_from(unacked).unwrap_or(0),
        ))
    }

    /// A vessel's alarm history, newest first, `limit` entries after
    /// skipping `offset`; each entry's `id` is the vessel's seq.
    pub fn vessel_alarm_events(
        &self,
        vessel_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AlarmEventRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM vessel_alarm_events WHERE vessel_id = ?1
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt.query_map(params![vessel_id, limit, offset], crate::alarms::event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many entries of a vessel's alarm history are held here.
    pub fn vessel_alarm_event_count(&self, vessel_id: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM vessel_alarm_events WHERE vessel_id = ?1")?
            .query_row([vessel_id], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Site, test_util::open};

    fn event(seq: i64, tag: &str, event: &str, at_ms: i64) -> AlarmEventRow {
        AlarmEventRow {
            id: seq,
            alarm_id: Some(1),
            tag: tag.into(),
            kind: "high".into(),
            event: event.into(),
            at_ms,
            value: Some(101.0),
            by: (event == "acknowledged" || event == "fault_logged").then(|| "anna".to_owned()),
            fault_id: (event == "fault_logged").then(|| "f-1".to_owned()),
        }
    }

    fn states(db: &Db, vessel: &str) -> Vec<(String, String)> {
        db.vessel_alarms(vessel)
            .expect("alarms")
            .into_iter()
            .map(|a| (a.tag, a.state))
            .collect()
    }

    #[test]
    fn the_history_is_stored_once_and_derives_the_active_alarms() {
        let (_dir, db) = open(Site::Shore);
        db.upsert_vessel("v1", "MV One", "key").expect("vessel");
        db.upsert_vessel("v2", "MV Two", "key").expect("vessel");
        let first = [
            event(1, "me.rpm", "raised", 10),
            event(2, "ge1.load", "raised", 11),
            event(3, "me.rpm", "acknowledged", 12),
            event(4, "me.rpm", "fault_logged", 13),
        ];
        assert_eq!(db.put_vessel_alarm_events("v1", &first).expect("put"), 4);
        assert_eq!(
            states(&db, "v1"),
            [
                ("me.rpm".to_owned(), ACKNOWLEDGED.to_owned()),
                ("ge1.load".to_owned(), RAISED.to_owned())
            ]
        );
        assert_eq!(db.vessel_alarm_counts("v1").expect("counts"), (2, 1));
        let rpm = &db.vessel_alarms("v1").expect("alarms")[0];
        assert_eq!(rpm.acknowledged_by.as_deref(), Some("anna"));
        assert_eq!(rpm.fault_id.as_deref(), Some("f-1"));
        assert_eq!((rpm.raised_ms, rpm.changed_ms), (10, 12));
        assert!(!rpm.is_unacknowledged());

        // The same run again (a lost acknowledgement) stores nothing and
        // moves nothing, even overlapping new entries.
        let second = [
            event(3, "me.rpm", "acknowledged", 12),
            event(4, "me.rpm", "fault_logged", 13),
            event(5, "ge1.load", "returned", 14),
            event(6, "me.rpm", "cleared", 15),
        ];
        assert_eq!(db.put_vessel_alarm_events("v1", &second).expect("put"), 2);
        assert_eq!(db.put_vessel_alarm_events("v1", &second).expect("put"), 0);
        assert_eq!(db.vessel_alarm_event_count("v1").expect("count"), 6);
        assert_eq!(
            states(&db, "v1"),
            [("ge1.load".to_owned(), RETURNED.to_owned())]
        );
        assert_eq!(db.vessel_alarm_counts("v1").expect("counts"), (1, 1));
        assert_eq!(db.vessel_alarms_held("v1").expect("held"), 6);

        // An acknowledgement of a returned alarm clears it in the next entry.
        let third = [
            event(7, "ge1.load", "acknowledged", 16),
            event(8, "ge1.load", "cleared", 16),
            event(9, "ge1.load", "shelved", 17),
        ];
        db.put_vessel_alarm_events("v1", &third[..1]).expect("put");
        assert_eq!(
            states(&db, "v1"),
            [("ge1.load".to_owned(), RETURNED.to_owned())]
        );
        db.put_vessel_alarm_events("v1", &third[1..]).expect("put");
        assert!(
            states(&db, "v1").is_empty(),
            "an unknown event moves nothing"
        );
        assert_eq!(db.vessel_alarm_counts("v1").expect("counts"), (0, 0));

        // The history reads back newest first, paged, with the vessel's seqs.
        let recent = db.vessel_alarm_events("v1", 3, 0).expect("recent");
        assert_eq!(
            recent.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![9, 8, 7]
        );
        assert_eq!(recent[2].by.as_deref(), Some("anna"));
        assert_eq!(db.vessel_alarm_events("v1", 10, 7).expect("page").len(), 2);

        // A vessel restored from a backup numbers its history again; its new
        // entries are kept beside the old ones of the same seq.
        assert_eq!(
            db.put_vessel_alarm_events("v1", &[event(5, "me.rpm", "raised", 20)])
                .expect("put"),
            1
        );
        assert_eq!(db.vessel_alarm_event_count("v1").expect("count"), 10);
        assert_eq!(
            states(&db, "v1"),
            [("me.rpm".to_owned(), RAISED.to_owned())]
        );

        // Another vessel's history is its own.
        assert!(db.vessel_alarms("v2").expect("none").is_empty());
        assert_eq!(db.vessel_alarms_held("v2").expect("held"), 0);
        assert_eq!(db.vessel_alarm_counts("v2").expect("counts"), (0, 0));
        assert_eq!(db.put_vessel_alarm_events("v2", &first).expect("put"), 4);
        assert_eq!(db.vessel_alarm_counts("v2").expect("counts"), (2, 1));
    }
}
