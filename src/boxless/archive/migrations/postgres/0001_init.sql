-- 0001: the message archive (PostgreSQL).
-- Keyed by the 32-byte deterministic message hash; `message` holds the opaque
-- encoded WakuMessage. All times are Unix epoch nanoseconds.
-- Topics use the "C" collation: they are only compared for equality, and
-- bytewise comparison keeps the indexes small and fast.
CREATE TABLE messages (
    message_hash  bytea  PRIMARY KEY CHECK (octet_length(message_hash) = 32),
    pubsub_topic  text   COLLATE "C" NOT NULL,
    content_topic text   COLLATE "C" NOT NULL,
    timestamp     bigint NOT NULL,
    received_at   bigint NOT NULL,
    size          integer NOT NULL,
    message       bytea  NOT NULL
);

-- Content-filtered pages: equality on both topics, then the ordering key.
CREATE INDEX messages_topic_time
    ON messages (pubsub_topic, content_topic, timestamp, message_hash);

-- Unfiltered and time-range-only pages.
CREATE INDEX messages_time ON messages (timestamp, message_hash);

-- Retention walks receive time; `size` makes the byte budget an index-only scan.
CREATE INDEX messages_received ON messages (received_at, message_hash) INCLUDE (size);
