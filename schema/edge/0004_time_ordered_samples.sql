-- Hot sample rows in time order. Ingest writes a second's readings of every
-- tag together; keyed by tag first, each of those rows landed on a different
-- page, so every batch rewrote one page per tag.
--
-- The key is one integer, so the row lives in SQLite's cheapest b-tree:
--
--   key = slot * 2^32 + tag_id * 2^14 + (ts_ms - slot * 10000)
--   slot = floor(ts_ms / 10000), a 10-second slot
--
-- Keys sort by slot, then tag, then time: a batch of readings lands on the
-- few pages of the current slot, and one tag's rows in a slot are one key
-- range. (tag_id, ts_ms) maps to exactly one key, so a re-sent sample still
-- replaces itself. The offset in the slot needs 14 bits and the tag id gets
-- 18 (ids below 262,144); the slot keeps the rest, which covers the years
-- 1290 to 2650. keelson-store's `tiers` module encodes and decodes keys.
--
-- There is no foreign key to `tags`: the ingest writer takes (or creates) the
-- id in the same transaction as the row, and tags are never deleted.
CREATE TABLE samples_by_key (
    key      INTEGER PRIMARY KEY,
    value    REAL,
    quality  INTEGER NOT NULL
) STRICT;

-- SQLite's `/` truncates toward zero; the slot is the floor, also before 1970.
-- Rows outside the key's range of years were never real readings.
INSERT INTO samples_by_key (key, value, quality)
SELECT slot * 4294967296 + tag_id * 16384 + (ts_ms - slot * 10000), value, quality
FROM (
    SELECT (ts_ms - (((ts_ms % 10000) + 10000) % 10000)) / 10000 AS slot,
           tag_id, ts_ms, value, quality
    FROM samples
    WHERE tag_id >= 0 AND tag_id < 262144
)
WHERE slot >= -2147483648 AND slot < 2147483648;

DROP TABLE samples;
ALTER TABLE samples_by_key RENAME TO samples;
