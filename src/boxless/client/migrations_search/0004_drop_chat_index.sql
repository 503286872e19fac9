-- Searching one chat walks the index newest first and looks each row's doc up by its
-- key (client/search_store.py), so the per-chat index of 0001 is never read: one
-- b-tree less to write for every stored text.
DROP INDEX client_search_docs_chat;
