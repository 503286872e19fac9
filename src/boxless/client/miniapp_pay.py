"""A mini app's ``pay({amount, token, memo, to, ref})``: into the escrow contract.

The bridge only calls :meth:`MiniAppPay.pay` after Boxless's own confirm dialog
(amount, token, seller, memo). The buyer is this account's wallet; the contract is
the one configured for the wallet's chain (``boxless wallet escrow 0x…``); the
seller is ``to``, refused unless it is the wallet address the app's bot told us
(asked when the app opens, and by pay() itself when still unknown); ``ref`` (the order id, ≤ 32 bytes) is logged with the deal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from boxless.client.escrow import MAX_REF, Deal, Escrow
from boxless.client.payments import Payments
from boxless.errors import BoxlessError, UsageError
from boxless.identity.account import LocalAccount
from boxless.payments.amounts import parse_amount
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import derive_private_key
from boxless.payments.rpc import Rpc
from boxless.payments.store import PaymentStore
from boxless.storage import userdb as db

__all__ = ["DEADLINE_S", "MiniAppPay", "PayOrder", "parse_pay"]

logger = logging.getLogger(__name__)

ASK_WAIT_S = 10.0  # pay() waits this long for an unknown seller's address
DEADLINE_S = 7 * 24 * 3600  # the buyer may reclaim an undelivered order after a week
MAX_MEMO = 200
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True, slots=True)
class PayOrder:
    amount: int  # wei
    token: str
    memo: str
    seller: bytes  # 20 bytes
    ref: bytes  # ≤ 32 bytes


def parse_pay(params: Any) -> PayOrder:
    """The page's pay() params, checked (UsageError says what is wrong)."""
    p = params if isinstance(params, dict) else {}
    token = p.get("token", "ETH")
    if token != "ETH":
        raise UsageError("the escrow takes ETH only: pay with token 'ETH'")
    amount_text = p.get("amount")
    if not isinstance(amount_text, str) or len(amount_text) > 40:
        raise UsageError("amount must be a decimal string of ETH, e.g. '0.002'")
    amount = parse_amount(amount_text, 18)
    if amount <= 0:
        raise UsageError("amount must be more than 0")
    memo = p.get("memo", "")
    if not isinstance(memo, str) or len(memo) > MAX_MEMO:
        raise UsageError(f"memo must be a string of at most {MAX_MEMO} characters")
    to = p.get("to")
    if not isinstance(to, str) or not _ADDRESS.fullmatch(to):
        raise UsageError("to must be the seller's wallet address (0x and 40 hex digits)")
    ref_text = p.get("ref", "")
    if not isinstance(ref_text, str) or len(ref_text.encode()) > MAX_REF:
        raise UsageError(f"ref must be a string of at most {MAX_REF} bytes (the order id)")
    return PayOrder(amount, token, memo, bytes.fromhex(to[2:]), ref_text.encode())


def escrow_address(database: db.UserDB, chain_id: int) -> bytes | None:
    with database.transaction() as cur:
        cur.execute("SELECT address FROM client_miniapp_escrow WHERE chain_id = ?", (chain_id,))
        row = cur.fetchone()
    return None if row is None else bytes(row[0])


def set_escrow_address(database: db.UserDB, chain_id: int, address: bytes) -> None:
    if len(address) != 20:
        raise UsageError("an escrow contract address is 20 bytes (0x and 40 hex digits)")
    with database.transaction() as cur:
        cur.execute(
            "INSERT INTO client_miniapp_escrow (chain_id, address) VALUES (?, ?)"
            " ON CONFLICT (chain_id) DO UPDATE SET address = excluded.address",
            (chain_id, address),
        )


class MiniAppPay:
    def __init__(
        self, account: LocalAccount, payments: Payments, *, clock: Callable[[], float]
    ) -> None:
        self.account, self.payments, self.clock = account, payments, clock
        self.db = account.db
        self._signer: Signer | None = None
        self._lock = trio.Lock()  # one payment at a time: nonces come from one account

    def escrow(self) -> Escrow:
        config = PaymentStore(self.db).chain()  # WalletNotConfigured says how
        address = escrow_address(self.db, config.chain_id)
        if address is None:
            raise UsageError(
                f"payments unavailable: no escrow contract is configured for chain "
                f"{config.chain_id}: run `boxless wallet escrow 0x…`"
            )
        signer = self._signer
        if signer is None or (signer.rpc.url, signer.rpc.chain_id) != (
            config.rpc_url,
            config.chain_id,
        ):
            key = derive_private_key(self.account.keystore.load_wallet_seed())
            signer = self._signer = Signer(Rpc(config.rpc_url, config.chain_id), key)
        return Escrow(signer, address)

    def set_escrow(self, address: bytes) -> int:
        """Mini apps of this account pay into the escrow contract at ``address`` on the
        wallet's chain (WalletNotConfigured says how to set one up); the chain id."""
        chain_id = PaymentStore(self.db).chain().chain_id
        set_escrow_address(self.db, chain_id, address)
        return chain_id

    async def learn_seller(self, bot: bytes, *, wait_s: float = 0.0) -> bytes | None:
        """Ask the app's bot for its wallet address (sent when an app opens, and by a
        payment when it is still unknown); wait up to ``wait_s`` for the answer. None
        when there is no wallet chain, the bot is not a contact or did not answer."""
        known = self.payments.address_of(bot)
        if known is not None or self.payments.chain() is None:
            return known
        try:
            await self.payments.ask_address(bot)
        except BoxlessError as exc:
            logger.info("the app's bot was not asked for its wallet address: %s", exc)
            return None
        with trio.move_on_after(wait_s):
            while known is None:
                await trio.sleep(0.2)
                known = self.payments.address_of(bot)
        return known

    async def pay(self, bot: bytes, order: PayOrder) -> int:
        """Pay ``order`` into escrow for the app whose bot is ``bot``; the deal id."""
        escrow = self.escrow()  # "payments unavailable" first: no use asking the bot
        known = self.payments.address_of(bot)
        if known is None:  # not told yet: ask the bot now, wait a little for its answer
            known = await self.learn_seller(bot, wait_s=ASK_WAIT_S)
        if known is None:
            raise UsageError(
                "the app's bot has not told its wallet address (it must be a contact with a "
                "wallet on this chain): nothing was paid; open the app again in a moment"
            )
        if known != order.seller:
            raise UsageError(
                "the seller address is not the wallet of the app's bot: nothing was paid"
            )
        deadline = int(self.clock()) + DEADLINE_S
        async with self._lock:
            return await trio.to_thread.run_sync(
                lambda: escrow.pay(order.seller, order.amount, deadline, order.ref)
            )

    async def deal(self, bot: bytes, deal_id: int) -> Deal:
        """Deal ``deal_id`` as the chain has it, when this account paid it to the wallet
        of the app whose bot is ``bot`` (UsageError otherwise: an app sees and releases
        only its own shop's deals of this user)."""
        if not 0 <= deal_id < 2**256:
            raise UsageError("a deal id is a number")
        escrow = self.escrow()
        d = await trio.to_thread.run_sync(escrow.status, deal_id)
        if d.state == "none" or d.buyer != escrow.signer.address:
            raise UsageError(f"escrow deal {deal_id} is not a payment of yours")
        if d.seller != self.payments.address_of(bot):
            raise UsageError(f"escrow deal {deal_id} does not pay this app's bot")
        return d

    async def release(self, bot: bytes, deal_id: int) -> Deal:
        """Release deal ``deal_id`` (after Boxless's own confirm dialog): the seller is
        paid. Only an open deal of this account to the app's bot; the deal after."""
        d = await self.deal(bot, deal_id)
        if d.state != "open":
            raise UsageError(f"escrow deal {deal_id} is {d.state}: nothing to release")
        escrow = self.escrow()
        async with self._lock:
            await trio.to_thread.run_sync(escrow.release, deal_id)
        return await trio.to_thread.run_sync(escrow.status, deal_id)
