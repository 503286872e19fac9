"""Payments in chat: transfer cards, money requests, bill splits, and the chain watcher.

Theory of operation
-------------------
Sending a transfer is two steps, like the wallet's: :meth:`Payments.quote`
(amount, fee cap, total for the user to confirm) then :meth:`Payments.transfer`,
which re-quotes, refuses if the fee cap rose above the confirmed one, signs,
stores and broadcasts (:class:`~boxless.payments.wallet.Wallet`), and only then
queues the :class:`~boxless.chat.payment.TransferCard` to the chat (1:1 through
the conversations' outbox, groups as group content). A contact's address comes
from a :class:`~boxless.chat.payment.WalletAddress` they sent: asking for it
sends ours with ``want_reply`` and their client answers at once.

Receiving (1:1: a gated handler, contacts only; groups: members only, checked
by the group) stores the card in the receive transaction. An incoming transfer
starts ``pending`` and is ``received`` only when :func:`~boxless.payments.transfer.verify`
says the chain agrees; a card for another chain or another recipient than our
wallet, or naming a transaction an earlier card already named (a replay), is
``forged`` at once and never re-checked.

The watcher (:meth:`run`, one task) wakes every :data:`POLL_S` seconds or when a
card arrives. With open work it refreshes our transactions (re-broadcasting the
ones the node lost: after a restart this is the first thing ``boxless up`` does)
and re-verifies pending cards, in a worker thread (JSON-RPC blocks). Each
status change is one :class:`~boxless.client.events.PaymentChanged` event. An
unreachable or lying node leaves cards pending and is tried again next tick.

A request's state is derived, never stored as "paid": it is paid (by a member,
in a split) when a transfer card naming it is ``received`` or, for our own
payments, ``confirmed``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from boxless.chat import envelope as env
from boxless.chat.payment import (
    PayRequest,
    TransferAck,
    TransferCard,
    WalletAddress,
    split_bill,
)
from boxless.client import events as ev
from boxless.client import payment_card_store as cs
from boxless.client import store as db
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversations import Conversations, incoming_row
from boxless.client.groups import GroupManager
from boxless.errors import BoxlessError, UsageError
from boxless.identity.account import LocalAccount
from boxless.payments.amounts import Asset, format_amount
from boxless.payments.hdwallet import address_bytes, checksum_address, derive_private_key
from boxless.payments.store import ChainConfig, PaymentStore
from boxless.payments.tracker import CONFIRMED, FAILED, INCLUDED, PENDING, REPLACED
from boxless.payments.transfer import (
    FORGED,
    RECEIVED,
    TransferClaim,
    fetch_facts,
    verify,
)
from boxless.payments.wallet import Quote, Wallet
from boxless.wire import payment_pb2

__all__ = ["POLL_S", "FeesRose", "Payments", "card_json"]

logger = logging.getLogger(__name__)

POLL_S = 2.0
IDLE_S = 30.0  # no chain set up: look again this often (setting one up is rare)
OPEN_CARDS = 100  # re-verified per tick; the rest wait for the next

_TX_TO_CARD = {PENDING: "pending", INCLUDED: "pending", CONFIRMED: "confirmed",
               FAILED: "failed", REPLACED: "failed"}  # fmt: skip


class FeesRose(UsageError):
    """The fee cap is above the one the user confirmed: nothing was sent."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a payment from a chat goes: an address, and the request it pays."""

    address: bytes
    request_id: bytes | None
    amount: int | None  # a request fixes the amount
    asset: Asset | None  # ... and the asset


def _contact_of(chat: str) -> bytes | None:
    if chat.startswith("contact:"):
        return bytes.fromhex(chat[8:])
    return None


def _group_of(chat: str) -> bytes | None:
    if chat.startswith("group:"):
        return bytes.fromhex(chat[6:])
    return None


def _body_bytes(body: TransferCard | PayRequest) -> bytes:
    from boxless.chat.payment import body_to_proto

    return body_to_proto(body).SerializeToString()


def _parse_body(raw: bytes) -> TransferCard | PayRequest:
    from boxless.chat.payment import decode_body

    pb = payment_pb2.PaymentBody()
    pb.ParseFromString(raw)
    body = decode_body(pb)
    assert isinstance(body, TransferCard | PayRequest)
    return body


def preview(body: TransferCard | PayRequest, asset_name: Callable[[bytes | None], Asset]) -> str:
    """What the chat list and search show for a payment card."""
    if isinstance(body, TransferCard):
        asset = asset_name(body.claim.token)
        text = f"💸 Transfer {format_amount(body.claim.amount, asset.decimals)} {asset.symbol}"
        note = body.claim.note
    else:
        amount = format_amount(body.amount, body.decimals)
        if body.shares:
            text = f"🧾 Split {amount} {body.symbol} among {len(body.shares)}"
        else:
            text = f"🧾 Request {amount} {body.symbol}"
        note = body.note
    return f"{text} · {note}" if note else text


class Payments:
    """The payments feature of a client; see the module docstring."""

    def __init__(
        self,
        account: LocalAccount,
        channel: DirectChannel,
        conversations: Conversations,
        groups: GroupManager,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.channel = channel
        self.db = channel.db
        self.conversations = conversations
        self.groups = groups
        self.clock = clock
        self.me = account.identity.public_key
        self.store = PaymentStore(self.db)
        self._wake = trio.Event()
        self._wallet: Wallet | None = None
        self._lock = threading.Lock()  # the wallet's RPC client is used by one thread at a time
        channel.handlers.on_body(
            (TransferCard, PayRequest, WalletAddress, TransferAck), self._on_body
        )
        groups.on_content((TransferCard, PayRequest), self._on_group)

    # -- the wallet ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _key(self) -> bytes:
        return derive_private_key(self.account.keystore.load_wallet_seed())

    def address(self) -> bytes:
        return address_bytes(self._key())

    def chain(self) -> ChainConfig | None:
        try:
            return self.store.chain()
        except UsageError:
            return None

    def wallet(self) -> Wallet:
        """The wallet on the configured chain (WalletNotConfigured without one); kept
        open while the chain settings stay the same. Blocking calls: use a thread."""
        config = self.store.chain()
        if self._wallet is None or self._wallet.config != config:
            if self._wallet is not None:
                self._wallet.close()
            self._wallet = Wallet(self.store, config, self._key())
        return self._wallet

    def _asset_of(self, token: bytes | None) -> Asset:
        config = self.chain()
        if token is None:
            return Asset("ETH", 18, None)
        if config is not None and config.token and bytes.fromhex(config.token[2:]) == token:
            return Asset(config.token_symbol or "TOKEN", config.token_decimals or 0, config.token)
        return Asset("TOKEN", 0, checksum_address(token))

    def asset(self, symbol: str) -> Asset:
        assets = self.wallet().assets()
        found = assets.get(symbol.upper())
        if found is None:
            raise UsageError(f"this wallet knows {', '.join(assets)}; not {symbol}")
        return found

    # -- addresses ----------------------------------------------------------------------------

    def address_of(self, contact: bytes) -> bytes | None:
        """The wallet address the contact told us, if on our chain."""
        config = self.chain()
        with self.db.transaction() as cur:
            found = cs.get_peer_address(cur, contact)
        if found is None or config is None or found[0] != config.chain_id:
            return None
        return found[1]

    async def ask_address(self, contact: bytes) -> None:
        """Send the contact our address and ask for theirs (they answer at once)."""
        config = self.store.chain()
        body = WalletAddress(config.chain_id, self.address(), want_reply=True)
        await self.conversations.send_body(contact, body)

    # -- sending ------------------------------------------------------------------------------

    def target(self, chat: str, request: str | None = None) -> Target:
        """Where a payment from ``chat`` goes (a request's address, or the contact's)."""
        if request is not None:
            with self.db.transaction() as cur:
                row = cs.card(cur, request)
            if row is None or row.chat != chat or row.kind != "request" or row.outgoing:
                raise UsageError("no such request in this chat")
            body = _parse_body(row.body)
            assert isinstance(body, PayRequest)
            owed = body.share_of(self.me)
            if owed is None:
                raise UsageError("this bill has no share for you")
            config = self.store.chain()
            if body.chain_id != config.chain_id:
                raise UsageError(
                    f"the request is for chain {body.chain_id}; your wallet is on chain "
                    f"{config.chain_id}: nothing was sent"
                )
            asset = self._asset_of(body.token)
            if body.token is not None and asset.symbol == "TOKEN":
                raise UsageError("the request asks for a token your wallet does not know")
            return Target(body.to, body.request_id, owed, asset)
        contact = _contact_of(chat)
        if contact is None:
            raise UsageError("in a group, pay a member's request; transfers go to one contact")
        self.conversations.accepted(contact)
        address = self.address_of(contact)
        if address is None:
            raise UsageError(
                "this contact's wallet address is not known yet: it was asked for; "
                "try again in a moment (their client must be online)"
            )
        return Target(address, None, None, None)

    def quote(self, target: Target, amount: int, asset: Asset) -> Quote:
        """Build (blocking) what the user confirms."""
        if target.amount is not None:
            amount, asset = target.amount, target.asset or asset
        with self._lock:
            return self.wallet().quote(target.address, amount, asset)

    def send_quoted(
        self,
        target: Target,
        amount: int,
        asset: Asset,
        max_fee_cap: int,
        note: str,
        now_ms: int,
    ) -> tuple[Quote, TransferCard]:
        """Re-quote, check the fee cap, sign, store and broadcast (blocking); the card."""
        with self._lock:  # one wallet, one RPC connection: the watcher waits
            wallet = self.wallet()
            if target.amount is not None:
                amount, asset = target.amount, target.asset or asset
            q = wallet.quote(target.address, amount, asset)
            if q.fee_cap > max_fee_cap:
                raise FeesRose(
                    f"the fee cap is now {q.fee_cap} wei, above the {max_fee_cap} you "
                    "confirmed; nothing was sent. Quote again"
                )
            record = wallet.send(q, now_ms, note)
        token = None if q.asset.token is None else bytes.fromhex(q.asset.token[2:])
        claim = TransferClaim(
            wallet.config.chain_id, record.hash, wallet.address, q.recipient, token, q.amount,
            note,
        )  # fmt: skip
        return q, TransferCard(claim, target.request_id)

    async def post(self, chat: str, body: TransferCard | PayRequest) -> str:
        """Put a card in ``chat`` (ours: outgoing); its message id."""
        text = preview(body, self._asset_of)
        tx = body.claim.tx_hash if isinstance(body, TransferCard) else None
        kind = "transfer" if isinstance(body, TransferCard) else "request"
        status = "pending" if isinstance(body, TransferCard) else "open"
        contact = _contact_of(chat)
        if contact is not None:
            row = self.conversations.accepted(contact)
            with self.db.transaction() as cur:
                message_id = self.conversations.queue_shown(cur, row, body, text).hex()
                cs.add_card(cur, self._card(message_id, chat, kind, True, body, tx, status))
            self.channel.emit(ev.MessageChanged(message_id, contact.hex()))
        else:
            gid = _group_of(chat)
            if gid is None:
                raise UsageError("a chat is contact:<key> or group:<id>")
            sent = await self.groups.send_content(gid, body, text)
            message_id = sent.message_id
            with self.db.transaction() as cur:
                cs.add_card(cur, self._card(message_id, chat, kind, True, body, tx, status))
        self.channel.emit(ev.PaymentChanged(chat, message_id, status))
        self._wake.set()
        return message_id

    def _card(
        self,
        message_id: str,
        chat: str,
        kind: str,
        outgoing: bool,
        body: TransferCard | PayRequest,
        tx: bytes | None,
        status: str,
        author: bytes | None = None,
        reason: str = "",
    ) -> cs.CardRow:
        now = self._now_ms()
        request_id = body.request_id
        return cs.CardRow(message_id, chat, kind, outgoing, author or self.me, _body_bytes(body),
                          tx, request_id, status, reason, now, now)  # fmt: skip

    async def request(self, chat: str, amount: int, asset: Asset, note: str = "") -> str:
        """Ask the contact (1:1) for ``amount``, or split a bill of ``amount`` among
        every member of the group (integer shares: :func:`split_bill`)."""
        config = self.store.chain()
        token = None if asset.token is None else bytes.fromhex(asset.token[2:])
        shares: tuple[Any, ...] = ()
        gid = _group_of(chat)
        if gid is not None:
            with self.db.transaction() as cur:
                members = list(self.groups.core.member_log(cur, gid).state.members)
            if self.me not in members:
                raise UsageError("you are not a member of this group")
            if len(members) < 2:
                raise UsageError("a bill needs at least one other member")
            shares = split_bill(amount, members)
        body = PayRequest(os.urandom(16), config.chain_id, self.address(), token, asset.symbol,
                          asset.decimals, amount, note, shares)  # fmt: skip
        return await self.post(chat, body)

    # -- receiving (inside the receive transaction) ---------------------------------------------

    def _on_body(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        if isinstance(body, WalletAddress):
            return self._on_address(cur, r.sender, body)
        if isinstance(body, TransferAck):
            self._on_ack(cur, r.sender, body)
            return None
        assert isinstance(body, TransferCard | PayRequest)
        chat = f"contact:{r.sender.hex()}"
        mid = r.message.message_id
        if not db.add_message(cur, incoming_row(r, preview(body, self._asset_of), self._now_ms())):
            return None
        self._store_incoming(cur, chat, mid.hex(), r.sender, body, mine_only=True)
        self.channel.emit(ev.MessageChanged(mid.hex(), r.sender.hex()))
        return None

    def _on_group(
        self, cur: db.Cursor, group_id: bytes, sender: bytes, message_id: str, msg: env.ChatMessage
    ) -> str:
        body = msg.body
        assert isinstance(body, TransferCard | PayRequest)
        chat = f"group:{group_id.hex()}"
        if cs.card(cur, message_id) is None:
            self._store_incoming(cur, chat, message_id, sender, body, mine_only=False)
        return preview(body, self._asset_of)

    def _store_incoming(
        self,
        cur: db.Cursor,
        chat: str,
        message_id: str,
        sender: bytes,
        body: TransferCard | PayRequest,
        *,
        mine_only: bool,
    ) -> None:
        if isinstance(body, PayRequest):
            cs.add_card(cur, self._card(message_id, chat, "request", False, body, None, "open",
                                        sender))  # fmt: skip
        else:
            status, reason = self._first_look(cur, body, mine_only)
            cs.add_card(cur, self._card(message_id, chat, "transfer", False, body,
                                        body.claim.tx_hash, status, sender, reason))  # fmt: skip
            self._wake.set()
        self.channel.emit(
            ev.PaymentChanged(chat, message_id, "open" if isinstance(body, PayRequest) else status)
        )

    def _first_look(self, cur: db.Cursor, body: TransferCard, mine_only: bool) -> tuple[str, str]:
        """What a transfer card is before the chain is asked: forged if it cannot be true
        here, else pending."""
        claim = body.claim
        config = self.chain()
        if cs.tx_seen(cur, claim.tx_hash):
            return FORGED, "an earlier card already named this transaction (a replay)"
        if config is not None and claim.chain_id != config.chain_id:
            return (
                FORGED,
                f"the card is for chain {claim.chain_id}, your wallet's is {config.chain_id}",
            )
        if mine_only:
            try:
                mine = self.address()
            except BoxlessError:
                mine = None
            if mine is not None and claim.recipient != mine:
                return FORGED, "the card pays another address than your wallet's"
        return "pending", ""

    def _on_ack(self, cur: db.Cursor, sender: bytes, body: TransferAck) -> None:
        """The recipient says the chain confirmed our transfer to them. Only a card we
        sent to *them* in *their* chat is touched, and it says "received" only once
        our own chain check says "confirmed" too."""
        chat = f"contact:{sender.hex()}"
        message_id = cs.ack_transfer(cur, chat, body.tx_hash)
        if message_id is None:
            return
        row = cs.card(cur, message_id)
        if row is not None and row.status == "confirmed":
            if cs.set_status(
                cur, message_id, RECEIVED, "the recipient confirmed it", self._now_ms()
            ):
                self.channel.emit(ev.PaymentChanged(chat, message_id, RECEIVED))

    def _on_address(self, cur: db.Cursor, sender: bytes, body: WalletAddress) -> FollowUp | None:
        cs.put_peer_address(cur, sender, body.chain_id, body.address, self._now_ms())
        self.channel.emit(ev.PaymentChanged(f"contact:{sender.hex()}", "", "address"))
        if not body.want_reply:
            return None
        config = self.chain()
        if config is None:
            return None  # no wallet set up: nothing to answer with

        async def answer() -> None:
            try:
                mine = WalletAddress(config.chain_id, self.address())
                await self.conversations.send_body(sender, mine)
            except BoxlessError as exc:
                logger.info("wallet address not sent: %s", exc)

        return answer

    # -- reading ------------------------------------------------------------------------------

    def cards(self, chat: str) -> list[dict[str, Any]]:
        """The chat's payment cards as the API shows them (newest first)."""
        with self.db.transaction() as cur:
            rows = cs.cards_of_chat(cur, chat)
            paid = {
                r.message_id: cs.cards_paying(cur, r.request_id)
                for r in rows
                if r.kind == "request" and r.request_id is not None
            }
        return [card_json(r, _parse_body(r.body), paid.get(r.message_id, []), self.me,
                          self._asset_of) for r in rows]  # fmt: skip

    def card_states(self) -> list[tuple[str, str, str]]:
        """Every card's (message id, status, reason): for diagnostics and tests."""
        with self.db.transaction() as cur:
            cur.execute("SELECT message_id, status, reason FROM payment_card")
            return [tuple(r) for r in cur.fetchall()]

    # -- the watcher --------------------------------------------------------------------------

    async def run(self) -> None:
        """Refresh our transactions and verify pending cards until cancelled."""
        while True:
            config = self.chain()
            with trio.move_on_after(POLL_S if config is not None else IDLE_S):
                await self._wake.wait()
            self._wake = trio.Event()
            config = self.chain()
            if config is None or not self._open_work(config.chain_id):
                continue
            try:
                changes = await trio.to_thread.run_sync(self.check_once, self._now_ms())
            except BoxlessError as exc:
                logger.info("payments: chain check failed: %s", exc)
                continue
            for chat, message_id, status in changes:
                self.channel.emit(ev.PaymentChanged(chat, message_id, status))
                if status == RECEIVED:
                    await self._acknowledge(chat, message_id)

    async def _acknowledge(self, chat: str, message_id: str) -> None:
        """Tell a contact who paid us that the chain confirmed it (1:1 only)."""
        contact = _contact_of(chat)
        with self.db.transaction() as cur:
            row = cs.card(cur, message_id)
        if contact is None or row is None or row.outgoing or row.tx_hash is None:
            return
        try:
            await self.conversations.send_body(contact, TransferAck(row.tx_hash))
        except BoxlessError as exc:
            logger.info("transfer acknowledgement not sent: %s", exc)

    def _open_work(self, chain_id: int) -> bool:
        """Whether a transaction of ours or a transfer card still waits for the chain."""
        if self.store.open_txs(chain_id):
            return True
        with self.db.transaction() as cur:
            return bool(cs.open_cards(cur, 1))

    def check_once(self, now_ms: int) -> list[tuple[str, str, str]]:
        """One pass (blocking): refresh (and re-broadcast) our transactions, then re-verify
        pending cards. Returns the cards that changed: (chat, message id, status)."""
        with self._lock:
            return self._check(now_ms)

    def _check(self, now_ms: int) -> list[tuple[str, str, str]]:
        wallet = self.wallet()
        if self.store.open_txs(wallet.config.chain_id):
            wallet.refresh(now_ms)
        with self.db.transaction() as cur:
            open_cards = cs.open_cards(cur, OPEN_CARDS)
        changed = []
        for row in open_cards:
            status, reason = self._verdict(wallet, row)
            with self.db.transaction() as cur:
                if row.outgoing and status == "confirmed" and cs.acked(cur, row.message_id):
                    status, reason = RECEIVED, "the recipient confirmed it"
                if cs.set_status(cur, row.message_id, status, reason, now_ms):
                    changed.append((row.chat, row.message_id, status))
        return changed

    def _verdict(self, wallet: Wallet, row: cs.CardRow) -> tuple[str, str]:
        body = _parse_body(row.body)
        assert isinstance(body, TransferCard) and row.tx_hash is not None
        if row.outgoing:
            state = self._tx_state(row.tx_hash)
            return _TX_TO_CARD.get(state, "pending"), state
        facts = fetch_facts(wallet.rpc, row.tx_hash)
        verdict = verify(body.claim, facts, wallet.config.confirmations)
        return verdict.status, verdict.reason

    def _tx_state(self, tx_hash: bytes) -> str:
        with self.db.transaction() as cur:
            cur.execute("SELECT state FROM payment_tx WHERE hash = ?", (tx_hash,))
            found = cur.fetchone()
        return PENDING if found is None else str(found[0])

    def close(self) -> None:
        if self._wallet is not None:
            self._wallet.close()
            self._wallet = None


def _pays(
    payment: cs.CardRow, request: PayRequest, asset_of: Callable[[bytes | None], Asset]
) -> bool:
    """Whether a transfer card settles its author's part of ``request``: confirmed by
    the chain, to the request's address, in its asset, for exactly what they owe."""
    if payment.status not in (RECEIVED, "confirmed"):
        return False
    body = _parse_body(payment.body)
    if not isinstance(body, TransferCard):
        return False
    c = body.claim
    owed = request.share_of(payment.author)
    return c.recipient == request.to and c.token == request.token and c.amount == owed


def card_json(
    row: cs.CardRow,
    body: TransferCard | PayRequest,
    payments: list[cs.CardRow],
    me: bytes,
    asset_of: Callable[[bytes | None], Asset],
) -> dict[str, Any]:
    """One card for the API and the web UI (amounts: decimal strings of base units)."""
    out: dict[str, Any] = {
        "message_id": row.message_id,
        "chat": row.chat,
        "kind": row.kind,
        "outgoing": row.outgoing,
        "author": row.author.hex(),
        "status": row.status,
        "reason": row.reason,
        "created_ms": row.created_ms,
    }
    if isinstance(body, TransferCard):
        c = body.claim
        asset = asset_of(c.token)
        out.update(
            tx="0x" + c.tx_hash.hex(),
            chain_id=c.chain_id,
            to=checksum_address(c.recipient),
            sender_address=checksum_address(c.sender),
            amount=str(c.amount),
            symbol=asset.symbol,
            display=f"{format_amount(c.amount, asset.decimals)} {asset.symbol}",
            note=c.note,
            request=None if body.request_id is None else body.request_id.hex(),
        )
        return out
    paid_by = sorted({p.author.hex() for p in payments if _pays(p, body, asset_of)})
    owing = [s.member.hex() for s in body.shares if s.member != row.author]
    mine = body.share_of(me)
    out.update(
        request=body.request_id.hex(),
        chain_id=body.chain_id,
        to=checksum_address(body.to),
        amount=str(body.amount),
        symbol=body.symbol,
        decimals=body.decimals,
        display=f"{format_amount(body.amount, body.decimals)} {body.symbol}",
        note=body.note,
        shares=[
            {
                "member": s.member.hex(),
                "amount": str(s.amount),
                "display": f"{format_amount(s.amount, body.decimals)} {body.symbol}",
                "paid": s.member.hex() in paid_by,
            }
            for s in body.shares
        ],  # fmt: skip
        my_share=None if mine is None else str(mine),
        my_share_display=None
        if mine is None
        else f"{format_amount(mine, body.decimals)} {body.symbol}",
        paid_by=paid_by,
        paid=bool(paid_by) if not body.shares else all(m in paid_by for m in owing),
        paid_by_me=me.hex() in paid_by,
    )
    return out
