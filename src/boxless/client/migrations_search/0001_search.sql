-- Full-text search over 1:1 and group texts (client/search_store.py).
-- client_search_docs maps an FTS row to its message; the FTS table holds a copy of
-- the text (the database is encrypted, so is the index). Triggers keep both in step
-- with the message tables: a new text is indexed, an edit re-indexed under the same
-- row, a delete for everyone (text blanked) or a removed message drops out.
-- trigram: substring matching that also finds Chinese/Japanese words, which the
-- unicode61 tokenizer would not split.
CREATE TABLE client_search_docs (
    doc          INTEGER PRIMARY KEY AUTOINCREMENT,  -- rowid in client_search_fts
    kind         INTEGER NOT NULL,                   -- 0: client_messages, 1: client_group_messages
    message_id   NOT NULL,                           -- BLOB (1:1) or TEXT (group SDS id)
    chat         BLOB NOT NULL,                      -- contact identity key or group id
    UNIQUE (kind, message_id)
);
CREATE INDEX client_search_docs_chat ON client_search_docs (kind, chat, doc);

CREATE VIRTUAL TABLE client_search_fts USING fts5(
    text, tokenize = 'trigram remove_diacritics 1'
);

CREATE TRIGGER client_search_dm_insert AFTER INSERT ON client_messages
WHEN NEW.deleted = 0 AND NEW.text != ''
BEGIN
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        VALUES (0, NEW.message_id, NEW.contact);
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text FROM client_search_docs WHERE kind = 0 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_dm_update AFTER UPDATE OF text, deleted ON client_messages
WHEN OLD.text IS NOT NEW.text OR OLD.deleted IS NOT NEW.deleted
BEGIN
    DELETE FROM client_search_fts WHERE rowid IN
        (SELECT doc FROM client_search_docs WHERE kind = 0 AND message_id = OLD.message_id);
    DELETE FROM client_search_docs
        WHERE kind = 0 AND message_id = OLD.message_id AND (NEW.deleted != 0 OR NEW.text = '');
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        SELECT 0, NEW.message_id, NEW.contact WHERE NEW.deleted = 0 AND NEW.text != '';
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text FROM client_search_docs WHERE kind = 0 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_dm_delete AFTER DELETE ON client_messages
BEGIN
    DELETE FROM client_search_fts WHERE rowid IN
        (SELECT doc FROM client_search_docs WHERE kind = 0 AND message_id = OLD.message_id);
    DELETE FROM client_search_docs WHERE kind = 0 AND message_id = OLD.message_id;
END;

CREATE TRIGGER client_search_group_insert AFTER INSERT ON client_group_messages
WHEN NEW.kind = 'text' AND NEW.text != ''
BEGIN
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        VALUES (1, NEW.message_id, NEW.group_id);
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text FROM client_search_docs WHERE kind = 1 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_group_update AFTER UPDATE OF text ON client_group_messages
WHEN OLD.text IS NOT NEW.text
BEGIN
    DELETE FROM client_search_fts WHERE rowid IN
        (SELECT doc FROM client_search_docs WHERE kind = 1 AND message_id = OLD.message_id);
    DELETE FROM client_search_docs
        WHERE kind = 1 AND message_id = OLD.message_id AND NEW.text = '';
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        SELECT 1, NEW.message_id, NEW.group_id WHERE NEW.kind = 'text' AND NEW.text != '';
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text FROM client_search_docs WHERE kind = 1 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_group_delete AFTER DELETE ON client_group_messages
BEGIN
    DELETE FROM client_search_fts WHERE rowid IN
        (SELECT doc FROM client_search_docs WHERE kind = 1 AND message_id = OLD.message_id);
    DELETE FROM client_search_docs WHERE kind = 1 AND message_id = OLD.message_id;
END;

-- What was there before this migration, oldest first (so newer texts get higher rows).
INSERT INTO client_search_docs (kind, message_id, chat)
    SELECT kind, message_id, chat FROM (
        SELECT 0 AS kind, message_id, contact AS chat, sent_at_ms FROM client_messages
            WHERE deleted = 0 AND text != ''
        UNION ALL
        SELECT 1, message_id, group_id, sent_at_ms FROM client_group_messages
            WHERE kind = 'text' AND text != ''
    ) ORDER BY sent_at_ms;
INSERT INTO client_search_fts (rowid, text)
    SELECT d.doc, m.text FROM client_search_docs d JOIN client_messages m
        ON d.kind = 0 AND m.message_id = d.message_id;
INSERT INTO client_search_fts (rowid, text)
    SELECT d.doc, g.text FROM client_search_docs d JOIN client_group_messages g
        ON d.kind = 1 AND g.message_id = d.message_id;
