-- Profiles (client/profile_store.py). client_profile_details: the status line,
-- region and Moments cover of a person -- ours (our own identity key) and each
-- contact's as their last ProfileUpdate said. client_contact_notes and
-- client_contact_tags: what the user keeps about a contact for themselves only
-- (alias, note, phone-book fields, star, tags); never sent anywhere.
CREATE TABLE client_profile_details (
    identity_key   BLOB PRIMARY KEY,
    status         TEXT NOT NULL DEFAULT '',
    region         TEXT NOT NULL DEFAULT '',
    cover          BLOB,                     -- an image, NULL: none
    updated_at_ms  INTEGER NOT NULL
);

CREATE TABLE client_contact_notes (
    identity_key   BLOB PRIMARY KEY,
    alias          TEXT NOT NULL DEFAULT '',  -- shown instead of their name, everywhere
    note           TEXT NOT NULL DEFAULT '',
    phone          TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    company        TEXT NOT NULL DEFAULT '',
    birthday       TEXT NOT NULL DEFAULT '',  -- free text ("12 May")
    starred        INTEGER NOT NULL DEFAULT 0,
    updated_at_ms  INTEGER NOT NULL
);

CREATE TABLE client_contact_tags (
    identity_key   BLOB NOT NULL,
    tag            TEXT NOT NULL,
    PRIMARY KEY (identity_key, tag)
);
CREATE INDEX client_contact_tags_by_tag ON client_contact_tags (tag);
