-- Group features: mute, my read position, joins in flight, event rows,
-- mentions, pins, and other members' read markers (for read counts).
ALTER TABLE client_groups ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client_groups ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;  -- last seq I read

ALTER TABLE client_group_messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';  -- text|event
ALTER TABLE client_group_messages ADD COLUMN mentions_me INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client_group_messages ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
-- Display order: (SDS Lamport time, id), the same on every device.
CREATE INDEX client_group_messages_lamport ON client_group_messages (group_id, lamport, message_id);

-- Other members' read markers: the SDS Lamport time of the newest message they read.
CREATE TABLE client_group_reads (
    group_id       BLOB NOT NULL REFERENCES client_groups(group_id) ON DELETE CASCADE,
    member         BLOB NOT NULL,
    lamport        INTEGER NOT NULL,
    PRIMARY KEY (group_id, member)
);

-- Groups we asked to join by link; gone once the admin's ops make us a member.
CREATE TABLE client_group_joins (
    group_id       BLOB PRIMARY KEY,
    name           TEXT NOT NULL,
    admin          BLOB NOT NULL,
    link           TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL
);
