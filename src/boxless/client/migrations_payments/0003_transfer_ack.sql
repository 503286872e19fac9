-- 0003: the recipient of a 1:1 transfer acknowledged it (their client verified the
-- card against the chain). The sender's card says "received" once its own chain
-- check says "confirmed" AND the recipient acknowledged.
ALTER TABLE payment_card ADD COLUMN acked INTEGER NOT NULL DEFAULT 0;
