-- Deferred indexing (issue 9): while a catch-up works through store history, the
-- texts it stores are queued in client_search_pending instead of being indexed in
-- the receive transaction (the trigram index was ~15 % of a catch-up's CPU);
-- client/search_index.py indexes them right after the catch-up, in chunks, and at
-- the next catch-up's start whatever a crash left queued. client_search_defer.active
-- is 1 only while a catch-up runs. An edit or a delete of a queued text works as
-- before (the update/delete triggers); the indexer skips what is indexed or gone.
CREATE TABLE client_search_defer (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    active  INTEGER NOT NULL
);
INSERT INTO client_search_defer (id, active) VALUES (1, 0);

-- In arrival order (rowid); a text queued twice (deleted and stored again) is indexed once.
CREATE TABLE client_search_pending (
    kind        INTEGER NOT NULL,                  -- 0: client_messages, 1: client_group_messages
    message_id  NOT NULL                           -- BLOB (1:1) or TEXT (group SDS id)
);

DROP TRIGGER client_search_dm_insert;
DROP TRIGGER client_search_group_insert;

CREATE TRIGGER client_search_dm_insert AFTER INSERT ON client_messages
WHEN NEW.deleted = 0 AND NEW.text != ''
    AND (SELECT active FROM client_search_defer WHERE id = 1) = 0
BEGIN
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        VALUES (0, NEW.message_id, NEW.contact);
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text || '  ' FROM client_search_docs WHERE kind = 0 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_dm_defer AFTER INSERT ON client_messages
WHEN NEW.deleted = 0 AND NEW.text != ''
    AND (SELECT active FROM client_search_defer WHERE id = 1) != 0
BEGIN
    INSERT INTO client_search_pending (kind, message_id) VALUES (0, NEW.message_id);
END;

CREATE TRIGGER client_search_group_insert AFTER INSERT ON client_group_messages
WHEN NEW.kind = 'text' AND NEW.text != ''
    AND (SELECT active FROM client_search_defer WHERE id = 1) = 0
BEGIN
    INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)
        VALUES (1, NEW.message_id, NEW.group_id);
    INSERT INTO client_search_fts (rowid, text)
        SELECT doc, NEW.text || '  ' FROM client_search_docs WHERE kind = 1 AND message_id = NEW.message_id;
END;

CREATE TRIGGER client_search_group_defer AFTER INSERT ON client_group_messages
WHEN NEW.kind = 'text' AND NEW.text != ''
    AND (SELECT active FROM client_search_defer WHERE id = 1) != 0
BEGIN
    INSERT INTO client_search_pending (kind, message_id) VALUES (1, NEW.message_id);
END;
