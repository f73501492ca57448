-- The alarm history vessels send over the alarms lane, and each vessel's
-- active alarms derived from it.
--
-- `vessel_alarm_events` is append-only. `id` is the order of arrival ashore,
-- which is the order things happened on board; `seq` is the vessel's own
-- history id. A re-sent entry matches its stored copy on seq, time, key and
-- event and is stored once; a vessel restored from a backup numbers its
-- history again from where the backup stopped, and its new entries differ
-- from the old ones of the same seq, so both are kept.
CREATE TABLE vessel_alarm_events (
    id        INTEGER PRIMARY KEY,
    vessel_id TEXT NOT NULL REFERENCES vessels(id),
    seq       INTEGER NOT NULL,
    alarm_id  INTEGER,              -- the alarm's id on board
    tag       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    event     TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    value     REAL,
    by_user   TEXT,
    fault_id  TEXT,
    UNIQUE (vessel_id, seq, at_ms, tag, kind, event)
) STRICT;
CREATE INDEX vessel_alarm_events_recent ON vessel_alarm_events(vessel_id, id);

-- Each vessel's alarm list as its history says: one row per tag and kind
-- from `raised` until `cleared`, written in the transaction that stores the
-- entries, so it never runs ahead of or behind the history.
CREATE TABLE vessel_alarms (
    vessel_id       TEXT NOT NULL REFERENCES vessels(id),
    tag             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    alarm_id        INTEGER,
    state           TEXT NOT NULL,  -- active_unacknowledged, active_acknowledged, returned_unacknowledged
    value           REAL,
    raised_ms       INTEGER NOT NULL,
    changed_ms      INTEGER NOT NULL,
    acknowledged_by TEXT,
    fault_id        TEXT,
    PRIMARY KEY (vessel_id, tag, kind)
) STRICT, WITHOUT ROWID;

-- What each vessel last reported waiting in its alarms lane.
ALTER TABLE vessels ADD COLUMN pending_alarm_events INTEGER NOT NULL DEFAULT 0;
