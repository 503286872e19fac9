-- Group message actions (client/group_action_store.py): what a text replies to and
-- mentions, whether it was edited or deleted for everyone, its reactions, and the
-- actions that arrived before the message they name (bounded, expiring).
CREATE TABLE client_group_message_extra (
    message_id   TEXT PRIMARY KEY,          -- client_group_messages.message_id (SDS id)
    reply_to     TEXT,                      -- SDS id of the message it answers, or NULL
    mentions     TEXT NOT NULL DEFAULT '[]', -- JSON list of identity keys (hex)
    mention_all  INTEGER NOT NULL DEFAULT 0,
    edited       INTEGER NOT NULL DEFAULT 0,
    deleted      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE client_group_reactions (
    message_id   TEXT NOT NULL,
    member       BLOB NOT NULL,             -- identity key of the member who reacted
    emoji        TEXT NOT NULL,
    PRIMARY KEY (message_id, member, emoji)
);

CREATE TABLE client_group_action_pending (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id       BLOB NOT NULL,
    target         TEXT NOT NULL,           -- SDS id of the message the action names
    sender         BLOB NOT NULL,
    admin          INTEGER NOT NULL,        -- the sender's role when the action was delivered
    body           BLOB NOT NULL,           -- the encoded ChatMessage
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX client_group_action_pending_target ON client_group_action_pending (target);
CREATE INDEX client_group_action_pending_group ON client_group_action_pending (group_id);
