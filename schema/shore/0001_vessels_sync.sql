-- Shore-only tables: the vessel registry, replay protection for signed
-- sync requests, and batches refused for inspection.

CREATE TABLE vessels (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    public_key     TEXT NOT NULL,            -- base64 Ed25519 public key
    created_at_ms  INTEGER NOT NULL,
    records_acked  INTEGER NOT NULL DEFAULT 0, -- highest vessel seq made durable here
    last_sync_ms   INTEGER
) STRICT;

-- Nonces of accepted sync requests, kept until their timestamp could no
-- longer pass the skew check, so a replayed request is refused even after
-- a restart.
CREATE TABLE sync_nonces (
    vessel_id     TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (vessel_id, nonce)
) STRICT, WITHOUT ROWID;

CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY,
    vessel_id      TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    payload        BLOB NOT NULL
) STRICT;
