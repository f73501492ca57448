-- Bytes the sync client moved over the link, per UTC day, for the daily
-- budget. Old days are kept: they are a few bytes each and show the link's
-- cost history.
CREATE TABLE sync_usage (
    day   TEXT PRIMARY KEY,   -- YYYY-MM-DD, UTC
    bytes INTEGER NOT NULL
) STRICT;
