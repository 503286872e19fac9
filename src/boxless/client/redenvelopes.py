"""Red envelopes in chat: send, receive, open, relay, auto-refund, "who opened which".

Theory of operation
-------------------
Sending (:meth:`RedEnvelopes.send`): the wallet deposits the total in the
``RedEnvelope`` contract (deployed once per chain by the first sender and
remembered; any genuine deployment — same runtime code as the shipped one — is
accepted from others), then the card with the envelope secret goes into the
chat as a :class:`~boxless.chat.redenvelope.RedEnvelopeCard` (1:1 over Olm,
groups over Megolm: only members get the secret).

Receiving a card (1:1: contacts only, the gated handler; groups: members only,
checked by the group) stores it once per envelope; a card whose chat is not
the chat it arrived in keeps a reason and can never be opened.

Opening (:meth:`open`): :func:`~.redenvelopes_core.may_claim` over what the
chain says now (and our membership now), then the "opened" notice naming our
address goes into the chat. The sender's client (the only holder of the key
that signs claims) signs one ticket per member whose notice reached it — the
member's nullifier makes the chain pay each member once — and relays the claim
(the relay fee the sender chose, default 0, comes out of the share): a member
needs no ETH, and cannot choose the block the claim lands in, whose prevrandao
draws a lucky share. Members see who opened which. Amounts are only ever read
from the chain's ``Claimed`` logs.

The watcher (:meth:`run`, one task) wakes every :data:`POLL_S` seconds or on a
card or notice; in a worker thread it reads each open envelope's claims, relays
notices for the envelopes we sent, refunds ours after expiry (anyone may; the
sender's client does it by itself), and marks envelopes done. Each change is one
:class:`~boxless.client.events.RedEnvelopeChanged` event.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import trio

from boxless.chat import envelope as env
from boxless.chat.redenvelope import RedEnvelopeCard, RedEnvelopeOpened
from boxless.client import events as ev
from boxless.client import redenvelope_store as rs
from boxless.client import store as db
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversations import Conversations, incoming_row
from boxless.client.groups import GroupManager
from boxless.client.redenvelopes_chain import (
    Claim,
    PreparedClaims,
    RedEnvelopeContract,
    due_refunds,
)
from boxless.client.redenvelopes_core import (
    ALLOWED,
    DEFAULT_EXPIRY_S,
    ETH_TOKEN,
    BadCard,
    Card,
    card_mismatch,
    decode_card,
    may_claim,
    may_ticket,
    opened_signer,
    sign_opened,
)
from boxless.client.redenvelopes_view import envelope_json, preview
from boxless.errors import BoxlessError, UsageError
from boxless.identity.account import LocalAccount
from boxless.payments.errors import BadRpcResponse
from boxless.payments.evmcall import ContractReverted, Signer, artifact
from boxless.payments.hdwallet import address_bytes, derive_private_key
from boxless.payments.rpc import Rpc, quantity
from boxless.payments.store import PaymentStore

__all__ = ["POLL_S", "RedEnvelopes"]

logger = logging.getLogger(__name__)

POLL_S = 2.0
OPEN_PER_TICK = 50
CLAIMS_KEPT = 500  # envelopes whose claims stay in memory
MAX_GREETING = 200


class NotGenuineContract(UsageError):
    """A card names an address on our chain whose code is not the shipped contract."""


def _contact_of(chat: str) -> bytes | None:
    return bytes.fromhex(chat[8:]) if chat.startswith("contact:") else None


def _group_of(chat: str) -> bytes | None:
    return bytes.fromhex(chat[6:]) if chat.startswith("group:") else None


class RedEnvelopes:
    """The red-envelope feature of a client; see the module docstring."""

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
        self.chain_settings = PaymentStore(self.db)
        self._wake = trio.Event()
        self._signer: Signer | None = None
        self._genuine: set[bytes] = set()  # contracts whose code we checked
        self._claims: dict[bytes, list[Claim]] = {}  # envelope id -> chain's claims
        self._chain_now = 0  # the latest block's time we saw (expiry is the chain's)
        self._prepared = PreparedClaims()  # claims we relay, signed as their notice came
        self._key: bytes | None = None  # our wallet key: it signs our envelopes' tickets
        channel.handlers.on_body((RedEnvelopeCard, RedEnvelopeOpened), self._on_body)
        groups.on_content((RedEnvelopeCard, RedEnvelopeOpened), self._on_group)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- chain access (blocking: call from a worker thread) ------------------------------------

    def signer(self) -> Signer:
        config = self.chain_settings.chain()  # WalletNotConfigured: a clear error
        if self._signer is None or (self._signer.rpc.url, self._signer.rpc.chain_id) != (
            config.rpc_url,
            config.chain_id,
        ):
            self._signer = Signer(Rpc(config.rpc_url, config.chain_id), self.wallet_key())
        return self._signer

    def wallet_key(self) -> bytes:
        if self._key is None:
            self._key = derive_private_key(self.account.keystore.load_wallet_seed())
        return self._key

    def _chain_time(self, signer: Signer) -> int:
        block = signer.rpc.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, dict):
            raise BadRpcResponse("the node's latest block is not an object")
        self._chain_now = quantity(block.get("timestamp"), "block time")
        return self._chain_now

    def address(self) -> bytes:
        return address_bytes(self.wallet_key())

    def currency_of(self, symbol: str) -> tuple[bytes, int]:
        """(token address, decimals) of "ETH" or the wallet's configured token symbol."""
        if symbol.upper() == "ETH":
            return ETH_TOKEN, 18
        config = self.chain_settings.chain()
        if config.token and config.token_symbol and config.token_decimals is not None:
            if symbol.upper() == config.token_symbol.upper():
                return bytes.fromhex(config.token[2:]), config.token_decimals
            raise UsageError(f"an envelope is in ETH or {config.token_symbol}, not {symbol}")
        raise UsageError(
            f"an envelope is in ETH (the wallet has no token configured), not {symbol}"
        )

    def contract_for_sending(self) -> RedEnvelopeContract:
        """Our chain's envelope contract; deployed (once, by us) if we know none, or if
        the one we know runs other code than the shipped contract (an older version
        after an upgrade, or a chain reset: its envelopes stay on it)."""
        signer = self.signer()
        with self.db.transaction() as cur:
            known = rs.contract(cur, signer.rpc.chain_id)
        if known is not None:
            try:
                return self.contract_at(known)
            except UsageError:
                logger.info("the known red-envelope contract is not the shipped one: deploying")
        contract = RedEnvelopeContract.deploy(signer, self.wallet_key())
        with self.db.transaction() as cur:
            rs.set_contract(cur, signer.rpc.chain_id, contract.address)
        self._genuine.add(contract.address)
        return contract

    def use_contract(self, address: bytes) -> None:
        """Send envelopes through the genuine contract at ``address`` (e.g. the demo's)."""
        self.contract_at(address)
        with self.db.transaction() as cur:
            rs.set_contract(cur, self.signer().rpc.chain_id, address)

    def contract_at(self, address: bytes) -> RedEnvelopeContract:
        """The contract a card names, if its code is the genuine runtime code."""
        signer = self.signer()
        if address not in self._genuine:
            code = signer.code(address)
            if code != artifact("RedEnvelope", runtime=True):
                why = (
                    "this red envelope names a contract that is not the Boxless red-envelope "
                    "contract; it cannot be opened safely"
                )  # no code at all may be a node that lags: tried again later
                raise NotGenuineContract(why) if code else UsageError(why)
            self._genuine.add(address)
        return RedEnvelopeContract(signer, address, self.wallet_key())

    def create(
        self,
        chat: str,
        total: int,
        shares: int,
        lucky: bool,
        greeting: str,
        expiry_s: int,
        token: bytes = ETH_TOKEN,
    ) -> Card:
        """Deposit the envelope on chain (blocking; a token envelope approves first);
        the card to post. ``total`` is in wei or the token's base units."""
        if len(greeting) > MAX_GREETING:
            raise UsageError(f"a greeting has at most {MAX_GREETING} characters")
        if not 1 <= shares <= 1000 or total < shares:
            raise UsageError("1 to 1000 shares, and at least one wei per share")
        if not 60 <= expiry_s <= 30 * 86400:
            raise UsageError("an envelope expires after 1 minute to 30 days")
        contract = self.contract_for_sending()
        secret = secrets.token_bytes(32)
        expiry = self._chain_time(contract.signer) + expiry_s  # the contract's clock
        contract.create(secret, total, shares, lucky, expiry, token=token)
        signer = contract.signer
        return Card(signer.rpc.chain_id, contract.address, signer.address, secret, chat, total,
                    shares, lucky, expiry, greeting, token)  # fmt: skip

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        chat: str,
        total: int,
        shares: int,
        lucky: bool,
        greeting: str = "",
        expiry_s: int = DEFAULT_EXPIRY_S,
        token: bytes = ETH_TOKEN,
    ) -> str:
        """Deposit and post a red envelope in ``chat``; its message id. Cancellation
        after the deposit leaves the money refundable after expiry (never lost)."""
        self._check_chat(chat)
        card = await trio.to_thread.run_sync(
            self.create, chat, total, shares, lucky, greeting, expiry_s, token
        )
        body = RedEnvelopeCard(card.encode())
        message_id = await self._post(chat, body, _preview(card))
        with self.db.transaction() as cur:
            rs.add(cur, rs.EnvelopeRow(card.id, chat, message_id, self.me, True, card.encode(),
                                       "open", None, "", self._now_ms()))  # fmt: skip
        self.channel.emit(ev.RedEnvelopeChanged(chat, message_id, "open"))
        self._wake.set()
        return message_id

    def _check_chat(self, chat: str) -> None:
        contact = _contact_of(chat)
        if contact is not None:
            self.conversations.accepted(contact)
            return
        gid = _group_of(chat)
        if gid is None:
            raise UsageError("a chat is contact:<key> or group:<id>")
        if not self._member(gid):
            raise UsageError("you are not a member of this group")

    def _as_sender_names(self, chat: str) -> str:
        """The chat as the card's sender names it: a group is the same for everyone;
        a 1:1 chat is ``contact:<recipient>``, so a card we receive there must name us."""
        return chat if chat.startswith("group:") else f"contact:{self.me.hex()}"

    def _members_now(self, chat: str) -> frozenset[bytes]:
        gid = _group_of(chat)
        if gid is None:
            return frozenset()
        with self.db.transaction() as cur:
            try:
                return frozenset(self.groups.core.member_log(cur, gid).state.members)
            except BoxlessError:
                return frozenset()

    def _member(self, gid: bytes) -> bool:
        with self.db.transaction() as cur:
            try:
                return self.me in self.groups.core.member_log(cur, gid).state.members
            except BoxlessError:
                return False

    async def _post(self, chat: str, body: RedEnvelopeCard | RedEnvelopeOpened, text: str) -> str:
        contact = _contact_of(chat)
        if contact is not None:
            row = self.conversations.accepted(contact)
            with self.db.transaction() as cur:
                mid = self.conversations.queue_shown(cur, row, body, text)
            self.channel.emit(ev.MessageChanged(mid.hex(), contact.hex()))
            return mid.hex()
        gid = _group_of(chat)
        assert gid is not None
        sent = await self.groups.send_content(gid, body, text)  # type: ignore[arg-type]
        return sent.message_id

    # -- receiving ----------------------------------------------------------------------------

    def _on_body(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        chat = f"contact:{r.sender.hex()}"
        mid = r.message.message_id
        text = self._receive(cur, chat, mid.hex(), r.sender, body)
        if db.add_message(cur, incoming_row(r, text, self._now_ms())):
            self.channel.emit(ev.MessageChanged(mid.hex(), r.sender.hex()))
        return None

    def _on_group(
        self, cur: db.Cursor, group_id: bytes, sender: bytes, message_id: str, msg: env.ChatMessage
    ) -> str:
        return self._receive(cur, f"group:{group_id.hex()}", message_id, sender, msg.body)

    def _receive(self, cur: db.Cursor, chat: str, message_id: str, sender: bytes, body: Any) -> str:
        if isinstance(body, RedEnvelopeOpened):
            row = rs.get(cur, body.envelope_id)
            if row is None or row.chat != chat:
                return "🧧 opened a red envelope"
            if opened_signer(body.signature, body.envelope_id, sender) != body.recipient:
                logger.info("an opened notice from %s with a bad signature", sender.hex()[:8])
                return "🧧 opened a red envelope"
            if rs.add_opened(cur, body.envelope_id, sender, body.recipient):
                if row.outgoing:  # we relay it: sign the ticket now, not in the relay
                    opened = [(sender, body.recipient)]
                    self._prepared.prepare(decode_card(row.card), self.wallet_key(), opened)
                self.channel.emit(ev.RedEnvelopeChanged(chat, row.message_id, row.state))
                self._wake.set()
            return "🧧 opened a red envelope"
        assert isinstance(body, RedEnvelopeCard)
        try:
            card = decode_card(body.card)
        except BadCard as exc:
            logger.info("red envelope card from %s refused: %s", sender.hex()[:8], exc)
            return "🧧 a red envelope that could not be read"
        reason = (
            ""
            if card.chat == self._as_sender_names(chat)
            else "this envelope was made for another chat"
        )
        if rs.add(cur, rs.EnvelopeRow(card.id, chat, message_id, sender, sender == self.me,
                                      body.card, "open", None, reason, self._now_ms())):  # fmt: skip
            self.channel.emit(ev.RedEnvelopeChanged(chat, message_id, "open"))
            self._wake.set()
        return _preview(card)

    # -- opening ------------------------------------------------------------------------------

    def try_claim(self, envelope_id: bytes) -> tuple[str, bytes]:
        """Blocking: may we claim it now? (chat, our address) or a UsageError saying why."""
        with self.db.transaction() as cur:
            row = rs.get(cur, envelope_id)
        if row is None:
            raise UsageError("no such red envelope in your chats")
        if row.reason:
            raise UsageError(row.reason)
        card = decode_card(row.card)
        gid = _group_of(row.chat)
        member = self._member(gid) if gid is not None else True
        contract = self.contract_at(card.contract)
        signer = contract.signer
        me = signer.address
        view = contract.view(card.id, me)
        chain_now = self._chain_time(signer)
        reason = may_claim(card, arrived_in=self._as_sender_names(row.chat), member=member, chain_id=signer.rpc.chain_id,
                           contract=contract.address, view=view, now_s=chain_now)  # fmt: skip
        if reason != ALLOWED:
            raise UsageError(reason)
        with self.db.transaction() as cur:
            mine = [a for m, a, _ in rs.opened(cur, envelope_id) if m == self.me]
        if mine:
            raise UsageError("you already opened this envelope")
        return row.chat, me

    async def open(self, envelope_id: bytes) -> dict[str, Any]:
        """Open an envelope in one of our chats: the "opened" notice goes out and the
        sender's client claims our share for us (``{relayed: true}``); the amount comes
        with a ``redenvelope`` event once the chain has it."""
        chat, me = await trio.to_thread.run_sync(self.try_claim, envelope_id)
        proof = sign_opened(self.wallet_key(), envelope_id, self.me)
        notice = RedEnvelopeOpened(envelope_id, me, proof)
        await self._post(chat, notice, "🧧 opened a red envelope")
        with self.db.transaction() as cur:
            rs.add_opened(cur, envelope_id, self.me, me)
            row = rs.get(cur, envelope_id)
        assert row is not None
        self.channel.emit(ev.RedEnvelopeChanged(chat, row.message_id, row.state))
        self._wake.set()
        return {"relayed": True}

    # -- the watcher --------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch open envelopes until cancelled (a tick's worker thread is waited for:
        its chain calls are bounded by the RPC timeout)."""
        while True:
            with trio.move_on_after(POLL_S):
                await self._wake.wait()
            self._wake = trio.Event()
            if self._idle():
                continue
            changes = await trio.to_thread.run_sync(self.check_once, self._now_ms())
            for chat, message_id, state in changes:
                self.channel.emit(ev.RedEnvelopeChanged(chat, message_id, state))

    def _idle(self) -> bool:
        try:
            self.chain_settings.chain()
        except UsageError:
            return True
        with self.db.transaction() as cur:
            return not rs.open_envelopes(cur, 1)

    def check_once(self, now_ms: int) -> list[tuple[str, str, str]]:
        """One look at the chain for every open envelope (blocking; ``now_ms`` stamps rows)."""
        with self.db.transaction() as cur:
            rows = rs.open_envelopes(cur, OPEN_PER_TICK)
            finished = [
                r for r in rs.recent(cur, OPEN_PER_TICK) if r.envelope_id not in self._claims
            ]
        for row in finished:  # after a restart: who opened which, once
            try:
                card = decode_card(row.card)
                self._remember(row.envelope_id, self.contract_at(card.contract).claims(card.id))
            except BoxlessError as exc:
                logger.info("red envelope %s: %s", row.envelope_id.hex()[:8], exc)
        changes = []
        for row in rows:
            try:
                change = self._check(row, now_ms)
            except BoxlessError as exc:  # node down or lying: try again after the others
                logger.info("red envelope %s: %s", row.envelope_id.hex()[:8], exc)
                with self.db.transaction() as cur:
                    rs.touch(cur, row.envelope_id, now_ms)
                continue
            if change is not None:
                changes.append(change)
        return changes

    def _check(self, row: rs.EnvelopeRow, now_ms: int) -> tuple[str, str, str] | None:
        card = decode_card(row.card)
        if row.reason:
            with self.db.transaction() as cur:
                rs.update(cur, row.envelope_id, now_ms, state="done")
            return row.chat, row.message_id, "done"
        if card.chain_id != self.signer().rpc.chain_id:  # not our wallet's chain: not now
            with self.db.transaction() as cur:
                rs.touch(cur, row.envelope_id, now_ms)
            return None
        try:
            contract = self.contract_at(card.contract)
        except NotGenuineContract as exc:  # a peer's card naming some other contract
            if row.outgoing:  # ours, on the contract this client shipped before an upgrade
                return self._refund_previous(row, card, now_ms)
            return self._refuse(row, str(exc), now_ms)
        if not row.outgoing:
            found = contract.envelope(row.envelope_id)
            mismatch = card_mismatch(card, found.as_view()) if found.exists else ""
            if mismatch:  # the card lies about what the chain holds
                return self._refuse(row, mismatch, now_ms)
        before = self._claims.get(row.envelope_id)
        state = row.state
        me = contract.signer.address
        if row.outgoing:
            with self.db.transaction() as cur:
                opened = rs.opened(cur, row.envelope_id)
            members = self._members_now(row.chat)
            opened = [o for o in opened if may_ticket(row.chat, o[0], self.me, members)]
            self._relay(contract, card, contract.claims(row.envelope_id), opened)
            envelope = contract.envelope(row.envelope_id)
            if due_refunds([envelope], self._chain_time(contract.signer)):
                contract.refund(row.envelope_id)  # the sender's client refunds by itself
        envelope = contract.envelope(row.envelope_id)
        claims = contract.claims(row.envelope_id)  # after our relays and refund
        self._remember(row.envelope_id, claims)
        mine = next((c.amount for c in claims if c.recipient == me), None)
        if envelope.refunded or envelope.claimed >= envelope.shares:
            state = "done"
        with self.db.transaction() as cur:
            rs.update(cur, row.envelope_id, now_ms, state=state, my_amount=mine)
        if state != row.state or before != claims or (mine is not None and mine != row.my_amount):
            return row.chat, row.message_id, state
        return None

    def _refund_previous(
        self, row: rs.EnvelopeRow, card: Card, now_ms: int
    ) -> tuple[str, str, str] | None:
        """Our envelope on a previous version of the contract (it was the shipped code
        when we sent it; its members can no longer open it here): after expiry, send
        what is left back to us (``refund(bytes32)`` is in every version), then done."""
        signer = self.signer()
        if self._chain_time(signer) < card.expiry:
            with self.db.transaction() as cur:
                rs.touch(cur, row.envelope_id, now_ms)
            return None
        try:
            RedEnvelopeContract(signer, card.contract).refund(card.id)
        except ContractReverted as exc:  # refunded already (by anyone), or nothing left
            logger.info("red envelope %s: %s", row.envelope_id.hex()[:8], exc)
        why = "made on a previous red-envelope contract: what was left went back to you"
        return self._refuse(row, why, now_ms)

    def _refuse(self, row: rs.EnvelopeRow, reason: str, now_ms: int) -> tuple[str, str, str]:
        """Never openable, and never looked at again (a finished row the cap may drop)."""
        logger.info("red envelope %s refused: %s", row.envelope_id.hex()[:8], reason)
        with self.db.transaction() as cur:
            rs.update(cur, row.envelope_id, now_ms, state="done", reason=reason)
        return row.chat, row.message_id, "done"

    def _remember(self, envelope_id: bytes, claims: list[Claim]) -> None:
        """Keep the chain's claims of at most CLAIMS_KEPT envelopes (the newest looked at)."""
        self._claims.pop(envelope_id, None)
        self._claims[envelope_id] = claims
        while len(self._claims) > CLAIMS_KEPT:
            del self._claims[next(iter(self._claims))]

    def _relay(
        self,
        contract: RedEnvelopeContract,
        card: Card,
        claims: list[Claim],
        opened: list[tuple[bytes, bytes, bool]],
    ) -> None:
        claimed = {c.recipient for c in claims}
        todo = [(m, addr) for m, addr, relayed in opened if not relayed and addr not in claimed]
        if not todo:
            return
        hashes, refused = contract.relay_claims(card, todo, self._prepared)
        with self.db.transaction() as cur:
            for _, addr in todo:
                rs.mark_relayed(cur, card.id, addr)
        if refused:
            logger.info("relayed claims refused: %s", ", ".join(sorted(set(refused))))
        if hashes:
            contract.signer.wait(hashes)

    # -- reading ------------------------------------------------------------------------------

    def envelopes(self, chat: str) -> list[dict[str, Any]]:
        """The chat's envelopes for the UI, newest first: the card (no secret), our
        share, who opened which (chain amounts, matched to members' notices), best luck."""
        with self.db.transaction() as cur:
            rows = rs.of_chat(cur, chat)
            opened = {r.envelope_id: rs.opened(cur, r.envelope_id) for r in rows}
        try:
            config = self.chain_settings.chain()
            known = (config.token, config.token_symbol, config.token_decimals)
        except UsageError:
            known = (None, None, None)
        return [
            envelope_json(
                r,
                opened[r.envelope_id],
                self._claims.get(r.envelope_id, []),
                self._chain_now,
                known,
            )
            for r in rows
        ]


def _preview(card: Card) -> str:
    return preview(card)
