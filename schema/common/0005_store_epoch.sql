-- The database's epoch: a random id made when the database is created and
-- made anew when it is restored from a backup. Sequence numbers of the sync
-- lanes are only comparable within one epoch: a restored database numbers
-- again from where its backup stopped, so its peer must not trust cursors
-- from before. Each side sends its epoch with every session.
CREATE TABLE store_epoch (
    epoch TEXT NOT NULL
) STRICT;
INSERT INTO store_epoch (epoch) VALUES (lower(hex(randomblob(16))));
