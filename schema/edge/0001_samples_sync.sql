-- Edge-only tables: sensor tags and samples, and the sync cursors.

CREATE TABLE tags (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    unit        TEXT NOT NULL DEFAULT ''
) STRICT;

-- Recent samples, one row each, keyed by tag and time so a re-sent sample
-- replaces itself instead of duplicating.
CREATE TABLE samples (
    tag_id   INTEGER NOT NULL REFERENCES tags(id),
    ts_ms    INTEGER NOT NULL,
    value    REAL,
    quality  INTEGER NOT NULL,
    PRIMARY KEY (tag_id, ts_ms)
) STRICT, WITHOUT ROWID;

-- One row per sync lane. `sent_acked` is the highest local change_log seq
-- the shore has acknowledged as durable; `received` is the highest shore
-- sequence number this vessel has made durable.
CREATE TABLE sync_state (
    lane            TEXT PRIMARY KEY,
    sent_acked      INTEGER NOT NULL DEFAULT 0,
    received        INTEGER NOT NULL DEFAULT 0,
    last_attempt_ms INTEGER,
    last_success_ms INTEGER,
    last_error      TEXT
) STRICT;
INSERT INTO sync_state (lane) VALUES ('records');
