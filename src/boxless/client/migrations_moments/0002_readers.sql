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
-- Our posts' audiences, one row a post (members' identity keys concatenated):
-- a post to 500 contacts is one insert, not 500. Replaces moment_audience.
CREATE TABLE moment_audience_sets (
    post_id  BLOB PRIMARY KEY,
    members  BLOB NOT NULL,                   -- n x 32 bytes, sorted
    mode     TEXT NOT NULL DEFAULT 'only',    -- all | only | except | me: who joins later
    chosen   BLOB NOT NULL DEFAULT x''        -- the chosen contacts (n x 32 bytes)
);
INSERT INTO moment_audience_sets (post_id, members)
    SELECT post_id, CAST(group_concat(member, '') AS BLOB) FROM
        (SELECT post_id, member FROM moment_audience ORDER BY post_id, member)
    GROUP BY post_id;
DROP TABLE moment_audience;
-- The sealed content of a post pinned as a blob (an encoded Attachment), fetched
-- by content address when the store no longer holds the message (durability).
ALTER TABLE moment_posts ADD COLUMN content_blob BLOB;
