-- Settings synced between our own devices (client/ownsync.py): the value each
-- setting last took and its clock (max(previous + 1, wall clock ms)) and the
-- device that set it (ties: the larger device key wins), so every device
-- converges on the same last writer.
CREATE TABLE devices_sync_registers (
    key     TEXT PRIMARY KEY,              -- "chat:<chat>:pinned", "read:<group id hex>", ...
    value   TEXT NOT NULL,                 -- JSON
    clock   INTEGER NOT NULL,
    device  BLOB NOT NULL                  -- Curve25519 key of the device that set it (b'' = default)
);
