-- The escrow contract mini apps' pay() uses on each chain (client/miniapp_pay.py):
-- set by `boxless wallet escrow 0x…` (the demo sets it for its people).
CREATE TABLE client_miniapp_escrow (
    chain_id    INTEGER PRIMARY KEY,
    address     BLOB NOT NULL               -- 20 bytes: the Escrow.vy contract
);
