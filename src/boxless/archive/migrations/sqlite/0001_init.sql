-- 0001: the message archive (SQLite).
-- Keyed by the 32-byte deterministic message hash; `message` holds the opaque
-- encoded WakuMessage. A rowid table, not WITHOUT ROWID, because rows carry
-- ~1 KiB blobs. All times are Unix epoch nanoseconds.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    message_hash  BLOB    NOT NULL UNIQUE CHECK (length(message_hash) = 32),
    pubsub_topic  TEXT    NOT NULL,
    content_topic TEXT    NOT NULL,
    timestamp     INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    message       BLOB    NOT NULL
);

-- Content-filtered pages: equality on both topics, then the ordering key.
CREATE INDEX messages_topic_time
    ON messages (pubsub_topic, content_topic, timestamp, message_hash);

-- Unfiltered and time-range-only pages.
CREATE INDEX messages_time ON messages (timestamp, message_hash);

-- Retention walks receive time; `size` makes the byte budget a covering scan.
CREATE INDEX messages_received ON messages (received_at, message_hash, size);
