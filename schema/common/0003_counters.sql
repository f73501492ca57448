-- Query projection of counter records (running hours), rewritten in the
-- same transaction as the document, like the other kinds. `total` is the
-- current total as read from the document (the latest reading or
-- correction); `json` is the whole record as the API returns it.

CREATE TABLE counters (
    id            TEXT PRIMARY KEY REFERENCES records(id),
    vessel_id     TEXT NOT NULL,
    equipment_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    total         REAL NOT NULL,
    sensor_tag    TEXT,               -- NULL when the counter has no sensor rule
    updated_at_ms INTEGER NOT NULL,
    json          TEXT NOT NULL
) STRICT;
CREATE INDEX counters_equipment ON counters(equipment_id);
CREATE INDEX counters_vessel ON counters(vessel_id);
