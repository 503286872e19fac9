-- Moments notifications (docs/moments.md "Notifications"): likes and comments on
-- my posts, replies to my comments, posts that mention me. Newest 500 kept.
CREATE TABLE moment_notices (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    post_id  BLOB NOT NULL,
    kind     TEXT NOT NULL,                   -- like | comment | reply | mention
    actor    BLOB NOT NULL,                   -- who liked, commented, replied, mentioned
    text     TEXT NOT NULL DEFAULT '',        -- the comment or reply
    at_ms    INTEGER NOT NULL,
    unread   INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX moment_notices_post ON moment_notices (post_id);
