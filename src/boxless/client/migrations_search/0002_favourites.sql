-- Favourites (client/search_store.py): copies of saved messages, so a saved message
-- survives its deletion. chat is "contact:<hex>" or "group:<hex>".
CREATE TABLE client_favourites (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    chat         TEXT NOT NULL,
    message_id   TEXT NOT NULL,                      -- hex (1:1) or SDS id (group)
    text         TEXT NOT NULL,
    sender       TEXT NOT NULL,                      -- identity key hex
    sender_name  TEXT NOT NULL,
    sent_at_ms   INTEGER NOT NULL,
    saved_at_ms  INTEGER NOT NULL,
    UNIQUE (chat, message_id)
);
