-- The group direct outbox (key shares, ops, requests over Olm) in the row shape of
-- boxless.chat.outbox (ROW_COLUMNS): the same retry machine as 1:1 messages.
CREATE TABLE client_group_direct_outbox (
    message_id      BLOB PRIMARY KEY,         -- the ChatMessage id
    recipient       BLOB NOT NULL,
    content_topic   TEXT NOT NULL,
    payload         BLOB NOT NULL,            -- encoded ChatMessage (the DB is encrypted)
    state           TEXT NOT NULL,
    queued_at       REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts        INTEGER NOT NULL,
    failures        INTEGER NOT NULL,
    sends           INTEGER NOT NULL,
    last_sent_at    REAL
);
CREATE INDEX client_group_direct_outbox_due ON client_group_direct_outbox (next_attempt_at);
INSERT INTO client_group_direct_outbox
    SELECT randomblob(16), recipient, '', payload, 'queued', next_attempt_at, next_attempt_at,
           attempts, attempts, 0, NULL
    FROM client_group_outbox;
DROP TABLE client_group_outbox;
