-- What each vessel last reported of its own backlog, for the fleet view:
-- bytes still waiting on board and the vessel's estimate of how long they
-- take at the rate it measured.
ALTER TABLE vessels ADD COLUMN pending_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vessels ADD COLUMN eta_secs INTEGER;
