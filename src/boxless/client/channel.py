"""The direct channel: one way out (Olm → seal → Waku) and one receive pipeline.

Theory of operation
-------------------
Every feature of the client that talks to one person's device (conversations,
groups' key shares and ops, emoji verification, and every feature to come)
uses this channel and registers handlers for its own message kinds; the
channel knows none of them (Synapse's ``FederationHandlerRegistry``).

Sending: :meth:`DirectChannel.send_bundle` Olm-encrypts a plaintext for one
device bundle, seals it (sealed sender: only the recipient learns who wrote
it) and sends it as one Waku message stamped by the injected clock.
:meth:`send_card` and :meth:`send_contact` find the bundle first.

Receiving, for each Waku message of a content topic no feature claimed as its
own (:meth:`Handlers.on_topic`), in one database transaction:

1. dedup by Waku hash (processed before: nothing to do; one read per batch,
   the marks written once at its end, in the same transaction);
2. open the sealed envelope (who claims to write, from which device; a v2
   envelope opens only as the contact whose conversation topic it is on);
3. check the device: a blocked contact is dropped; a known contact writing
   from a device we don't know goes to :meth:`_adopt_device`, outside the
   transaction (their published bundle decides, then the message re-enters);
4. Olm-decrypt (a replay, a forgery, an unknown session: see below);
5. decode the chat envelope;
6. the message is authenticated now: mark it processed and advance the topic's
   sync point (never past ``now``) — step 6 is the only place either happens
   for an authenticated message; a message that failed 2–5 is marked
   processed without moving the sync point (a forged timestamp can't blind
   later catch-ups);
7. gate strangers (block list, proof of work) for handlers that ask for it;
8. dispatch to the handler registered for the body's kind.

Handlers run inside the transaction and return a follow-up (a coroutine
function run after commit: sends, subscriptions). An unknown session and a
message that passed the gate are announced to the hooks a feature registered
for them (the 1:1 feature re-keys, orders and acknowledges).

Per batch, not per message (a page of store history is one batch): the seen
marks are read once and written once, each topic's sync point and each Olm
session are written once, the device check of step 3 reads a sender's roster
once per (sender, device), and a feature that gathers over the batch writes at
its end (``Handlers.batch_end``: the 1:1 feature moves each contact's Lamport
clock once, to the highest it saw) or forgets on a rollback
(``Handlers.batch_discard``). Nothing gathered outlives the batch's transaction.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState, RequestGate
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.bundles import BundleBook
from boxless.client.transport import Incoming, Sent, Transport
from boxless.crypto.errors import DuplicateMessage, TamperedMessage, UnknownSession
from boxless.crypto.olm_sessions import NORMAL_MESSAGE, SessionManager
from boxless.crypto.pairwise import PairwiseSealer, is_pairwise
from boxless.crypto.sealed import OpenedEnvelope, SealingKeyPair, open_envelope, seal
from boxless.errors import DecodeError, UsageError
from boxless.identity.contact_code import (
    LINK_PREFIX,
    ContactCode,
    InvalidContactCode,
    decode_contact_code,
)
from boxless.identity.keys import DeviceBundle
from boxless.storage.userdb import UserDB
from boxless.waku.message import WakuMessage
from boxless.wire.links import encode_link

logger = logging.getLogger(__name__)

OWN_ECHOES = 4096  # hashes of our own recent messages, whose echoes are skipped
MAX_CLOCK_SKEW_NS = 300 * 10**9
"""How far past our own clock a message's timestamp may move a sync point."""

FollowUp = Callable[[], Awaitable[None]]
"""Work a handler asks for once its transaction committed (send, subscribe)."""
Emit = Callable[[ev.Event], None]


@dataclass(frozen=True, slots=True)
class Received:
    """One authenticated direct message: its sender's identity and device
    (proved by the Olm session), our contact row for them, and the message."""

    sender: bytes
    device_key: bytes
    contact: db.ContactRow | None
    message: env.ChatMessage
    item: Incoming


BodyHandler = Callable[[db.Cursor, Received], FollowUp | None]
"""Applies one message inside the receive transaction; may return a follow-up."""
TopicHandler = Callable[[Incoming], Awaitable[None]]
"""Takes every Waku message of the content topics it claims (a group's topic)."""
SenderHook = Callable[[db.Cursor, bytes, env.ChatMessage], None]
"""Told of every message that passed the gate, after its handler (to order and acknowledge it)."""
ResetHook = Callable[[bytes], Awaitable[None]]
"""Told that a contact's message fits no session of ours (to re-key), or that one
could not be read any more (to ask for a re-send)."""
BatchEnd = Callable[[db.Cursor], None]
"""Told just before a receive batch commits, in its transaction (a feature writes
what it gathered over the batch, once)."""
BatchDiscard = Callable[[], None]
"""Told that a receive batch rolled back (a feature forgets what it gathered)."""


class DeviceBook(Protocol):
    """A contact's other certified devices (client/devices.py): fan-out and reads."""

    def others(self, identity_key: bytes, known: bytes) -> list[DeviceBundle]: ...

    def watch(self, identity_key: bytes) -> None: ...

    def certified(self, cur: db.Cursor, identity_key: bytes, device_key: bytes) -> bool: ...

    def revoked(self, cur: db.Cursor, identity_key: bytes, device_key: bytes) -> bool: ...

    def copy_topic(self, plaintext: bytes, topic: str) -> str | None: ...

    def own_copy(self, cur: db.Cursor, topic: str, message: env.ChatMessage) -> None: ...

    async def learn(self, identity_key: bytes, device_key: bytes) -> bool: ...

    async def complete(self, identity_key: bytes, known: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class _Route:
    handler: BodyHandler
    gated: bool
    when: Callable[[object], bool] | None = None


class Handlers:
    """Which feature handles which body kind and which content topics."""

    def __init__(self) -> None:
        self._bodies: dict[type[object], _Route] = {}
        self._narrow: dict[type[object], list[_Route]] = {}  # routes for some bodies of a kind
        self._topics: list[tuple[Callable[[str], bool], TopicHandler]] = []
        self.accepted: list[SenderHook] = []
        self.unknown_session: list[ResetHook] = []
        self.missed: list[ResetHook] = []
        self.batch_end: list[BatchEnd] = []
        self.batch_discard: list[BatchDiscard] = []

    def on_body(
        self, kinds: Sequence[type[object]], handler: BodyHandler, *, gated: bool = True
    ) -> None:
        """Route messages whose body is one of ``kinds`` to ``handler``.

        ``gated``: a stranger's message passes the contact-request gate first
        (only a ``ContactRequest`` with a proof of work gets through); bodies
        whose own rules decide (a group's key share) register ungated.
        """
        for kind in kinds:
            if kind in self._bodies:
                raise UsageError(f"{kind.__name__} already has a handler")
            self._bodies[kind] = _Route(handler, gated)

    def on_body_when(
        self,
        kinds: Sequence[type[object]],
        when: Callable[[object], bool],
        handler: BodyHandler,
        *,
        gated: bool = True,
    ) -> None:
        """Route the bodies of ``kinds`` that ``when`` accepts to ``handler``, before
        the kind's own route (a group's note about a file: ungated, its own rules,
        while the kind's 1:1 messages stay gated)."""
        for kind in kinds:
            self._narrow.setdefault(kind, []).append(_Route(handler, gated, when))

    def on_topic(self, owns: Callable[[str], bool], handler: TopicHandler) -> None:
        """Give ``handler`` every message of the content topics ``owns`` claims."""
        self._topics.append((owns, handler))

    def route(self, body: object) -> _Route | None:
        for narrow in self._narrow.get(type(body), ()):
            if narrow.when is not None and narrow.when(body):
                return narrow
        return self._bodies.get(type(body))

    def topic_handler(self, content_topic: str) -> TopicHandler | None:
        for owns, handler in self._topics:
            if owns(content_topic):
                return handler
        return None


def card_to_code(card: bytes, now: float) -> ContactCode:
    """A contact card (``ContactCode.to_bytes()``) back to a verified code.

    Cards we hold may be older than their bundle's 30 days: they stay authentic,
    and the device's fallback key in them still opens sessions (see
    :mod:`boxless.client.bundles` for fresher keys).
    """
    return decode_contact_code(encode_link(LINK_PREFIX, card), now, allow_expired=True)


def senders_card(card: bytes, sender: bytes, device_key: bytes, now: float) -> ContactCode | None:
    """The card, if it is valid and names ``sender``'s identity and the very device
    the Olm session proved; None otherwise (a stranger's request must carry theirs)."""
    try:
        code = card_to_code(card, now)
    except InvalidContactCode:
        return None
    if code.identity_key != sender or code.bundle.certificate.device_curve25519 != device_key:
        return None
    return code


class DirectChannel:
    """Olm + sealed sender over the transport, with the one receive pipeline."""

    def __init__(
        self,
        *,
        database: UserDB,
        sessions: SessionManager,
        sealing: SealingKeyPair,
        me: bytes,
        my_device_key: bytes,
        transport: Transport,
        bundles: BundleBook,
        gate: RequestGate,
        emit: Emit,
        clock: Callable[[], float],
    ) -> None:
        self.sessions = sessions
        self.db = database
        self.sealing = sealing
        self.pairwise = PairwiseSealer(sealing)  # sealed envelope v2 (crypto/pairwise.py)
        self.me = me
        self.my_device_key = my_device_key
        self.transport = transport
        self.bundles = bundles
        self.gate = gate
        self.emit = emit
        self.clock = clock
        self.handlers = Handlers()
        self._sync_marks: dict[str, int] = {}  # topic -> sync point, within one batch
        self._seen: set[bytes] = set()  # processed hashes among the batch's, and its own
        self._seen_marks: list[tuple[bytes, int]] = []  # written once, at the batch's end
        self._own: set[bytes] = set()  # Waku hashes of what we sent lately
        self._own_order: deque[bytes] = deque()
        self.devices: DeviceBook | None = None  # linked devices, set by the Client
        # device checks (a roster read each) memoised for one batch, never across
        # transactions: (revoked?, sender, device) -> answer
        self._device_checks: dict[tuple[bool, bytes, bytes], bool] = {}

    # -- sending --------------------------------------------------------------------------

    async def send_bundle(
        self, bundle: DeviceBundle, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> bool:
        """Encrypt for a device bundle, seal, send; True if the network accepted it."""
        result = await self.push(self.seal(bundle, topic, plaintext, ephemeral))
        return result.accepted

    async def push(self, message: WakuMessage) -> Sent:
        """Send a sealed message; remember its hash, so its echo (the topic's filter
        sends us our own messages too) is not opened for nothing."""
        result = await self.transport.send(message)
        self._own.add(result.message_hash)
        self._own_order.append(result.message_hash)
        if len(self._own_order) > OWN_ECHOES:
            self._own.discard(self._own_order.popleft())
        return result

    def seal(
        self, bundle: DeviceBundle, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> WakuMessage:
        """The Waku message that carries ``plaintext`` to a device: Olm-encrypted (the
        ratchet step is saved in its own transaction, or the caller's), then sealed:
        v2 (pairwise) for a normal Olm message on a conversation topic where the
        device already wrote to us (so it knows ours), else v1."""
        with self.sessions.transaction() as cur:
            olm = self.sessions.encrypt(bundle, plaintext, cur=cur)
        if olm.type == NORMAL_MESSAGE and self.pairwise.confirmed(bundle.curve25519, topic):
            sealed = self.pairwise.seal(
                bundle.curve25519,
                bundle.sealing_key,
                topic,
                sender_identity_key=self.me,
                sender_device_key=self.my_device_key,
                ciphertext=olm,
            )
        else:
            sealed = seal(
                bundle.sealing_key,
                sender_identity_key=self.me,
                sender_device_key=self.my_device_key,
                ciphertext=olm,
            )
        return WakuMessage(
            payload=sealed,
            content_topic=topic,
            timestamp=int(self.clock() * 1e9),
            ephemeral=True if ephemeral else None,
        )

    async def send_card(
        self, card: bytes, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> bool:
        """Send to the device of a contact card (a contact's or a group member's)."""
        code = card_to_code(card, self.clock())
        bundle = self.bundles.fresher(code.bundle)
        ok = await self.send_bundle(bundle, topic, plaintext, ephemeral)
        await self.fan_out(
            bundle.identity_key, bundle.curve25519, topic, plaintext, ephemeral, watch=False
        )
        return ok

    async def send_contact(
        self, contact: db.ContactRow, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> bool:
        """Send to a contact's current device (its card's, or one it published since)
        and to each other device its identity certified (linked devices)."""
        bundle = self.contact_bundle(contact)
        ok = await self.send_bundle(bundle, topic, plaintext, ephemeral)
        await self.fan_out(bundle.identity_key, bundle.curve25519, topic, plaintext, ephemeral)
        return ok

    async def fan_out(
        self,
        identity_key: bytes,
        known: bytes | None,
        topic: str,
        plaintext: bytes,
        ephemeral: bool = False,
        *,
        watch: bool = True,
    ) -> None:
        """The same plaintext to the identity's active devices other than ``known``
        (default: the contact's), each its own Olm session (best effort: the known
        device's answer decides delivery; a re-send reaches them again). ``watch``:
        keep the identity's device list fresh (1:1 contacts; a group member's is
        read when one of its devices writes)."""
        if self.devices is None:
            return
        if watch:
            self.devices.watch(identity_key)
        if known is None:
            with self.db.transaction() as cur:
                contact = db.get_contact(cur, identity_key)
            known = contact.device_key if contact is not None else b""
        if identity_key != self.me:
            # a device certified before its bundle reached the store: read it now
            await self.devices.complete(identity_key, known)
        for other in self.devices.others(identity_key, known):
            await self.send_bundle(other, topic, plaintext, ephemeral)
        mine = self.devices.others(self.me, self.my_device_key) if not ephemeral else []
        copy_to = self.devices.copy_topic(plaintext, topic) if mine else None
        if copy_to is not None and identity_key != self.me:
            # a copy to our own other devices: what we sent, edited, deleted, read;
            # our group sessions' keys
            for device in mine:
                await self.send_bundle(device, copy_to, plaintext)

    def contact_bundle(self, contact: db.ContactRow) -> DeviceBundle:
        """The bundle of the device we know the contact by; UsageError if we lost it."""
        code = card_to_code(contact.bundle, self.clock())
        if code.bundle.curve25519 == contact.device_key:
            return self.bundles.fresher(code.bundle)
        stored = self.bundles.stored(contact.identity_key)
        if stored is None or stored.curve25519 != contact.device_key:
            raise UsageError(
                f"{contact.display_name}'s current device keys are missing; "
                "ask them for a fresh link and add it again"
            )
        return stored

    # -- receiving ------------------------------------------------------------------------

    async def receive(self, item: Incoming) -> None:
        """Run one Waku message through the pipeline (see the module docstring)."""
        await self.receive_batch([item])

    async def receive_batch(self, items: Sequence[Incoming]) -> None:
        """Run messages through the pipeline, in order, committing once.

        One transaction (a message that fails raises before it writes
        anything), and nothing awaits until the batch committed; then the
        follow-ups run, in order. A burst or a page of history costs one commit
        instead of one per message, and each Olm session's ratchet steps are
        written once per batch (``defer=True``, flushed before the commit).
        """
        follow_ups: list[FollowUp] = []
        self._sync_marks = {}
        self._device_checks = {}
        try:
            with self.db.transaction() as cur:
                mine: list[Incoming] = []
                for item in items:
                    if self.handlers.topic_handler(item.message.content_topic) is not None:
                        follow_ups.append(self._claimed_later(item))
                    else:
                        mine.append(item)
                # step 1 for the whole batch: one read, and one write at the end
                self._seen = db.seen_among(cur, [i.message_hash for i in mine if i.message_hash])
                for item in mine:
                    follow_up = self._process(cur, item)
                    if follow_up is not None:
                        follow_ups.append(follow_up)
                self._flush_seen(cur)
                for topic, last_ns in self._sync_marks.items():  # once per topic per batch
                    db.set_sync(cur, topic, last_ns)
                for end in self.handlers.batch_end:  # what features gathered (Lamport clocks)
                    end(cur)
                # the batch's ratchet steps (decrypted with defer=True), once per session
                self.sessions.flush(cur)
        except BaseException:
            self.sessions.discard()  # rolled back: the deferred steps never happened
            for discard in self.handlers.batch_discard:
                discard()
            raise
        finally:
            self._device_checks = {}
        for follow_up in follow_ups:
            await follow_up()

    def _claimed_later(self, item: Incoming) -> FollowUp:
        async def follow_up() -> None:
            claimed = self.handlers.topic_handler(item.message.content_topic)
            assert claimed is not None
            await claimed(item)

        return follow_up

    def _process(self, cur: db.Cursor, item: Incoming) -> FollowUp | None:
        """Steps 1–8 inside the batch's transaction (expected failures raise before
        anything is written); return the follow-up to run after commit."""
        if item.message_hash in self._own or item.message_hash in self._seen:
            return None  # processed before (or earlier in the batch), or our own echo
        try:
            opened, contact = self._open(cur, item)
        except (DecodeError, TamperedMessage) as exc:
            return self._drop(cur, item, type(exc).__name__)
        sender, device = opened.sender_identity_key, opened.sender_device_key
        if sender == self.me or self._device_check(cur, True, sender, device):
            return self._own_device(cur, item, opened)
        if contact is not None and contact.state == ContactState.BLOCKED.value:
            return self._drop(cur, item, "a blocked contact")
        if contact is not None and contact.device_key != device:
            if not self._device_check(cur, False, sender, device):
                return self._adopt_later(sender, device, item)
        try:
            plaintext = self.sessions.decrypt(device, opened.ciphertext, cur=cur, defer=True)
            msg = env.decode(plaintext)
        except DuplicateMessage:
            # A new Waku message whose Olm key is spent: a replay, or -- far more
            # often -- a message that arrived after more than vodozemac's 40
            # skipped keys of its chain: ask the sender to re-send now.
            self._drop(cur, item, None)
            return self._missed(sender) if contact is not None else None
        except (DecodeError, TamperedMessage) as exc:
            return self._drop(cur, item, type(exc).__name__)
        except UnknownSession:
            self._drop(cur, item, None)
            return self._unknown_session(sender) if contact is not None else None
        self._mark_authenticated(cur, item)
        if contact is not None and contact.conversation_topic == item.message.content_topic:
            self.pairwise.confirm(device, contact.conversation_topic)  # it may get v2 now
        return self._dispatch(cur, Received(sender, device, contact, msg, item))

    def _own_device(
        self, cur: db.Cursor, item: Incoming, opened: OpenedEnvelope
    ) -> FollowUp | None:
        """A copy from another device of ours (client/devices.py applies it), or a
        message from a device its identity revoked (dropped)."""
        sender, device = opened.sender_identity_key, opened.sender_device_key
        if sender != self.me or not self._device_check(cur, False, sender, device):
            return self._drop(cur, item, "a device that is not (or no longer) certified")
        assert self.devices is not None  # certified: there is a device book
        try:
            msg = env.decode(self.sessions.decrypt(device, opened.ciphertext, cur=cur))
        except (DuplicateMessage, DecodeError, TamperedMessage, UnknownSession):
            return self._drop(cur, item, "an unreadable copy from another device of ours")
        self._mark_authenticated(cur, item)
        route = self.handlers.route(msg.body)
        if route is not None and not route.gated:  # a group's key share: its own rules
            return route.handler(cur, Received(sender, device, None, msg, item))
        self.devices.own_copy(cur, item.message.content_topic, msg)
        return None

    def _device_check(self, cur: db.Cursor, revoked: bool, sender: bytes, device: bytes) -> bool:
        """Whether ``sender``'s roster revoked ``device`` (``revoked``) or lists it as
        active, read once per (sender, device) per batch: no roster is stored inside
        a receive batch (rosters come on bundle topics and lookups, after commit)."""
        key = (revoked, sender, device)
        answer = self._device_checks.get(key)
        if answer is None:
            if self.devices is None:
                answer = False
            elif revoked:
                answer = self.devices.revoked(cur, sender, device)
            else:
                answer = self.devices.certified(cur, sender, device)
            self._device_checks[key] = answer
        return answer

    def _open(self, cur: db.Cursor, item: Incoming) -> tuple[OpenedEnvelope, db.ContactRow | None]:
        """Step 2. A v1 envelope names its sender inside; a v2 (pairwise) one opens
        only with the key shared with the contact whose conversation topic it is on."""
        payload, topic = item.message.payload, item.message.content_topic
        if not is_pairwise(payload):
            opened = open_envelope(self.sealing, payload)
            return opened, db.get_contact(cur, opened.sender_identity_key)
        contact = db.contact_by_topic(cur, topic)
        if contact is None:
            raise TamperedMessage(
                "a pairwise envelope on a topic that is no contact's conversation"
            )
        sealing_key = self.pairwise.sealing_key_of(contact.device_key)
        if sealing_key is None:
            try:
                sealing_key = self.contact_bundle(contact).sealing_key
            except UsageError:
                raise TamperedMessage(
                    "a pairwise envelope from a device we hold no keys of"
                ) from None
        try:
            opened = self.pairwise.open(contact.device_key, sealing_key, topic, payload)
        except TamperedMessage:
            opened = self._open_linked(contact, topic, payload)
        if opened.sender_identity_key != contact.identity_key:
            raise TamperedMessage("a pairwise envelope names another sender than its contact")
        return opened, contact

    def _open_linked(self, contact: db.ContactRow, topic: str, payload: bytes) -> OpenedEnvelope:
        """A v2 envelope from one of the contact's other certified devices, or TamperedMessage."""
        others = (
            self.devices.others(contact.identity_key, contact.device_key) if self.devices else []
        )
        for other in others:
            try:
                return self.pairwise.open(other.curve25519, other.sealing_key, topic, payload)
            except TamperedMessage:
                continue
        raise TamperedMessage("a pairwise envelope that opens for none of the contact's devices")

    def _dispatch(self, cur: db.Cursor, received: Received) -> FollowUp | None:
        body = received.message.body
        route = self.handlers.route(body)
        if route is None:
            logger.info("a message of a kind no feature handles: %s", type(body).__name__)
            return None
        if route.gated and not self._admitted(received):
            return None
        follow_up = route.handler(cur, received)
        if route.gated:
            for hook in self.handlers.accepted:
                hook(cur, received.sender, received.message)
        return follow_up

    def _admitted(self, received: Received) -> bool:
        contact = received.contact
        state = ContactState(contact.state) if contact else ContactState.NONE
        body = received.message.body

        def sender_proved() -> bool:
            # a known contact's device matched in step 3; a stranger's card must be theirs
            if contact is not None:
                return True
            return isinstance(body, env.ContactRequest) and (
                senders_card(body.sender_card, received.sender, received.device_key, self.clock())
                is not None
            )

        decision = self.gate.commit(
            received.sender,
            body,
            state=state,
            now_ms=int(self.clock() * 1000),
            verify_sender=sender_proved,
        )
        if not decision.accept:
            logger.info("dropped a message: %s", decision.reason.value)
        return decision.accept

    def _drop(self, cur: db.Cursor, item: Incoming, why: str | None) -> FollowUp | None:
        """Processed, without moving the sync point: its sender is not authenticated.
        Returns no follow-up (so the pipeline can ``return self._drop(...)``)."""
        if why is not None:
            logger.info("dropped a direct message: %s", why)
        self._mark_seen(item, self.clock())
        return None

    def _mark_seen(self, item: Incoming, now: float) -> None:
        """Processed: written with the batch's other marks by :meth:`_flush_seen`,
        in the same transaction (so it commits together with what it applied)."""
        self._seen.add(item.message_hash)
        self._seen_marks.append((item.message_hash, int(now * 1000)))

    def _flush_seen(self, cur: db.Cursor) -> None:
        if self._seen_marks:
            db.mark_seen_many(cur, self._seen_marks)
        self._seen_marks = []

    def _mark_authenticated(self, cur: db.Cursor, item: Incoming) -> None:
        now = self.clock()
        self._mark_seen(item, now)
        ts = sync_point(item, now)
        topic = item.message.content_topic
        if ts is not None and ts > self._sync_marks.get(topic, 0):
            self._sync_marks[topic] = ts

    def mark_processed(self, item: Incoming) -> None:
        """A message a follow-up decided to drop (its own transaction)."""
        with self.db.transaction() as cur:
            self._seen_marks = []
            self._drop(cur, item, None)
            self._flush_seen(cur)

    def _missed(self, sender: bytes) -> FollowUp:
        async def follow_up() -> None:
            for hook in self.handlers.missed:
                await hook(sender)

        return follow_up

    def _unknown_session(self, sender: bytes) -> FollowUp:
        async def follow_up() -> None:
            for hook in self.handlers.unknown_session:
                await hook(sender)

        return follow_up

    def _adopt_later(self, sender: bytes, device: bytes, item: Incoming) -> FollowUp:
        async def follow_up() -> None:
            await self._adopt_device(sender, device, item)

        return follow_up

    async def _adopt_device(self, sender: bytes, device_key: bytes, item: Incoming) -> None:
        """A known contact writes from a device we don't know: one its roster lists
        (a linked device) is read as the contact's; else adopt it if the contact's
        newest published bundle certifies it, then process the message."""
        if self.devices is not None and await self.devices.learn(sender, device_key):
            await self.receive(item)
            return
        fresh = await self.bundles.refresh(sender, device_key)
        if fresh is None or fresh.curve25519 != device_key:
            logger.warning("a message claims a known contact from an unpublished device; dropped")
            self.mark_processed(item)
            return
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, sender)
            if contact is None:
                return
            if contact.device_key != device_key:
                contact = replace(contact, device_key=device_key)
                db.put_contact(cur, contact)
        logger.info("a contact moved to a new device (certified by their identity)")
        if contact.verified_key is not None:
            self.emit(ev.VerificationBroken(sender.hex()))
        self.emit(ev.ContactChanged(sender.hex(), contact.state))
        await self.receive(item)


def sync_point(item: Incoming, now: float) -> int | None:
    """Where an authenticated message moves its topic's catch-up point: its
    timestamp, never more than :data:`MAX_CLOCK_SKEW_NS` past ``now`` (a sender
    picks it)."""
    ts = item.message.timestamp
    return min(ts, int(now * 1e9) + MAX_CLOCK_SKEW_NS) if ts else None
