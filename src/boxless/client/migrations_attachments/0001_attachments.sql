-- Attachments of messages (client/attachment_store.py). One row per file of a
-- message; the descriptor is the Attachment protobuf (wire/attachment.proto)
-- with its key: this database is encrypted (SQLCipher), and the file's bytes
-- live encrypted in the block store, so no plaintext is ever on disk.
CREATE TABLE client_attachments (
    message_id   BLOB NOT NULL,
    idx          INTEGER NOT NULL,             -- position in the message (album order)
    chat         TEXT NOT NULL,                -- "contact:<identity key hex>" | "group:<group id hex>"
    outgoing     INTEGER NOT NULL,
    descriptor   BLOB NOT NULL,
    size         INTEGER NOT NULL,             -- plaintext bytes (from the descriptor)
    state        TEXT NOT NULL,                -- remote | downloading | ready | failed
    done         INTEGER NOT NULL DEFAULT 0,   -- bytes fetched so far
    error        TEXT,                         -- why the last fetch failed (for the user)
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (message_id, idx)
);
CREATE INDEX client_attachments_state ON client_attachments (state, size);
CREATE INDEX client_attachments_chat ON client_attachments (chat);

-- Settings of this feature: auto_download_bytes (files up to this size are
-- fetched when they arrive; 0 = never).
CREATE TABLE client_attachment_settings (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
