"""Stealth receiving in the Wallet pane (docs/redenvelopes.md, "In the Wallet pane").

The keys come from the account seed (:class:`StealthKeys`); the chain is the wallet's.
Scanning reads the announcer's logs from the block after the last one scanned, at most
:data:`SCAN_STEP` blocks a call (the UI calls again until ``done``: that is its
progress), keeps the announcements that pay us, and remembers the last block.
Announcements are anyone's: the scanner keeps only those our viewing key matches, and
a sweep spends only a stealth address whose key we derive. All the SQL is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from boxless.errors import UsageError
from boxless.identity.account import LocalAccount
from boxless.payments.amounts import format_amount
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import checksum_address, derive_private_key
from boxless.payments.rpc import Rpc, quantity
from boxless.payments.stealth import Announcement, Scanner, StealthKeys
from boxless.payments.stealth_chain import Announcer, spend
from boxless.payments.store import PaymentStore
from boxless.storage.userdb import UserDB

__all__ = ["SCAN_STEP", "StealthWallet"]

SCAN_STEP = 50_000  # blocks per scan call
MAX_FOUND_SHOWN = 200


@dataclass(frozen=True, slots=True)
class _Found:
    ann: Announcement
    swept: bool


class StealthWallet:
    def __init__(self, account: LocalAccount, *, clock: Callable[[], float]) -> None:
        self.account, self.clock = account, clock
        self.db: UserDB = account.db
        self._lock = trio.Lock()  # one scan or sweep at a time

    def _keys(self) -> StealthKeys:
        return StealthKeys.from_seed(self.account.keystore.load_wallet_seed())

    def _signer(self) -> tuple[int, Signer]:
        config = PaymentStore(self.db).chain()  # WalletNotConfigured says how
        key = derive_private_key(self.account.keystore.load_wallet_seed())
        return config.chain_id, Signer(Rpc(config.rpc_url, config.chain_id), key)

    def _chain_row(self, chain_id: int) -> tuple[bytes, int] | None:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT announcer, scanned_block FROM client_stealth_chain WHERE chain_id = ?",
                (chain_id,),
            )
            r = cur.fetchone()
        return None if r is None else (bytes(r[0]), int(r[1]))

    def set_announcer(self, address: bytes) -> None:
        """Scan this announcer (ERC-5564) on the wallet's chain; a new one starts over."""
        if len(address) != 20:
            raise UsageError("an announcer address is 0x and 40 hex digits")
        chain_id = PaymentStore(self.db).chain().chain_id
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO client_stealth_chain (chain_id, announcer) VALUES (?, ?)"
                " ON CONFLICT (chain_id) DO UPDATE SET announcer = excluded.announcer,"
                " scanned_block = CASE WHEN announcer = excluded.announcer"
                " THEN scanned_block ELSE -1 END",
                (chain_id, address),
            )

    def _found(self, chain_id: int) -> list[_Found]:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT stealth_address, ephemeral_public, metadata, block_number, tx_hash, swept"
                " FROM client_stealth_found WHERE chain_id = ?"
                " ORDER BY block_number DESC LIMIT ?",
                (chain_id, MAX_FOUND_SHOWN),
            )
            rows = cur.fetchall()
        return [
            _Found(
                Announcement(bytes(r[0]), bytes(r[1]), bytes(r[2]), int(r[3]), bytes(r[4])),
                bool(r[5]),
            )
            for r in rows
        ]

    async def info(self) -> dict[str, Any]:
        """Meta-address, main address, announcer, last block scanned, found payments
        with their balances (read from the chain)."""
        keys = self._keys()
        out: dict[str, Any] = {"meta_address": keys.meta.uri(), "configured": False}
        try:
            chain_id, signer = self._signer()
        except UsageError as exc:
            return {**out, "error": str(exc)}
        try:
            out["address"] = checksum_address(signer.address)
            out["chain_id"] = chain_id
            row = self._chain_row(chain_id)
            if row is not None:
                out["configured"] = True
                out["announcer"] = checksum_address(row[0])
                out["scanned_block"] = row[1]
            found = self._found(chain_id)
            balances = await trio.to_thread.run_sync(
                lambda: [signer.balance(f.ann.stealth_address) for f in found]
            )
            out["found"] = [
                {
                    "address": checksum_address(f.ann.stealth_address),
                    "block": f.ann.block_number,
                    "tx": "0x" + f.ann.tx_hash.hex(),
                    "balance_wei": str(b),
                    "balance": format_amount(b, 18),
                    "swept": f.swept,
                }
                for f, b in zip(found, balances, strict=True)
            ]
            return out
        finally:
            signer.rpc.close()

    async def scan(self) -> dict[str, Any]:
        """Scan the next at most SCAN_STEP blocks: ``{scanned_block, head, done, new}``."""
        async with self._lock:
            chain_id, signer = self._signer()
            try:
                row = self._chain_row(chain_id)
                if row is None:
                    raise UsageError(
                        "no announcer to scan: set the ERC-5564 announcer contract first"
                    )
                announcer, scanned = row
                keys = self._keys()

                def work() -> tuple[int, list[Announcement]]:
                    head = quantity(signer.rpc.call("eth_blockNumber", []), "block number")
                    last = min(head, scanned + SCAN_STEP)
                    if last <= scanned:
                        return head, []
                    anns = Announcer(signer, announcer).announcements(scanned + 1, last)
                    return head, Scanner.for_keys(keys).scan(anns)

                head, mine = await trio.to_thread.run_sync(work)
                last = min(head, scanned + SCAN_STEP)
                with self.db.transaction() as cur:
                    for a in mine:
                        cur.execute(
                            "INSERT OR IGNORE INTO client_stealth_found (chain_id,"
                            " stealth_address, ephemeral_public, metadata, block_number, tx_hash)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (chain_id, a.stealth_address, a.ephemeral_public, a.metadata,
                             a.block_number, a.tx_hash),
                        )  # fmt: skip
                    cur.execute(
                        "UPDATE client_stealth_chain SET scanned_block = ? WHERE chain_id = ?"
                        " AND scanned_block < ?",
                        (last, chain_id, last),
                    )
                return {"scanned_block": max(last, scanned), "head": head, "done": last >= head,
                        "new": len(mine)}  # fmt: skip
            finally:
                signer.rpc.close()

    async def sweep(self) -> dict[str, Any]:
        """Move every found stealth address's ETH to the wallet's main address (each pays
        its own fee): ``{swept: [{address, amount, tx}], skipped: [{address, reason}]}``."""
        async with self._lock:
            chain_id, signer = self._signer()
            try:
                keys, to = self._keys(), signer.address
                found = [f for f in self._found(chain_id) if not f.swept]

                def work() -> tuple[list[dict[str, str]], list[dict[str, str]], list[bytes]]:
                    done, skipped, spent = [], [], []
                    for f in found:
                        where = checksum_address(f.ann.stealth_address)
                        if not signer.balance(f.ann.stealth_address):
                            skipped.append({"address": where, "reason": "empty"})
                            continue
                        try:
                            tx, amount = spend(signer.rpc, keys, f.ann, to)
                        except UsageError as exc:
                            skipped.append({"address": where, "reason": str(exc)})
                            continue
                        done.append({"address": where, "amount": format_amount(amount, 18),
                                     "tx": "0x" + tx.hex()})  # fmt: skip
                        spent.append(f.ann.stealth_address)
                    return done, skipped, spent

                done, skipped, spent = await trio.to_thread.run_sync(work)
                with self.db.transaction() as cur:
                    for address in spent:
                        cur.execute(
                            "UPDATE client_stealth_found SET swept = 1"
                            " WHERE chain_id = ? AND stealth_address = ?",
                            (chain_id, address),
                        )
                return {"to": checksum_address(to), "swept": done, "skipped": skipped}
            finally:
                signer.rpc.close()
