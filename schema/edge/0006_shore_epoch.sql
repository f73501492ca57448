-- The shore's epoch as last seen in a session. When the shore answers with
-- another one (it was restored from a backup), the vessel pulls the shore's
-- outbound lane again from the start; re-applied changes are harmless.
ALTER TABLE sync_state ADD COLUMN shore_epoch TEXT;
