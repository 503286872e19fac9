"""All the SQL of the wallet: chain settings and signed transactions (user DB)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boxless.payments.errors import WalletNotConfigured
from boxless.payments.tracker import Decision
from boxless.storage.userdb import UserDB, migration_files

COMPONENT = "payments"


@dataclass(frozen=True, slots=True)
class ChainConfig:
    rpc_url: str
    chain_id: int
    token: str | None = None
    token_symbol: str | None = None
    token_decimals: int | None = None
    confirmations: int = 2


@dataclass(frozen=True, slots=True)
class TxRecord:
    hash: bytes
    chain_id: int
    sender: bytes
    nonce: int
    recipient: bytes
    amount: int
    symbol: str
    token: str | None
    max_fee: int
    raw: bytes
    state: str
    block_number: int | None
    confirmations: int
    note: str
    created_ms: int


_TX_COLUMNS = (
    "hash, chain_id, sender, nonce, recipient, amount, symbol, token, max_fee, raw, state,"
    " block_number, confirmations, note, created_ms"
)


def _record(row: Any) -> TxRecord:
    return TxRecord(
        bytes(row[0]),
        int(row[1]),
        bytes(row[2]),
        int(row[3]),
        bytes(row[4]),
        int(str(row[5])),
        str(row[6]),
        None if row[7] is None else str(row[7]),
        int(str(row[8])),
        bytes(row[9]),
        str(row[10]),
        None if row[11] is None else int(row[11]),
        int(row[12]),
        str(row[13]),
        int(row[14]),
    )


class PaymentStore:
    def __init__(self, db: UserDB) -> None:
        self.db = db
        db.migrate(COMPONENT, migration_files("boxless.client", "migrations_payments"))

    def chain(self) -> ChainConfig:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT rpc_url, chain_id, token, token_symbol, token_decimals, confirmations"
                " FROM payment_chain WHERE id = 1"
            )
            row = cur.fetchone()
        if row is None:
            raise WalletNotConfigured(
                "the wallet has no chain yet: run `boxless wallet config --rpc URL --chain-id N`"
                " (for a local test chain, start one with `boxless devnet-chain`)"
            )
        return ChainConfig(*row)

    def set_chain(self, config: ChainConfig) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO payment_chain (id, rpc_url, chain_id, token, token_symbol,"
                " token_decimals, confirmations) VALUES (1, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET rpc_url = excluded.rpc_url,"
                " chain_id = excluded.chain_id, token = excluded.token,"
                " token_symbol = excluded.token_symbol,"
                " token_decimals = excluded.token_decimals,"
                " confirmations = excluded.confirmations",
                (
                    config.rpc_url,
                    config.chain_id,
                    config.token,
                    config.token_symbol,
                    config.token_decimals,
                    config.confirmations,
                ),
            )

    def next_local_nonce(self, chain_id: int, sender: bytes) -> int | None:
        """One past the highest nonce we signed that is not known to be replaced."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT MAX(nonce) FROM payment_tx WHERE chain_id = ? AND sender = ?"
                " AND state != 'replaced'",
                (chain_id, sender),
            )
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0]) + 1

    def add(self, tx: TxRecord, now_ms: int) -> None:
        self.add_many([tx], now_ms)

    def add_many(self, txs: list[TxRecord], now_ms: int) -> None:
        """Store signed transactions in one transaction (before any is broadcast)."""
        with self.db.transaction() as cur:
            for tx in txs:
                self._insert(cur, tx, now_ms)

    def _insert(self, cur: Any, tx: TxRecord, now_ms: int) -> None:
        cur.execute(
            f"INSERT INTO payment_tx ({_TX_COLUMNS}, updated_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tx.hash,
                tx.chain_id,
                tx.sender,
                tx.nonce,
                tx.recipient,
                str(tx.amount),
                tx.symbol,
                tx.token,
                str(tx.max_fee),
                tx.raw,
                tx.state,
                tx.block_number,
                tx.confirmations,
                tx.note,
                tx.created_ms,
                now_ms,
            ),
        )

    def open_txs(self, chain_id: int) -> list[TxRecord]:
        """Transactions whose fate is not final yet, oldest nonce first."""
        with self.db.transaction() as cur:
            cur.execute(
                f"SELECT {_TX_COLUMNS} FROM payment_tx WHERE chain_id = ?"
                " AND state IN ('pending', 'included') ORDER BY nonce, created_ms",
                (chain_id,),
            )
            return [_record(row) for row in cur.fetchall()]

    def history(self, chain_id: int, limit: int = 50) -> list[TxRecord]:
        with self.db.transaction() as cur:
            cur.execute(
                f"SELECT {_TX_COLUMNS} FROM payment_tx WHERE chain_id = ?"
                " ORDER BY created_ms DESC, nonce DESC LIMIT ?",
                (chain_id, limit),
            )
            return [_record(row) for row in cur.fetchall()]

    def apply(self, tx_hash: bytes, decision: Decision, now_ms: int) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE payment_tx SET state = ?, block_number = ?, block_hash = ?,"
                " confirmations = ?, updated_ms = ? WHERE hash = ?",
                (
                    decision.state,
                    decision.block_number,
                    decision.block_hash,
                    decision.confirmations,
                    now_ms,
                    tx_hash,
                ),
            )

    def forget(self, tx_hash: bytes) -> None:
        """Remove a transaction the node refused outright (it was never out)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM payment_tx WHERE hash = ?", (tx_hash,))

    def spending(
        self, chain_id: int, sender: bytes, token: str | None, mined_nonce: int
    ) -> tuple[int, int, int | None]:
        """:meth:`reserved` and :meth:`next_local_nonce` in one read transaction."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT amount, token, max_fee, nonce, state FROM payment_tx"
                " WHERE chain_id = ? AND sender = ? AND (nonce >= ? OR nonce = ("
                "SELECT MAX(nonce) FROM payment_tx WHERE chain_id = ? AND sender = ?"
                " AND state != 'replaced'))",
                (chain_id, sender, mined_nonce, chain_id, sender),
            )
            rows = cur.fetchall()
        live = [r for r in rows if r[4] != "replaced"]
        held = [r for r in live if int(r[3]) >= mined_nonce]
        asset = sum(int(r[0]) for r in held if r[1] == token)
        eth = sum(int(r[2]) + (int(r[0]) if r[1] is None else 0) for r in held)
        top = max((int(r[3]) for r in live), default=None)
        return asset, eth, None if top is None else top + 1

    def reserved(
        self, chain_id: int, sender: bytes, token: str | None, mined_nonce: int
    ) -> tuple[int, int]:
        """What our transactions with nonces from ``mined_nonce`` on (not in the block
        the balance was read at, whatever their state since: a reused read predates
        them) may still spend: (amount of the asset ``token`` names,
        ETH for fees and ETH values)."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT amount, token, max_fee FROM payment_tx"
                " WHERE chain_id = ? AND sender = ? AND nonce >= ?"
                " AND state != 'replaced'",
                (chain_id, sender, mined_nonce),
            )
            rows = cur.fetchall()
        asset = sum(int(row[0]) for row in rows if row[1] == token)
        eth = sum(int(row[2]) + (int(row[0]) if row[1] is None else 0) for row in rows)
        return asset, eth
