-- Attachment files arriving from vessels: how many leading bytes of each
-- are durable in its partial file. The partial file may be longer after a
-- crash; it is cut back to `received` before the next chunk is appended.
-- `complete` is set once the whole file matched its SHA-256 and was moved
-- under its final name.
CREATE TABLE vessel_files (
    vessel_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    received INTEGER NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (vessel_id, sha256)
) STRICT;
