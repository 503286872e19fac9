-- A message waiting for its key is re-tried only when that session's key arrives
-- (not every waiting message of the group on every key share: junk costs nothing).
ALTER TABLE client_group_pending ADD COLUMN session_id BLOB;
CREATE INDEX client_group_pending_session ON client_group_pending (group_id, session_id);
