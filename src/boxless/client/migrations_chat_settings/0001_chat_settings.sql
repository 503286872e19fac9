-- Per-chat settings of the chat list (client/chat_settings_store.py): pinned, muted
-- (1:1 chats; a group's mute stays in client_groups.muted), marked unread, the
-- composer's draft, and when the chat was deleted for me (hidden while empty).
-- Rows exist only for chats that exist (a contact or a group), made by the user.
CREATE TABLE client_chat_settings (
    chat           TEXT PRIMARY KEY,          -- "contact:<identity key hex>" | "group:<group id hex>"
    pinned         INTEGER NOT NULL DEFAULT 0,
    muted          INTEGER NOT NULL DEFAULT 0,
    marked_unread  INTEGER NOT NULL DEFAULT 0,
    draft          TEXT NOT NULL DEFAULT '',
    cleared_at_ms  INTEGER,                   -- deleted for me at (NULL: never)
    updated_at_ms  INTEGER NOT NULL
);
