-- Mini apps (client/miniapp_store.py, docs/miniapps.md): installed bundles (the
-- verified bundle bytes live here, encrypted with the rest of the database), the
-- permissions the user decided, and each app's key/value storage (quota-limited).
CREATE TABLE client_miniapps (
    app_id          TEXT PRIMARY KEY,       -- manifest id (reverse-DNS)
    manifest        TEXT NOT NULL,          -- the checked manifest as JSON
    developer       BLOB NOT NULL,          -- 32 bytes: updates must be signed by it
    bot             BLOB NOT NULL,          -- 32 bytes: the only account its page talks to
    version         TEXT NOT NULL,
    bundle          BLOB NOT NULL,          -- the signed bundle file
    archive_sha256  BLOB NOT NULL,
    installed_at_ms INTEGER NOT NULL,
    used_at_ms      INTEGER                 -- last opened (Discover: recently used)
);

CREATE TABLE client_miniapp_permissions (
    app_id      TEXT NOT NULL REFERENCES client_miniapps(app_id) ON DELETE CASCADE,
    permission  TEXT NOT NULL,              -- user.name | user.avatar | backend | pay | share | storage
    granted     INTEGER NOT NULL,           -- 1 allowed, 0 refused
    decided_at_ms INTEGER NOT NULL,
    PRIMARY KEY (app_id, permission)
);

CREATE TABLE client_miniapp_storage (
    app_id  TEXT NOT NULL REFERENCES client_miniapps(app_id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (app_id, key)
);
