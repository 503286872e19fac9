-- Short search terms (one or two characters: "ok", Chinese words like 你好) through the
-- index: every indexed text gets two trailing spaces, so each of its characters starts a
-- trigram, and client_search_terms (the index's vocabulary) lists the trigrams that start
-- with a short term; the search matches any of them (client/search_store.py).
CREATE VIRTUAL TABLE client_search_terms USING fts5vocab(client_search_fts, 'row');

DROP TRIGGER client_search_dm_insert;
DROP TRIGGER client_search_dm_update;
DROP TRIGGER client_search_dm_delete;
DROP TRIGGER client_search_group_insert;
DROP TRIGGER client_search_group_update;
DROP TRIGGER client_search_group_delete;

CREATE TRIGGER client_search_dm_insert AFTER INSERT ON client_messages
WHEN NEW.deleted = 0 AND NEW.text != ''
BEGIN
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        VALUES (0, NEW.message_id, NEW.contact);
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text || '  ' FROM client_search_docs WHERE kind = 0 AND message_id = NEW.message_id;
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
        SELECT doc, NEW.text || '  ' FROM client_search_docs WHERE kind = 0 AND message_id = NEW.message_id;
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
        SELECT doc, NEW.text || '  ' FROM client_search_docs WHERE kind = 1 AND message_id = NEW.message_id;
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
        SELECT doc, NEW.text || '  ' FROM client_search_docs WHERE kind = 1 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_group_delete AFTER DELETE ON client_group_messages
BEGIN
    DELETE FROM client_search_fts WHERE rowid IN
        (SELECT doc FROM client_search_docs WHERE kind = 1 AND message_id = OLD.message_id);
    DELETE FROM client_search_docs WHERE kind = 1 AND message_id = OLD.message_id;
END;

DELETE FROM client_search_fts;
INSERT INTO client_search_fts (rowid, text)
    SELECT d.doc, m.text || '  ' FROM client_search_docs d JOIN client_messages m
        ON d.kind = 0 AND m.message_id = d.message_id;
INSERT INTO client_search_fts (rowid, text)
    SELECT d.doc, g.text || '  ' FROM client_search_docs d JOIN client_group_messages g
        ON d.kind = 1 AND g.message_id = d.message_id;
