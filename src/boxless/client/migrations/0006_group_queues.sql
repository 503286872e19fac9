-- Group inbox and pending queues: bounded per sender and per group, expiring, and
-- re-processed only when something that could place a row arrives (its group's
-- ops, its sender's card), not on every group message.
ALTER TABLE client_group_inbox ADD COLUMN group_id BLOB;
CREATE INDEX client_group_inbox_group ON client_group_inbox (group_id);
CREATE INDEX client_group_inbox_sender ON client_group_inbox (sender);
CREATE INDEX client_group_inbox_age ON client_group_inbox (received_at_ms);
CREATE INDEX client_group_pending_group ON client_group_pending (group_id, received_at_ms);
CREATE INDEX client_group_pending_age ON client_group_pending (received_at_ms);
