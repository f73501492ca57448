-- What text tags (ASCII string registers and the like) read, kept only when
-- the text changes: a mode or a status word reads the same for hours. The
-- number a text spells, if any, is also a sample like any other; retention
-- drops texts with the hour of raw samples they were read in.
CREATE TABLE tag_texts (
    tag_id  INTEGER NOT NULL REFERENCES tags(id),
    ts_ms   INTEGER NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (tag_id, ts_ms)
) STRICT, WITHOUT ROWID;
