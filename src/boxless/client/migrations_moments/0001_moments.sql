-- Moments (client/moment_store.py, docs/moments.md): posts we made or got a key
-- for, our posts' audiences, likes, comments, and account-wide settings.
CREATE TABLE moment_posts (
    post_id           BLOB PRIMARY KEY,       -- 16 bytes
    poster            BLOB NOT NULL,          -- identity key
    mine              INTEGER NOT NULL,
    post_key          BLOB NOT NULL,          -- 32 bytes (the database is encrypted)
    message_hash      BLOB NOT NULL,          -- Waku hash of the sealed content
    posted_at_ms      INTEGER NOT NULL,
    visible_until_ms  INTEGER NOT NULL,       -- 0: no limit
    state             TEXT NOT NULL,          -- pending | ready | failed | deleted
    content           BLOB,                   -- encoded MomentContent once opened
    received_at_ms    INTEGER NOT NULL,
    unread            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX moment_posts_feed ON moment_posts (posted_at_ms);
CREATE INDEX moment_posts_poster ON moment_posts (poster, posted_at_ms);
CREATE TABLE moment_audience (
    post_id  BLOB NOT NULL,
    member   BLOB NOT NULL,
    PRIMARY KEY (post_id, member)
);
CREATE TABLE moment_likes (
    post_id  BLOB NOT NULL,
    author   BLOB NOT NULL,
    at_ms    INTEGER NOT NULL,
    PRIMARY KEY (post_id, author)
);
CREATE TABLE moment_comments (
    act_id    BLOB PRIMARY KEY,
    post_id   BLOB NOT NULL,
    author    BLOB NOT NULL,
    text      TEXT NOT NULL,
    reply_to  BLOB,
    at_ms     INTEGER NOT NULL
);
CREATE INDEX moment_comments_post ON moment_comments (post_id, at_ms);
CREATE TABLE moment_settings (
    name   TEXT PRIMARY KEY,                  -- window | hidden_from | muted
    value  TEXT NOT NULL                      -- JSON
);
