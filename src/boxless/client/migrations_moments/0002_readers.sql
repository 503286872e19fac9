-- Moments keying (docs/moments.md "Keying"): as a poster, the reader key each
-- contact holds and the feed epoch it was given; as a reader, each poster's
-- reader key and feed secret (its feed topic), the newest epochs only.
CREATE TABLE moment_readers (
    member      BLOB PRIMARY KEY,            -- identity key of a contact we gave a reader key
    reader_key  BLOB NOT NULL,               -- 32 bytes (the database is encrypted)
    epoch       INTEGER NOT NULL             -- the feed epoch it was given
);
CREATE TABLE moment_feeds (
    poster       BLOB NOT NULL,
    epoch        INTEGER NOT NULL,
    reader_key   BLOB NOT NULL,
    feed_secret  BLOB NOT NULL,
    topic        TEXT NOT NULL,
    PRIMARY KEY (poster, epoch)
);
CREATE INDEX moment_feeds_topic ON moment_feeds (topic);
