//! Edge-only storage of alarms: the alarm list and its history.
//!
//! - `alarms` holds one row per tag and kind while the alarm is in the list
//!   (active, or returned and not yet acknowledged). It is what the engine
//!   is restored from after a restart, so every change of the engine's list
//!   is written here in the same transaction as its history event.
//! - `alarm_events` is append-only: rows are inserted, never changed or
//!   deleted, so the history of acknowledgements stays whole.
//!
//! Kinds, states and events are stored as the names the alarm engine
//! gives them; this crate does not interpret them.

use crate::{Db, StoreError};
use rusqlite::{OptionalExtension, Row, params};

/// An alarm in the list, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    /// The alarm's id, never reused.
    pub id: i64,
    /// The rule's tag.
    pub tag: String,
    /// The kind's name (`high`, `stale`, …).
    pub kind: String,
    /// The state's name (`active_unacknowledged`, …).
    pub state: String,
    /// The limit crossed, if any.
    pub limit: Option<f64>,
    /// The value that raised it.
    pub value: Option<f64>,
    /// When it raised (ms since the epoch).
    pub raised_ms: i64,
    /// When its state last changed (ms since the epoch).
    pub changed_ms: i64,
    /// The fault logged from it, if any.
    pub fault_id: Option<String>,
}

/// The stored part of an alarm after a transition.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlarmRow {
    /// The state's name.
    pub state: String,
    /// The limit crossed, if any.
    pub limit: Option<f64>,
    /// The value that raised it.
    pub value: Option<f64>,
    /// When it raised (ms since the epoch).
    pub raised_ms: i64,
    /// When its state last changed (ms since the epoch).
    pub changed_ms: i64,
}

/// One alarm transition to store.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmWrite {
    /// The rule's tag.
    pub tag: String,
    /// The kind's name.
    pub kind: String,
    /// The event's name (`raised`, `acknowledged`, …).
    pub event: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The tag's value at the time.
    pub value: Option<f64>,
    /// Who acted, for an acknowledgement.
    pub by: Option<String>,
    /// The alarm after the transition; `None` removes it from the list.
    pub row: Option<NewAlarmRow>,
}

/// One entry of the alarm history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEventRow {
    /// The entry's id, increasing.
    pub id: i64,
    /// The alarm it belongs to, if it was in the list.
    pub alarm_id: Option<i64>,
    /// The rule's tag.
    pub tag: String,
    /// The kind's name.
    pub kind: String,
    /// The event's name.
    pub event: String,
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The tag's value at the time.
    pub value: Option<f64>,
    /// Who acted, if somebody did.
    pub by: Option<String>,
    /// The fault logged, for a `fault_logged` event.
    pub fault_id: Option<String>,
}

/// About how many bytes a history entry takes in an alarms chunk before
/// compression, beside its strings: the varint seq, alarm id and time, the
/// value, and the option and length bytes.
const WIRE_EVENT_BYTES: usize = 24;

impl AlarmEventRow {
    /// About how many bytes the entry takes on the alarms lane before
    /// compression, to size chunks and to tell what waits.
    pub fn wire_size(&self) -> usize {
        WIRE_EVENT_BYTES
            + self.tag.len()
            + self.kind.len()
            + self.event.len()
            + self.by.as_ref().map_or(0, String::len)
            + self.fault_id.as_ref().map_or(0, String::len)
    }
}

const ALARM_COLUMNS: &str =
    "id, tag, kind, state, limit_value, value, raised_ms, changed_ms, fault_id";
const EVENT_COLUMNS: &str = "id, alarm_id, tag, kind, event, at_ms, value, by_user, fault_id";

fn alarm_row(r: &Row<'_>) -> rusqlite::Result<AlarmRow> {
    Ok(AlarmRow {
        id: r.get(0)?,
        tag: r.get(1)?,
        kind: r.get(2)?,
        state: r.get(3)?,
        limit: r.get(4)?,
        value: r.get(5)?,
        raised_ms: r.get(6)?,
        changed_ms: r.get(7)?,
        fault_id: r.get(8)?,
    })
}

pub(crate) fn event_row(r: &Row<'_>) -> rusqlite::Result<AlarmEventRow> {
    Ok(AlarmEventRow {
        id: r.get(0)?,
        alarm_id: r.get(1)?,
        tag: r.get(2)?,
        kind: r.get(3)?,
        event: r.get(4)?,
        at_ms: r.get(5)?,
        value: r.get(6)?,
        by: r.get(7)?,
        fault_id: r.get(8)?,
    })
}

impl Db {
    /// Every alarm in the list, in id order.
    pub fn alarms(&self) -> Result<Vec<AlarmRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!("SELECT {ALARM_COLUMNS} FROM alarms ORDER BY id"))?;
        let rows = stmt.query_map([], alarm_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One alarm in the list.
    pub fn alarm(&self, id: i64) -> Result<Option<AlarmRow>, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id = ?1"),
                [id],
                alarm_row,
            )
            .optional()?)
    }

    /// Stores transitions in one transaction: each changes or removes its
    /// alarm's row and appends its history event.
    pub fn write_alarm_transitions(&self, writes: &[AlarmWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for w in writes {
            let alarm_id: Option<i64> = match &w.row {
                Some(row) => Some(tx.query_row(
                    "INSERT INTO alarms (tag, kind, state, limit_value, value, raised_ms, changed_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (tag, kind) DO UPDATE SET
                         state = excluded.state, limit_value = excluded.limit_value,
                         value = excluded.value, raised_ms = excluded.raised_ms,
                         changed_ms = excluded.changed_ms
                     RETURNING id",
                    params![
                        w.tag,
                        w.kind,
                        row.state,
                        row.limit,
                        row.value,
                        row.raised_ms,
                        row.changed_ms
                    ],
                    |r| r.get(0),
                )?),
                None => tx
                    .query_row(
                        "DELETE FROM alarms WHERE tag = ?1 AND kind = ?2 RETURNING id",
                        params![w.tag, w.kind],
                        |r| r.get(0),
                    )
                    .optional()?,
            };
            tx.execute(
                "INSERT INTO alarm_events (alarm_id, tag, kind, event, at_ms, value, by_user)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![alarm_id, w.tag, w.kind, w.event, w.at_ms, w.value, w.by],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Links a fault to an alarm in the list and records who logged it.
    /// Fails with [`StoreError::NotFound`] when the alarm left the list.
    pub fn link_alarm_fault(
        &self,
        alarm_id: i64,
        fault_id: &str,
        by: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let found: Option<(String, String, Option<f64>)> = tx
            .query_row(
                "UPDATE alarms SET fault_id = ?2 WHERE id = ?1 RETURNING tag, kind, value",
                params![alarm_id, fault_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((tag, kind, value)) = found else {
            return Err(StoreError::NotFound);
        };
        tx.execute(
            "INSERT INTO alarm_events (alarm_id, tag, kind, event, at_ms, value, by_user, fault_id)
             VALUES (?1, ?2, ?3, 'fault_logged', ?4, ?5, ?6, ?7)",
            params![alarm_id, tag, kind, at_ms, value, by, fault_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// History entries, newest first, `limit` of them after skipping
    /// `offset`; only one alarm's when `alarm_id` is given.
    pub fn alarm_events(
        &self,
        alarm_id: Option<i64>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AlarmEventRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM alarm_events
             WHERE ?1 IS NULL OR alarm_id = ?1
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt.query_map(params![alarm_id, limit, offset], event_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// History entries after the id `after`, oldest first, about
    /// `max_bytes` of them on the wire ([`AlarmEventRow::wire_size`]); at
    /// least one when there is one, so a small budget still moves.
    pub fn alarm_events_after(
        &self,
        after: u64,
        max_bytes: usize,
    ) -> Result<Vec<AlarmEventRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM alarm_events WHERE id > ?1 ORDER BY id"
        ))?;
        let mut rows = stmt.query([i64::try_from(after).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = rows.next()? {
            let event = event_row(r)?;
            let size = event.wire_size();
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(event);
        }
        Ok(out)
    }

    /// How many history entries lie after the id `after`, and about how many
    /// bytes they take on the wire before compression.
    pub fn alarm_events_pending(&self, after: u64) -> Result<(u64, u64), StoreError> {
        let conn = self.reader()?;
        // The same estimate as `AlarmEventRow::wire_size`, summed in SQL.
        let (n, bytes): (i64, i64) = conn.query_row(
            &format!(
                "SELECT COUNT(*), COALESCE(SUM({WIRE_EVENT_BYTES} + LENGTH(tag) + LENGTH(kind)
                     + LENGTH(event) + COALESCE(LENGTH(by_user), 0) + COALESCE(LENGTH(fault_id), 0)), 0)
                 FROM alarm_events WHERE id > ?1"
            ),
            [i64::try_from(after).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((
            u64::try_from(n).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }

    /// How many history entries there are (of one alarm when `alarm_id`
    /// is given).
    pub fn alarm_event_count(&self, alarm_id: Option<i64>) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM alarm_events WHERE ?1 IS NULL OR alarm_id = ?1",
            [alarm_id],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Site, test_util as testing};

    fn write(event: &str, state: Option<&str>, at: i64) -> AlarmWrite {
        AlarmWrite {
            tag: "me.rpm".into(),
            kind: "high".into(),
            event: event.into(),
            at_ms: at,
            value: Some(101.0),
            by: (event == "acknowledged").then(|| "anna".to_owned()),
            row: state.map(|s| NewAlarmRow {
                state: s.into(),
                limit: Some(100.0),
                value: Some(101.0),
                raised_ms: 1,
                changed_ms: at,
            }),
        }
    }

    #[test]
    fn transitions_keep_the_list_and_append_history() {
        let (_dir, db) = testing::open(Site::Edge);
        db.write_alarm_transitions(&[write("raised", Some("active_unacknowledged"), 1)])
            .expect("raise");
        let list = db.alarms().expect("list");
        assert_eq!(list.len(), 1);
        let id = list[0].id;
        db.link_alarm_fault(id, "f-1", "bo", 2).expect("link");
        db.write_alarm_transitions(&[write("acknowledged", Some("active_acknowledged"), 3)])
            .expect("ack");
        let row = db.alarm(id).expect("read").expect("still listed");
        assert_eq!(row.state, "active_acknowledged");
        assert_eq!(row.fault_id.as_deref(), Some("f-1"));
        db.write_alarm_transitions(&[write("cleared", None, 4)])
            .expect("clear");
        assert!(db.alarms().expect("list").is_empty());
        assert!(matches!(
            db.link_alarm_fault(id, "f-2", "bo", 5),
            Err(StoreError::NotFound)
        ));

        let history = db.alarm_events(None, 10, 0).expect("history");
        let events: Vec<&str> = history.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            events,
            ["cleared", "acknowledged", "fault_logged", "raised"]
        );
        assert!(history.iter().all(|e| e.alarm_id == Some(id)));
        assert_eq!(history[1].by.as_deref(), Some("anna"));
        assert_eq!(history[2].fault_id.as_deref(), Some("f-1"));
        assert_eq!(db.alarm_event_count(None).expect("count"), 4);
        assert_eq!(db.alarm_event_count(Some(id + 1)).expect("count"), 0);
        assert_eq!(db.alarm_events(Some(id), 2, 1).expect("page").len(), 2);

        // The alarms lane reads the history oldest first from a cursor, in
        // runs of about a given size, and tells what waits.
        let all = db.alarm_events_after(0, usize::MAX).expect("all");
        assert_eq!(
            all.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
            ["raised", "fault_logged", "acknowledged", "cleared"]
        );
        let first = all[0].id as u64;
        assert_eq!(db.alarm_events_after(0, 1).expect("one").len(), 1);
        let two = all[0].wire_size() + all[1].wire_size();
        assert_eq!(db.alarm_events_after(0, two).expect("two").len(), 2);
        let rest = db.alarm_events_after(first, usize::MAX).expect("rest");
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[0], all[1]);
        let total: usize = all.iter().map(AlarmEventRow::wire_size).sum();
        assert_eq!(
            db.alarm_events_pending(0).expect("pending"),
            (4, total as u64)
        );
        assert_eq!(
            db.alarm_events_pending(all[3].id as u64).expect("none"),
            (0, 0)
        );

        // A new alarm on the same tag and kind gets a new id.
        db.write_alarm_transitions(&[write("raised", Some("active_unacknowledged"), 6)])
            .expect("raise again");
        assert!(db.alarms().expect("list")[0].id > id);
    }
}
