-- Tables both the edge agent and the shore keep: users and their sessions,
-- maintenance records (one automerge document each), their query
-- projections, and the change log the sync lanes read from.

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,          -- argon2id PHC string
    role          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,       -- hex SHA-256 of the bearer token; the token itself is never stored
    username      TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions(expires_at_ms);

-- One row per record; `doc` is the whole automerge document as saved.
CREATE TABLE records (
    id            TEXT PRIMARY KEY,
    vessel_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    doc           BLOB NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX records_vessel ON records(vessel_id, kind);

-- Query projection of fault records, rewritten in the same transaction as
-- the document. `json` is the whole fault as the API returns it.
CREATE TABLE faults (
    id            TEXT PRIMARY KEY REFERENCES records(id),
    vessel_id     TEXT NOT NULL,
    title         TEXT NOT NULL,
    equipment     TEXT NOT NULL,
    severity      TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    status        TEXT NOT NULL,
    reporter      TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    comment_count INTEGER NOT NULL,
    json          TEXT NOT NULL
) STRICT;
CREATE INDEX faults_vessel_updated ON faults(vessel_id, updated_at_ms DESC);

-- Every automerge change this site holds, in the order it arrived.
-- origin 'local' was written here and belongs to this site's outbound lane;
-- origin 'remote' arrived through sync. Changes are content-addressed, so a
-- change that arrives twice is stored once. Sequence numbers only increase;
-- they may have gaps (an ignored duplicate can use one up).
CREATE TABLE change_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    vessel_id     TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    origin        TEXT NOT NULL CHECK (origin IN ('local', 'remote')),
    hash          TEXT NOT NULL,
    change        BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (record_id, hash)
) STRICT;
CREATE INDEX change_log_outbound ON change_log(vessel_id, origin, seq);
