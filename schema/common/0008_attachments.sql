-- The attachments of faults and work orders, projected from their
-- documents like the other query tables: one row per attachment, rewritten
-- with the record. The edge agent finds the files still to send ashore
-- here, and both sites find a file's record, type and name to serve it.
CREATE TABLE attachments (
    record_id TEXT NOT NULL,
    id TEXT NOT NULL,
    vessel_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (record_id, id)
) STRICT;
CREATE INDEX attachments_by_file ON attachments (vessel_id, sha256);
