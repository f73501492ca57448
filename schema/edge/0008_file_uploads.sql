-- The files lane: how much of each attachment file the shore has
-- acknowledged. A file with no row has not been started; `done` is set when
-- the shore has verified and stored the whole file.
CREATE TABLE file_uploads (
    sha256 TEXT PRIMARY KEY,
    acked INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
) STRICT;
