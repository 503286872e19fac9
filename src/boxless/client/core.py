"""One user's messenger: contacts, 1:1 conversations, delivery states.

Theory of operation
-------------------
Composition: the user's :class:`LocalAccount` (identity, device, encrypted
database), an Olm :class:`SessionManager`, the chat cores (envelope, outbox,
contact-request gate, Lamport ordering) and a :class:`Transport` (a light node
by default). Nothing here parses bytes by hand or runs a ratchet: it decides.

Sending: a message is encoded once (:mod:`boxless.chat.envelope`), stored, and
put in the outbox. The sender task hands out what is due: each attempt
Olm-encrypts the same plaintext for the contact's device, seals it (sealed
sender: only the recipient learns who wrote it) and sends it as a Waku message
on the conversation topic. ``queued → sent`` when a relay accepted it,
``→ delivered`` on the recipient's receipt, ``→ read`` on their read receipt.
Undelivered messages are re-sent with backoff, across restarts (the outbox is
in the database).

Receiving: every Waku message on our topics (the contact-request partition of
our key, and each contact's conversation topic), live or from store history,
goes through one pipeline in one database transaction: dedup by Waku hash →
open the sealed envelope → check the sender's device belongs to the claimed
identity → Olm-decrypt → decode → gate (block list, proof of work for
strangers) → apply → mark processed. A DELIVERED receipt goes back for every
reliable message, duplicates included (the sender may have missed the first).

Contact requests: adding a link stores the contact and queues a
``ContactRequest`` (with our contact card, a proof of work and a fresh
conversation secret) on the recipient's partition topic. Crossed requests
(both added each other) accept each other; the conversation secret of the
request from the smaller identity key wins, so both sides derive one topic.

Events (for the CLI, the API and the UI) are plain dicts on bounded channels.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import trio

from boxless._trio_compat import TaskStatus
from boxless.chat import envelope as env
from boxless.chat.ordering import LamportClock
from boxless.chat.outbox import DeliveryState, Outbox, StateChange
from boxless.chat.pow import DEFAULT_DIFFICULTY, solve
from boxless.chat.requests import ContactEvent, ContactState, RequestGate, next_contact_state
from boxless.chat.topics import contact_topic, conversation_topic
from boxless.client import store as db
from boxless.client.broadcast import BroadcastManager
from boxless.client.bundles import BundleBook
from boxless.client.groups import GroupManager
from boxless.client.transport import Incoming, Transport
from boxless.client.verification import SasManager
from boxless.crypto.errors import DuplicateMessage, TamperedMessage, UnknownSession
from boxless.crypto.olm_sessions import SessionManager
from boxless.crypto.olm_sessions import migration_files as crypto_migrations
from boxless.crypto.sealed import SealingKeyPair, open_envelope, seal
from boxless.errors import BoxlessError, DecodeError, NetworkError, UsageError
from boxless.fanout import Fanout
from boxless.identity.account import LocalAccount
from boxless.identity.contact_code import (
    LINK_PREFIX,
    ContactCode,
    InvalidContactCode,
    decode_contact_code,
)
from boxless.identity.keys import DeviceBundle
from boxless.identity.profile import InvalidProfile, save_profile, validate_display_name
from boxless.waku.message import WakuMessage
from boxless.wire.links import encode_link

logger = logging.getLogger(__name__)

CATCH_UP_MARGIN_NS = 120 * 10**9
FIRST_SYNC_WINDOW_NS = 7 * 86_400 * 10**9
RESET_INTERVAL_S = 60.0
RECEIPT_BATCH_S = 0.01


class UnknownContact(UsageError):
    """No contact matches what the user typed."""


class InvalidAvatar(InvalidProfile):
    """A picture that is not one we share: not PNG/JPEG/WebP, or too large."""


def avatar_mime(data: bytes) -> str:
    """The MIME type of a profile picture from its magic bytes; raise InvalidAvatar.

    Pictures travel in one :class:`~boxless.chat.envelope.ProfileUpdate`, so at
    most ``MAX_AVATAR_BYTES`` (48 KiB). Only the header is checked: the web UI
    shows the picture in an ``<img>``, whose decoder is the browser's.
    """
    if not data:
        raise InvalidAvatar("the picture is empty: choose an image file")
    if len(data) > env.MAX_AVATAR_BYTES:
        raise InvalidAvatar(
            f"the picture is {len(data) // 1024} KiB; the limit is "
            f"{env.MAX_AVATAR_BYTES // 1024} KiB: scale it down (256x256 px as JPEG fits)"
        )
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise InvalidAvatar("the picture must be a PNG, JPEG or WebP image: save it as one")


def card_to_code(card: bytes, now: float) -> ContactCode:
    """A contact card (``ContactCode.to_bytes()``) back to a verified code.

    Cards we hold may be older than their bundle's 30 days: they stay authentic,
    and the device's fallback key in them still opens sessions (see
    :mod:`boxless.client.bundles` for fresher keys).
    """
    return decode_contact_code(encode_link(LINK_PREFIX, card), now, allow_expired=True)


class Client:
    """The user's messenger core. Run it with ``await nursery.start(client.run)``."""

    def __init__(
        self,
        account: LocalAccount,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.time,
        pow_difficulty: int | None = None,
    ) -> None:
        self.account = account
        self.transport = transport
        self.clock = clock
        self.db = account.db
        self.db.migrate("crypto", crypto_migrations())
        self.db.migrate("client", db.client_migrations())
        self.sessions = SessionManager(
            self.db, account.keystore, self.db.derive_key("olm sessions v1")
        )
        self.sealing = SealingKeyPair.from_private_bytes(account.device.sealing_private_key())
        self.me = account.identity.public_key
        self.my_device_key = account.device.certificate.device_curve25519
        self.pow_difficulty = pow_difficulty if pow_difficulty is not None else DEFAULT_DIFFICULTY
        self.gate = RequestGate(self.me, difficulty=self.pow_difficulty)
        with self.db.transaction() as cur:
            self.outbox = Outbox.from_rows(db.load_outbox_rows(cur), now=clock())
        self._events: Fanout[dict[str, Any]] = Fanout(logger, "client event")
        self._wake = trio.Event()
        self._receipts: dict[bytes, list[bytes]] = {}
        self._receipts_ready = trio.Event()
        self._last_reset: dict[bytes, float] = {}
        self.ready = trio.Event()
        self.groups = GroupManager(
            account,
            transport,
            transmit=self._transmit_card,
            transmit_bundle=self._transmit_bundle,
            emit=self._emit,
            card_to_code=card_to_code,
            clock=clock,
        )
        self.bundles = BundleBook(self.db, account, transport, clock)
        self.broadcasts = BroadcastManager(
            self.db, send_text=self.send_text, emit=self._emit, clock=clock
        )
        self.sas = SasManager(
            account,
            send=self._send_body,
            accepted=self._accepted,
            confirm_verified=self.confirm_verified,
            emit=self._emit,
            card_to_code=card_to_code,
            stored_bundle=self.bundles.stored,
            clock=clock,
        )

    # -- lifecycle ------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[Client] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, catch up from store history, then serve until cancelled."""
        await self.transport.subscribe(self._topics())
        async with self.transport.incoming() as incoming, trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop, incoming)
            nursery.start_soon(self._send_loop)
            nursery.start_soon(self._receipt_loop)
            nursery.start_soon(self.groups.run)
            nursery.start_soon(self.bundles.run)
            nursery.start_soon(self.sas.run)
            task_status.started(self)
            await self.catch_up()
            self.ready.set()
            self._emit({"type": "ready"})

    def _topics(self) -> list[str]:
        with self.db.transaction() as cur:
            contacts = db.list_contacts(cur)
        topics = [contact_topic(self.me)]
        topics += [c.conversation_topic for c in contacts if c.state != ContactState.BLOCKED.value]
        return topics + self.groups.topics()

    async def catch_up(self) -> int:
        """Fetch what arrived while we were offline, from store nodes; return how many."""
        now_ns = int(self.clock() * 1e9)
        total = 0
        for topic in self._topics():
            with self.db.transaction() as cur:
                last = db.get_sync(cur, topic)
            since = (last - CATCH_UP_MARGIN_NS) if last else now_ns - FIRST_SYNC_WINDOW_NS
            try:
                async for item in self.transport.history([topic], since):
                    await self._handle(item)
                    total += 1
            except NetworkError as exc:
                logger.info("catch-up on a topic failed: %s", exc)
                self._emit({"type": "connectivity", "ok": False, "detail": str(exc)})
        return total

    # -- events -----------------------------------------------------------------------

    @asynccontextmanager
    async def events(
        self, buffer: int = 1024
    ) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        """Every client event while the context is open (dicts: ``{"type": ...}``)."""
        async with self._events.listen(buffer) as recv:
            yield recv

    def _emit(self, event: dict[str, Any]) -> None:
        self._events.publish(event)

    # -- contacts ---------------------------------------------------------------------

    def contacts(self) -> list[db.ContactRow]:
        with self.db.transaction() as cur:
            return db.list_contacts(cur)

    def find_contact(self, who: str) -> db.ContactRow:
        """A contact by display name (case-insensitive) or identity-key hex prefix."""
        contacts = self.contacts()
        exact = [c for c in contacts if c.display_name.lower() == who.lower()]
        by_key = [
            c for c in contacts if len(who) >= 4 and c.identity_key.hex().startswith(who.lower())
        ]
        found = exact or by_key
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnknownContact(f"no contact called {who!r}: see `boxless contacts`")
        raise UnknownContact(f"{who!r} matches {len(found)} contacts: use a key prefix")

    async def add_contact(self, link: str, intro: str = "") -> db.ContactRow:
        """Add a contact from their ``boxless://`` link and send them a request.

        Raises :class:`InvalidContactCode` for a bad link. The request is queued
        (and sent when the network allows); its proof of work takes ~1 s.
        """
        now = self.clock()
        code = decode_contact_code(link, now, allow_expired=True)
        if code.identity_key == self.me:
            raise UsageError("that is your own contact link")
        device_key = code.bundle.curve25519
        if now >= code.bundle.expires_at:
            # An old link: its identity and name still hold; the device's keys come
            # from the bundle it has published since, if a store has one.
            fresh = await self.bundles.refresh(code.identity_key)
            if fresh is None or now >= fresh.expires_at:
                raise InvalidContactCode(
                    "the contact link has expired and no newer keys of that person were "
                    "found on the network; ask your contact for a fresh link or QR code"
                )
            device_key = fresh.curve25519
        with self.db.transaction() as cur:
            existing = db.get_contact(cur, code.identity_key)
        state = ContactState(existing.state) if existing else ContactState.NONE
        new_state = next_contact_state(state, ContactEvent.SEND_REQUEST)
        secret = secrets.token_bytes(32)
        topic = existing.conversation_topic if existing else conversation_topic(secret)
        verified = existing.verified_key if existing else None
        if verified is not None and verified != device_key:
            logger.warning("a verified contact's keys changed: verification is broken")
            self._emit({"type": "verification_broken", "contact": code.identity_key.hex()})
        row = db.ContactRow(
            identity_key=code.identity_key,
            display_name=code.display_name,
            bundle=code.to_bytes(),
            device_key=device_key,
            state=new_state.value,
            intro="",
            conversation_topic=topic,
            verified_key=verified,
            lamport=existing.lamport if existing else 0,
            added_at_ms=int(now * 1000),
            updated_at_ms=int(now * 1000),
        )
        with self.db.transaction() as cur:
            db.put_contact(cur, row)
        await self.transport.subscribe([topic])
        if new_state is ContactState.ACCEPTED and state is ContactState.REQUEST_RECEIVED:
            await self._queue(row, env.ContactResponse(env.Decision.ACCEPT))
            await self._send_avatar_to_new_contact(code.identity_key)
        else:
            proof = await self._solve_pow(code.identity_key)
            card = self.account.contact_code(now).to_bytes()
            body = env.ContactRequest(intro, proof, card, secret)
            await self._queue(row, body, content_topic=contact_topic(code.identity_key))
        self._emit(
            {"type": "contact", "contact": code.identity_key.hex(), "state": new_state.value}
        )
        return row

    async def set_display_name(self, name: str) -> None:
        """Change our name and tell every accepted contact (only them: profiles
        are for contacts)."""
        name = validate_display_name(name)
        profile = replace(self.account.profile, display_name=name, updated_at=int(self.clock()))
        save_profile(self.db, profile)
        self.account.profile = profile
        await self._send_profile()
        self._emit({"type": "profile", "name": name})

    async def set_avatar(self, image: bytes) -> None:
        """Change our picture (``b""`` removes it) and tell every accepted contact.

        Raises :class:`InvalidAvatar` unless ``image`` is a PNG or JPEG of at most
        48 KiB (the web UI scales pictures down to a 256 px JPEG before upload).
        """
        if image and avatar_mime(image) == "image/webp":
            # our own profile is checked by Pillow (identity.profile): PNG and JPEG only
            raise InvalidAvatar("your picture must be a PNG or JPEG image: save it as one")
        profile = replace(
            self.account.profile,
            avatar=image or None,
            avatar_type=None,
            updated_at=int(self.clock()),
        )
        save_profile(self.db, profile)
        self.account.profile = profile
        await self._send_profile()
        self._emit({"type": "profile", "name": profile.display_name})

    def _shared_avatar(self) -> bytes:
        """Our picture as contacts get it (b"": none, or one too big to send)."""
        avatar = self.account.profile.avatar or b""
        if avatar:
            try:
                avatar_mime(avatar)
            except InvalidAvatar as exc:  # set by `boxless init --avatar`, whose limit is larger
                logger.warning("your picture is not sent to contacts: %s", exc)
                return b""
        return avatar

    async def _send_profile(self, contact: db.ContactRow | None = None) -> None:
        """Queue our name and picture for ``contact``, or for every accepted contact."""
        body = env.ProfileUpdate(self.account.profile.display_name, self._shared_avatar())
        targets = [contact] if contact is not None else self.contacts()
        for c in targets:
            if c.state == ContactState.ACCEPTED.value:
                await self._queue(c, body)

    async def _send_avatar_to_new_contact(self, identity_key: bytes) -> None:
        """A contact just accepted: their copy of our card has our name but no picture."""
        if not self._shared_avatar():
            return
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, identity_key)
        if contact is not None:
            await self._send_profile(contact)

    def confirm_verified(self, identity_key: bytes) -> db.ContactRow:
        """The user compared safety numbers and they match: remember this device."""
        with self.db.transaction() as cur:
            c = db.get_contact(cur, identity_key)
            if c is None:
                raise UnknownContact("no such contact")
            c = replace(c, verified_key=c.device_key, updated_at_ms=int(self.clock() * 1000))
            db.put_contact(cur, c)
        self._emit({"type": "contact", "contact": identity_key.hex(), "state": c.state})
        return c

    async def _solve_pow(self, recipient: bytes) -> Any:
        ts = int(self.clock() * 1000)
        proof = await trio.to_thread.run_sync(
            lambda: solve(recipient, self.me, ts, difficulty=self.pow_difficulty),
            abandon_on_cancel=True,  # type: ignore[call-arg]  # trio-stubs predate it
        )
        if proof is None:
            raise UsageError("could not solve the contact request's proof of work")
        return proof

    async def respond(self, identity_key: bytes, event: ContactEvent) -> db.ContactRow:
        """Accept, decline, block or unblock a contact (a local action)."""
        with self.db.transaction() as cur:
            c = db.get_contact(cur, identity_key)
            if c is None:
                raise UnknownContact("no such contact")
            new = next_contact_state(ContactState(c.state), event)
            c = replace(c, state=new.value, updated_at_ms=int(self.clock() * 1000))
            db.put_contact(cur, c)
        if event is ContactEvent.ACCEPT:
            await self._queue(c, env.ContactResponse(env.Decision.ACCEPT))
            await self._send_avatar_to_new_contact(identity_key)
        elif event is ContactEvent.DECLINE:
            await self._queue(c, env.ContactResponse(env.Decision.DECLINE))
        self._emit({"type": "contact", "contact": identity_key.hex(), "state": new.value})
        return c

    # -- sending ----------------------------------------------------------------------

    async def send_text(
        self, identity_key: bytes, text: str, reply_to: bytes | None = None
    ) -> bytes:
        """Queue a text message; return its message id."""
        return await self._send_body(identity_key, env.Text(text, reply_to))

    async def edit(self, message_id: bytes, text: str) -> None:
        msg = self._own_message(message_id)
        await self._send_body(msg.contact, env.Edit(message_id, text))

    async def delete(self, message_id: bytes) -> None:
        msg = self._own_message(message_id)
        await self._send_body(msg.contact, env.Delete(message_id))

    async def react(self, message_id: bytes, emoji: str, remove: bool = False) -> None:
        with self.db.transaction() as cur:
            msg = db.get_message(cur, message_id)
        if msg is None:
            raise UsageError("no such message")
        await self._send_body(msg.contact, env.Reaction(message_id, emoji, remove))

    async def typing(self, identity_key: bytes, typing: bool) -> None:
        """Tell the contact we are typing (ephemeral: never stored or re-sent)."""
        contact = self._accepted(identity_key)
        msg = self._new_message(contact, env.Typing(typing))
        await self._transmit(contact, contact.conversation_topic, env.encode(msg), ephemeral=True)

    async def mark_read(self, identity_key: bytes) -> int:
        """Mark the conversation read and tell the contact; return how many."""
        with self.db.transaction() as cur:
            ids = db.unread_incoming(cur, identity_key)
            db.set_incoming_read(cur, ids)
        if ids:
            contact = self._accepted(identity_key)
            for i in range(0, len(ids), 500):
                body = env.Receipt(tuple(ids[i : i + 500]), env.ReceiptKind.READ)
                msg = self._new_message(contact, body)
                await self._transmit(contact, contact.conversation_topic, env.encode(msg))
        return len(ids)

    def _own_message(self, message_id: bytes) -> db.MessageRow:
        with self.db.transaction() as cur:
            msg = db.get_message(cur, message_id)
        if msg is None or not msg.outgoing:
            raise UsageError("you can only edit or delete your own messages")
        return msg

    def _accepted(self, identity_key: bytes) -> db.ContactRow:
        with self.db.transaction() as cur:
            c = db.get_contact(cur, identity_key)
        if c is None:
            raise UnknownContact("no such contact")
        if c.state != ContactState.ACCEPTED.value:
            raise UsageError(f"{c.display_name} has not accepted your contact request yet")
        return c

    async def _send_body(self, identity_key: bytes, body: env.Body) -> bytes:
        contact = self._accepted(identity_key)
        return await self._queue(contact, body)

    def _new_message(self, contact: db.ContactRow, body: env.Body) -> env.ChatMessage:
        with self.db.transaction() as cur:
            c = db.get_contact(cur, contact.identity_key) or contact
            clock = LamportClock(c.lamport)
            lamport = clock.tick()
            db.put_contact(cur, replace(c, lamport=clock.value))
        return env.new_message(body, lamport=lamport, sent_at_ms=int(self.clock() * 1000))

    async def _queue(
        self, contact: db.ContactRow, body: env.Body, content_topic: str | None = None
    ) -> bytes:
        """Store and queue a reliable message; the sender task delivers it."""
        msg = self._new_message(contact, body)
        payload = env.encode(msg)
        now = self.clock()
        topic = content_topic or contact.conversation_topic
        with self.db.transaction() as cur:
            self.outbox.add(msg.message_id, contact.identity_key, topic, payload, now)
            row = self.outbox.row(msg.message_id)
            assert row is not None
            db.save_outbox_row(cur, row)
            if isinstance(body, env.Text):
                db.add_message(
                    cur,
                    db.MessageRow(
                        msg.message_id,
                        contact.identity_key,
                        True,
                        msg.lamport,
                        msg.sent_at_ms,
                        None,
                        body.text,
                        body.reply_to,
                        False,
                        False,
                        DeliveryState.QUEUED.value,
                        {},
                    ),
                )
            else:
                self._apply_own_action(cur, contact.identity_key, body)
        if isinstance(body, env.Text):
            self._emit_message(msg.message_id)
        self._wake.set()
        return msg.message_id

    def _apply_own_action(self, cur: Any, author: bytes, body: env.Body) -> None:
        """Our own edit/delete/reaction changes our copy at once."""
        target_id = getattr(body, "target", None)
        target = db.get_message(cur, target_id) if target_id else None
        if target is None:
            return
        self._apply_action(cur, target, body, by_me=True)

    async def _send_loop(self) -> None:
        while True:
            now = self.clock()
            due = self.outbox.due(now)
            for entry in due:
                await self._attempt(entry)
            timer = self.outbox.get_timer()
            delay = 60.0 if timer is None else max(0.0, timer - self.clock())
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _attempt(self, entry: Any) -> None:
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, entry.recipient)
        if contact is None or contact.state == ContactState.BLOCKED.value:
            self.outbox.remove(entry.message_id)
            self._settle(None, entry.message_id)
            return
        is_request = entry.content_topic != contact.conversation_topic
        if not is_request and contact.state not in (
            ContactState.ACCEPTED.value,
            ContactState.REQUEST_RECEIVED.value,
        ):
            return  # waits for their answer; retried when they accept
        try:
            sent = await self._transmit(contact, entry.content_topic, entry.payload)
        except BoxlessError as exc:
            logger.info("send failed, will retry: %s", exc)
            change = self.outbox.on_send_failed(entry.message_id, self.clock())
        else:
            if sent:
                change = self.outbox.on_sent(entry.message_id, self.clock())
            else:
                change = self.outbox.on_send_failed(entry.message_id, self.clock())
        self._settle(change, entry.message_id)

    def _settle(self, change: StateChange | None, message_id: bytes) -> None:
        """Persist the outbox entry (or its removal) and the message's visible state."""
        with self.db.transaction() as cur:
            row = self.outbox.row(message_id)
            if row is None:
                db.delete_outbox_row(cur, message_id)
            else:
                db.save_outbox_row(cur, row)
            if change is not None:
                msg = db.get_message(cur, message_id)
                if msg is not None and _rank(change.new.value) > _rank(msg.state):
                    db.update_message(cur, replace(msg, state=change.new.value))
        if change is not None:
            self._emit_message(message_id)

    async def _transmit(
        self, contact: db.ContactRow, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> bool:
        """Encrypt for the contact's device, seal, send; True if the network accepted it."""
        code = card_to_code(contact.bundle, self.clock())
        if code.bundle.curve25519 == contact.device_key:
            bundle = self.bundles.fresher(code.bundle)
        else:  # the contact moved to a device we learned of from its published bundle
            stored = self.bundles.stored(contact.identity_key)
            if stored is None or stored.curve25519 != contact.device_key:
                raise UsageError(
                    "this contact's current device keys are missing; "
                    "ask them for a fresh link and add it again"
                )
            bundle = stored
        return await self._transmit_bundle(bundle, topic, plaintext, ephemeral)

    async def _transmit_card(
        self, card: bytes, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> bool:
        """Encrypt for the device of a contact card, seal, send (contacts and group members)."""
        code = card_to_code(card, self.clock())
        return await self._transmit_bundle(
            self.bundles.fresher(code.bundle), topic, plaintext, ephemeral
        )

    async def _transmit_bundle(
        self, bundle: DeviceBundle, topic: str, plaintext: bytes, ephemeral: bool = False
    ) -> bool:
        """Encrypt for a device bundle, seal, send (also a group link's admin)."""
        with self.sessions.transaction():
            olm = self.sessions.encrypt(bundle, plaintext)
        sealed = seal(
            bundle.sealing_key,
            sender_identity_key=self.me,
            sender_device_key=self.my_device_key,
            ciphertext=olm,
        )
        msg = WakuMessage(
            payload=sealed,
            content_topic=topic,
            timestamp=time.time_ns(),
            ephemeral=True if ephemeral else None,
        )
        result = await self.transport.send(msg)
        return result.accepted

    # -- receiving --------------------------------------------------------------------

    async def _receive_loop(self, incoming: trio.MemoryReceiveChannel[Incoming]) -> None:
        async for item in incoming:
            await self._handle(item)

    async def _handle(self, item: Incoming) -> None:
        """The receive pipeline for one Waku message (see the module docstring)."""
        if self.groups.owns(item.message.content_topic):
            await self.groups.handle(item)
            return
        try:
            outcome = self._process(item)
        except (DecodeError, TamperedMessage) as exc:
            logger.info("dropped an undecryptable message: %s", type(exc).__name__)
            self._mark_processed(item)
            return
        except UnknownSession as exc:
            self._mark_processed(item)
            await self._reset_session(exc)
            return
        if outcome is not None:
            await outcome

    def _mark_processed(self, item: Incoming) -> None:
        with self.db.transaction() as cur:
            db.mark_seen(cur, item.message_hash, int(self.clock() * 1000))
            self._advance_sync(cur, item)

    def _advance_sync(self, cur: Any, item: Incoming) -> None:
        if item.message.timestamp:
            db.set_sync(cur, item.message.content_topic, item.message.timestamp)

    def _process(self, item: Incoming) -> Any:
        """Decrypt and apply in one transaction; return a coroutine of follow-ups, if any."""
        with self.db.transaction() as cur:
            if db.was_seen(cur, item.message_hash):
                return None
            opened = open_envelope(self.sealing, item.message.payload)
            sender = opened.sender_identity_key
            contact = db.get_contact(cur, sender)
            if contact is not None and contact.device_key != opened.sender_device_key:
                if contact.state == ContactState.BLOCKED.value:
                    db.mark_seen(cur, item.message_hash, int(self.clock() * 1000))
                    return None
                # Their device changed (an account restored from its phrase), or a forgery:
                # the bundle they published decides (follow-up, outside this transaction).
                return self._adopt_device(sender, opened.sender_device_key, item)
            try:
                plaintext = self.sessions.decrypt(opened.sender_device_key, opened.ciphertext)
            except DuplicateMessage:
                db.mark_seen(cur, item.message_hash, int(self.clock() * 1000))
                return None
            except UnknownSession as exc:
                exc.args = (sender,)
                raise
            msg = env.decode(plaintext)
            if isinstance(msg.body, (env.GroupKeyShareBody, env.GroupOpBody)):
                db.mark_seen(cur, item.message_hash, int(self.clock() * 1000))
                self._advance_sync(cur, item)
                if contact is not None and contact.state == ContactState.BLOCKED.value:
                    return None
                return self.groups.on_direct(cur, sender, opened.sender_device_key, msg)
            state = ContactState(contact.state) if contact else ContactState.NONE
            decision = self.gate.should_accept(
                sender, msg.body, state=state, now_ms=int(self.clock() * 1000)
            )
            db.mark_seen(cur, item.message_hash, int(self.clock() * 1000))
            self._advance_sync(cur, item)
            if not decision.accept:
                logger.info("dropped a message: %s", decision.reason.value)
                return None
            if contact is None:
                contact = self._new_stranger(cur, msg, opened.sender_device_key, sender)
                if contact is None:
                    return None
            clock = LamportClock(contact.lamport)
            clock.observe(msg.lamport)
            contact = replace(contact, lamport=clock.value)
            db.put_contact(cur, contact)
            follow_up = self._apply(cur, contact, msg)
        return follow_up

    async def _adopt_device(self, sender: bytes, device_key: bytes, item: Incoming) -> None:
        """A message from a known contact's unknown device: adopt the device if the
        contact's newest published bundle certifies it, then process the message."""
        fresh = await self.bundles.refresh(sender, device_key)
        if fresh is None or fresh.curve25519 != device_key:
            logger.warning("a message claims a known contact from an unpublished device; dropped")
            self._mark_processed(item)
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
            self._emit({"type": "verification_broken", "contact": sender.hex()})
        self._emit({"type": "contact", "contact": sender.hex(), "state": contact.state})
        await self._handle(item)

    def _new_stranger(
        self, cur: Any, msg: env.ChatMessage, device_key: bytes, sender: bytes
    ) -> db.ContactRow | None:
        body = msg.body
        if not isinstance(body, env.ContactRequest):
            return None
        try:
            code = card_to_code(body.sender_card, self.clock())
        except InvalidContactCode:
            logger.info("contact request with an invalid card; dropped")
            return None
        if code.identity_key != sender or code.bundle.certificate.device_curve25519 != device_key:
            logger.warning("contact request whose card does not match its sender; dropped")
            return None
        now_ms = int(self.clock() * 1000)
        return db.ContactRow(
            identity_key=sender,
            display_name=code.display_name,
            bundle=code.to_bytes(),
            device_key=device_key,
            state=ContactState.NONE.value,
            intro="",
            conversation_topic=conversation_topic(body.conversation_secret),
            verified_key=None,
            lamport=0,
            added_at_ms=now_ms,
            updated_at_ms=now_ms,
        )

    def _apply(self, cur: Any, contact: db.ContactRow, msg: env.ChatMessage) -> Any:
        """Apply one accepted message; return follow-up coroutine (receipt, resubscribe)."""
        body = msg.body
        sender = contact.identity_key
        events: list[dict[str, Any]] = []
        follow: list[Any] = []
        if isinstance(body, env.ContactRequest):
            contact = self._on_request(cur, contact, body, events, follow)
        elif isinstance(body, env.ContactResponse):
            event = (
                ContactEvent.ACCEPT_RECEIVED
                if body.decision is env.Decision.ACCEPT
                else ContactEvent.DECLINE_RECEIVED
            )
            new = next_contact_state(ContactState(contact.state), event)
            db.put_contact(cur, replace(contact, state=new.value))
            events.append({"type": "contact", "contact": sender.hex(), "state": new.value})
            if new is ContactState.ACCEPTED:
                self.outbox.retry_now(self.clock(), sender)
                self._wake.set()
                follow.append(lambda: self._send_avatar_to_new_contact(sender))
        elif isinstance(body, env.Text):
            added = db.add_message(
                cur,
                db.MessageRow(
                    msg.message_id,
                    sender,
                    False,
                    msg.lamport,
                    msg.sent_at_ms,
                    int(self.clock() * 1000),
                    body.text,
                    body.reply_to,
                    False,
                    False,
                    "received",
                    {},
                ),
            )
            if added:
                events.append({"type": "message", "message_id": msg.message_id.hex()})
        elif isinstance(body, (env.Edit, env.Delete, env.Reaction)):
            target = db.get_message(cur, body.target)
            if target is not None and target.contact == sender:
                self._apply_action(cur, target, body, by_me=False)
                events.append({"type": "message", "message_id": target.message_id.hex()})
        elif isinstance(body, env.Receipt):
            self._on_receipt(cur, body, events)
        elif isinstance(body, env.Typing):
            events.append({"type": "typing", "contact": sender.hex(), "typing": body.typing})
        elif isinstance(body, env.SessionReset):
            self.outbox.retry_now(self.clock(), sender)
            self._wake.set()
        elif isinstance(body, env.SAS_BODIES):  # emoji verification: not chat history
            follow.append(self.sas.on_message(contact, msg))
        elif isinstance(body, env.ProfileUpdate):
            contact = replace(contact, display_name=body.name)
            db.put_contact(cur, contact)
            db.set_contact_avatar(cur, sender, self._received_avatar(contact, body.avatar))
            events.append({"type": "contact", "contact": sender.hex(), "state": contact.state})
        if env.is_reliable(body):
            self._receipts.setdefault(sender, []).append(msg.message_id)
            self._receipts_ready.set()
        for ev in events:
            self._emit(ev)
        if not follow:
            return None

        async def run_follow_ups() -> None:
            for f in follow:
                await f()

        return run_follow_ups()

    def _received_avatar(self, contact: db.ContactRow, avatar: bytes) -> bytes | None:
        """The picture to keep from a contact's ProfileUpdate (a bad one: the old one)."""
        if not avatar:
            return None
        try:
            avatar_mime(avatar)
        except InvalidAvatar as exc:
            logger.info("a contact's picture was ignored: %s", exc)
            return contact.avatar
        return avatar

    def _on_request(
        self,
        cur: Any,
        contact: db.ContactRow,
        body: env.ContactRequest,
        events: list[dict[str, Any]],
        follow: list[Any],
    ) -> db.ContactRow:
        state = ContactState(contact.state)
        new = next_contact_state(state, ContactEvent.REQUEST_RECEIVED)
        topic = contact.conversation_topic
        card = contact.bundle
        restarted = False
        if state is ContactState.REQUEST_SENT and contact.identity_key < self.me:
            topic = conversation_topic(body.conversation_secret)  # theirs wins: smaller key
        elif state is ContactState.NONE or state is ContactState.DECLINED:
            topic = conversation_topic(body.conversation_secret)
        elif state is ContactState.ACCEPTED:
            restarted = self._restarted_on_new_device(contact, body)
            if restarted:  # they lost their history: their new conversation wins
                topic = conversation_topic(body.conversation_secret)
                card = body.sender_card
        contact = replace(
            contact, state=new.value, intro=body.intro, conversation_topic=topic, bundle=card
        )
        db.put_contact(cur, contact)
        events.append(
            {
                "type": "contact_request" if new is ContactState.REQUEST_RECEIVED else "contact",
                "contact": contact.identity_key.hex(),
                "state": new.value,
                "name": contact.display_name,
            }
        )

        async def subscribe() -> None:
            await self.transport.subscribe([topic])

        follow.append(subscribe)
        if restarted:
            row = contact
            follow.append(lambda: self._queue(row, env.ContactResponse(env.Decision.ACCEPT)))
        if new is ContactState.ACCEPTED:  # crossed requests, or a contact asking again
            key = contact.identity_key
            follow.append(lambda: self._send_avatar_to_new_contact(key))
        return contact

    def _restarted_on_new_device(self, contact: db.ContactRow, body: env.ContactRequest) -> bool:
        """An accepted contact asks again from a device other than their card's: an
        account restored from its phrase on a new device (its card proves it)."""
        try:
            new = card_to_code(body.sender_card, self.clock())
            old = card_to_code(contact.bundle, self.clock())
        except InvalidContactCode:
            return False
        return (
            new.identity_key == contact.identity_key
            and new.bundle.curve25519 == contact.device_key
            and new.bundle.curve25519 != old.bundle.curve25519
        )

    def _on_receipt(self, cur: Any, body: env.Receipt, events: list[dict[str, Any]]) -> None:
        for mid in body.message_ids:
            if body.kind is env.ReceiptKind.READ:
                change = self.outbox.on_read(mid)
                new_state = DeliveryState.READ.value
            else:
                change = self.outbox.on_delivered(mid)
                new_state = DeliveryState.DELIVERED.value
            row = self.outbox.row(mid)
            if row is None:
                db.delete_outbox_row(cur, mid)
            msg = db.get_message(cur, mid)
            if msg is not None and msg.outgoing and _rank(new_state) > _rank(msg.state):
                db.update_message(cur, replace(msg, state=new_state))
                events.append({"type": "message", "message_id": mid.hex()})
            del change

    def _apply_action(self, cur: Any, target: db.MessageRow, body: env.Body, by_me: bool) -> None:
        if isinstance(body, env.Edit):
            db.update_message(cur, replace(target, text=body.text, edited=True))
        elif isinstance(body, env.Delete):
            db.update_message(cur, replace(target, text="", deleted=True, reactions={}))
        elif isinstance(body, env.Reaction):
            who = "me" if by_me else "them"
            reactions = {k: list(v) for k, v in target.reactions.items()}
            people = reactions.setdefault(body.emoji, [])
            if body.remove and who in people:
                people.remove(who)
            elif not body.remove and who not in people:
                people.append(who)
            db.update_message(
                cur, replace(target, reactions={k: v for k, v in reactions.items() if v})
            )

    async def _receipt_loop(self) -> None:
        """Send DELIVERED receipts soon after, batched over a 10 ms window (a
        catch-up from store acknowledges hundreds of messages in one receipt)."""
        while True:
            await self._receipts_ready.wait()
            await trio.sleep(RECEIPT_BATCH_S)
            self._receipts_ready = trio.Event()
            pending, self._receipts = self._receipts, {}
            for sender, ids in pending.items():
                with self.db.transaction() as cur:
                    contact = db.get_contact(cur, sender)
                if contact is None or contact.state == ContactState.BLOCKED.value:
                    continue
                for i in range(0, len(ids), 500):
                    body = env.Receipt(tuple(ids[i : i + 500]), env.ReceiptKind.DELIVERED)
                    msg = self._new_message(contact, body)
                    try:
                        await self._transmit(contact, contact.conversation_topic, env.encode(msg))
                    except BoxlessError as exc:  # the sender re-sends; we receipt again then
                        logger.info("receipt not sent: %s", exc)

    async def _reset_session(self, exc: UnknownSession) -> None:
        """A contact's message we can't decrypt: start over with a fresh session."""
        sender = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else None
        if sender is None:
            return
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, sender)
        now = self.clock()
        if contact is None or now - self._last_reset.get(sender, 0.0) < RESET_INTERVAL_S:
            return
        self._last_reset[sender] = now
        self.sessions.reset(contact.device_key)
        logger.info("re-establishing the session with a contact")
        await self._queue(contact, env.SessionReset())

    # -- views ------------------------------------------------------------------------

    def messages(
        self, identity_key: bytes, limit: int = 50, before_lamport: int | None = None
    ) -> list[db.MessageRow]:
        """The newest ``limit`` messages (older than ``before_lamport``), oldest first."""
        with self.db.transaction() as cur:
            return db.list_messages(cur, identity_key, limit, before_lamport)

    def _emit_message(self, message_id: bytes) -> None:
        self._emit({"type": "message", "message_id": message_id.hex()})


_RANKS = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": -1}


def _rank(state: str) -> int:
    return _RANKS.get(state, 0)
