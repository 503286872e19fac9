-- The receive pipeline (client/channel.py) finds the contact of every v2 (pairwise)
-- envelope by its conversation topic: without an index that was a scan of every
-- contact row (cards included) per received message -- 9 us with 20 contacts, 220 us
-- with 1,000 (SQLCipher, issue 9); with it, ~6 us at any size.
CREATE INDEX IF NOT EXISTS client_contacts_by_topic ON client_contacts (conversation_topic);
