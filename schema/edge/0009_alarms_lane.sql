-- The alarms lane's cursor: `sent_acked` is the highest `alarm_events` id
-- the shore has acknowledged as durable. The history is append-only and its
-- ids are never reused, so the id is the lane's sequence number.
INSERT INTO sync_state (lane) VALUES ('alarms');
