-- Scheduled automatic backups (client/backup_schedule.py): where, how often, how
-- many to keep, and how the last run went. One row (id = 1) when scheduled.
CREATE TABLE backup_schedule (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    folder       TEXT    NOT NULL,
    every_s      INTEGER NOT NULL CHECK (every_s >= 60),
    keep         INTEGER NOT NULL CHECK (keep >= 1),
    attachments  INTEGER NOT NULL DEFAULT 0,
    last_at_ms   INTEGER,
    last_file    TEXT,
    last_error   TEXT
);
