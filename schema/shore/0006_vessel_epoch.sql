-- Each vessel's epoch as last seen in a session. When a vessel opens a
-- session with another one (it was restored from a backup, and numbers its
-- changes again from where the backup stopped), the shore forgets what it
-- acknowledged, so the vessel sends its whole lane again and no change made
-- after the restore hides behind an old acknowledgement.
ALTER TABLE vessels ADD COLUMN epoch TEXT;
