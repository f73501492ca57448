-- Sample tiers beyond the hot rows: compressed raw blocks, 1-minute rollup
-- blocks and hourly rollup rows, each keyed by tag and the hour they cover.
-- Compaction moves a closed hour of rows into these tables in the same
-- transaction that deletes the rows (see keelson-store's `tiers` module).

CREATE TABLE sample_blocks (
    tag_id     INTEGER NOT NULL REFERENCES tags(id),
    bucket_ms  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (tag_id, bucket_ms)
) STRICT;
CREATE INDEX sample_blocks_bucket ON sample_blocks (bucket_ms);

CREATE TABLE rollup_minute_blocks (
    tag_id     INTEGER NOT NULL REFERENCES tags(id),
    bucket_ms  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (tag_id, bucket_ms)
) STRICT;
CREATE INDEX rollup_minute_blocks_bucket ON rollup_minute_blocks (bucket_ms);
CREATE INDEX rollup_minute_blocks_seq ON rollup_minute_blocks (seq);

CREATE TABLE rollups_hour (
    tag_id     INTEGER NOT NULL REFERENCES tags(id),
    bucket_ms  INTEGER NOT NULL,
    min        REAL,
    max        REAL,
    mean       REAL,
    last       REAL,
    count      INTEGER NOT NULL,
    good       INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (tag_id, bucket_ms)
) STRICT, WITHOUT ROWID;
CREATE INDEX rollups_hour_bucket ON rollups_hour (bucket_ms);
CREATE INDEX rollups_hour_seq ON rollups_hour (seq);

-- One row per compacted tier. `bytes` is the payload the tier holds, kept
-- up to date in the transactions that write and drop it, so disk use per
-- tier never needs a scan. For the rollup tiers, `next_seq` numbers every
-- (re)written rollup for the rollups sync lane and `acked_seq` is the
-- highest one the shore acknowledged: retention never drops a rollup whose
-- seq is above it.
CREATE TABLE tier_state (
    tier       TEXT PRIMARY KEY,
    bytes      INTEGER NOT NULL DEFAULT 0,
    next_seq   INTEGER NOT NULL DEFAULT 1,
    acked_seq  INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO tier_state (tier) VALUES ('raw'), ('minute'), ('hour');
