-- Alarms on board. They are local, high-rate state, not automerge records.
--
-- `alarms` is the alarm list: one row per tag and kind while the alarm is
-- active or returned but unacknowledged; the row goes when the alarm clears,
-- and the engine is restored from these rows after a restart. Ids are never
-- reused (AUTOINCREMENT), so a link to an alarm that cleared cannot point at
-- a later one.
CREATE TABLE alarms (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tag         TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- high_high, high, low, low_low, stale, bad_quality
    state       TEXT NOT NULL,      -- active_unacknowledged, active_acknowledged, returned_unacknowledged
    limit_value REAL,
    value       REAL,
    raised_ms   INTEGER NOT NULL,
    changed_ms  INTEGER NOT NULL,
    fault_id    TEXT,               -- the fault logged from this alarm, if any
    UNIQUE (tag, kind)
) STRICT;

-- The alarm and event history, append-only: what happened to which alarm,
-- when, at what value, and who acknowledged or logged a fault.
CREATE TABLE alarm_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_id  INTEGER,              -- no foreign key: the alarm row goes when it clears
    tag       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    event     TEXT NOT NULL,        -- raised, acknowledged, returned, cleared, fault_logged
    at_ms     INTEGER NOT NULL,
    value     REAL,
    by_user   TEXT,
    fault_id  TEXT
) STRICT;
CREATE INDEX alarm_events_alarm ON alarm_events(alarm_id, id);
