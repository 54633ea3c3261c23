-- The creation time (epoch ms) of the message an event reveals (edited, deleted, received, a read
-- receipt naming it); NULL for events that reveal no message. An event reaches only the members
-- whose share_history_ms is at or before it, live and on replay alike (as sqlite/0002).
ALTER TABLE events ADD COLUMN message_ms BIGINT;
