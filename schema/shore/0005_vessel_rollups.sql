-- Sensor rollups the vessels sent over the rollups lane: hourly ones, and
-- 1-minute ones when a vessel's budget allows. A rollup re-sent after a
-- dropped link, or recomputed on board after late samples, replaces the
-- stored one, so the key is the interval and not the vessel's seq.
CREATE TABLE vessel_rollups (
    vessel_id  TEXT NOT NULL REFERENCES vessels(id),
    width      TEXT NOT NULL CHECK (width IN ('minute', 'hour')),
    tag        TEXT NOT NULL,
    bucket_ms  INTEGER NOT NULL,
    min        REAL,
    max        REAL,
    mean       REAL,
    last       REAL,
    count      INTEGER NOT NULL,
    good       INTEGER NOT NULL,
    PRIMARY KEY (vessel_id, width, tag, bucket_ms)
) STRICT, WITHOUT ROWID;
