"""Contacts: requests by link, accept/decline/block, names and pictures.

Theory of operation
-------------------
Adding a link solves the request's proof of work first, then stores the
contact and queues a ``ContactRequest`` (our card, the proof, a fresh
conversation secret) on the recipient's partition topic in ONE transaction:
a crash leaves either nothing or a request that will go out. Accepting does
the same with the ``ContactResponse``.

Crossed requests (both added each other) accept each other; the conversation
secret of the request from the smaller identity key wins, so both sides
derive one topic. A stranger's request reaches us only through the direct
channel's gate (proof of work, rate limits) and only if its card is theirs:
the card's identity and device must be the ones the sealed envelope and the
Olm session proved.

Profiles go to accepted contacts only; a contact's name is validated as our
own is, and a picture is kept only if it is one we show.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace

import trio

from boxless.chat import envelope as env
from boxless.chat.pow import DEFAULT_DIFFICULTY, ProofOfWork, solve
from boxless.chat.requests import ContactEvent, ContactState, next_contact_state
from boxless.chat.topics import contact_topic, conversation_topic
from boxless.client import events as ev
from boxless.client import profile_store
from boxless.client import store as db
from boxless.client.avatars import InvalidAvatar, avatar_mime
from boxless.client.bundles import BundleBook
from boxless.client.channel import (
    DirectChannel,
    FollowUp,
    Received,
    card_to_code,
    senders_card,
)
from boxless.client.conversations import Conversations, UnknownContact
from boxless.client.profiles import received_details
from boxless.errors import UsageError
from boxless.identity.account import LocalAccount
from boxless.identity.contact_code import InvalidContactCode, decode_contact_code
from boxless.identity.profile import InvalidProfile, save_profile, validate_display_name

logger = logging.getLogger(__name__)

INLINE_POW_BITS = 12  # up to ~4,000 hashes: solved inline, not in a thread


class Contacts:
    """The contact list of one client, and the request/response/profile handlers."""

    def __init__(
        self,
        account: LocalAccount,
        channel: DirectChannel,
        conversations: Conversations,
        bundles: BundleBook,
        *,
        clock: Callable[[], float],
        pow_difficulty: int | None = None,
    ) -> None:
        self.account = account
        self.channel = channel
        self.conversations = conversations
        self.bundles = bundles
        self.db = channel.db
        self.me = channel.me
        self.clock = clock
        self.pow_difficulty = pow_difficulty if pow_difficulty is not None else DEFAULT_DIFFICULTY
        handlers = channel.handlers
        handlers.on_body((env.ContactRequest,), self._on_request)
        handlers.on_body((env.ContactResponse,), self._on_response)
        handlers.on_body((env.ProfileUpdate,), self._on_profile)

    # -- reads ----------------------------------------------------------------------------

    def contacts(self) -> list[db.ContactRow]:
        with self.db.transaction() as cur:
            return db.list_contacts(cur)

    def get(self, identity_key: bytes) -> db.ContactRow | None:
        with self.db.transaction() as cur:
            return db.get_contact(cur, identity_key)

    def find(self, who: str) -> db.ContactRow:
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

    def topics(self) -> list[str]:
        """Our partition topic and every conversation topic not blocked."""
        return [contact_topic(self.me)] + [
            c.conversation_topic for c in self.contacts() if c.state != ContactState.BLOCKED.value
        ]

    # -- the user's actions -----------------------------------------------------------------

    async def add(self, link: str, intro: str = "") -> db.ContactRow:
        """Add a contact from their ``boxless://`` link and send them a request.

        Raises :class:`InvalidContactCode` for a bad link. The proof of work
        (~1 s) is solved before anything is written; then the contact and its
        queued request are stored together.
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
        existing = self.get(code.identity_key)
        if (
            existing is not None
            and existing.state == ContactState.ACCEPTED.value
            and existing.device_key == device_key
        ):
            return existing  # already a contact, same keys: nothing to send
        state = ContactState(existing.state) if existing else ContactState.NONE
        new_state = next_contact_state(state, ContactEvent.SEND_REQUEST)
        crossed = new_state is ContactState.ACCEPTED and state is ContactState.REQUEST_RECEIVED
        proof = None if crossed else await self._solve_pow(code.identity_key)
        secret = secrets.token_bytes(32)
        verified = existing.verified_key if existing else None
        if verified is not None and verified != device_key:
            logger.warning("a verified contact's keys changed: verification is broken")
            self.channel.emit(ev.VerificationBroken(code.identity_key.hex()))
        now = self.clock()
        row = db.ContactRow(
            identity_key=code.identity_key,
            display_name=code.display_name,
            bundle=code.to_bytes(),
            device_key=device_key,
            state=new_state.value,
            intro="",
            conversation_topic=(
                existing.conversation_topic if existing else conversation_topic(secret)
            ),
            verified_key=verified,
            lamport=existing.lamport if existing else 0,
            added_at_ms=int(now * 1000),
            updated_at_ms=int(now * 1000),
        )
        with self.db.transaction() as cur:
            db.put_contact(cur, row)
            if proof is None:
                self.conversations.queue_in(cur, row, env.ContactResponse(env.Decision.ACCEPT))
                self._queue_avatar(cur, row)
            else:
                card = self.account.contact_code(now).to_bytes()
                body = env.ContactRequest(intro, proof, card, secret)
                self.conversations.queue_in(
                    cur, row, body, content_topic=contact_topic(code.identity_key)
                )
        await self.channel.transport.subscribe([row.conversation_topic])
        self.channel.emit(ev.ContactChanged(code.identity_key.hex(), new_state.value))
        return row

    async def respond(self, identity_key: bytes, event: ContactEvent) -> db.ContactRow:
        """Accept, decline, block or unblock a contact (the answer is queued with it)."""
        with self.db.transaction() as cur:
            c = db.get_contact(cur, identity_key)
            if c is None:
                raise UnknownContact("no such contact")
            new = next_contact_state(ContactState(c.state), event)
            c = replace(c, state=new.value, updated_at_ms=int(self.clock() * 1000))
            db.put_contact(cur, c)
            if event is ContactEvent.ACCEPT:
                self.conversations.queue_in(cur, c, env.ContactResponse(env.Decision.ACCEPT))
                self._queue_avatar(cur, c)
            elif event is ContactEvent.DECLINE:
                self.conversations.queue_in(cur, c, env.ContactResponse(env.Decision.DECLINE))
        self.channel.emit(ev.ContactChanged(identity_key.hex(), new.value))
        return c

    def confirm_verified(self, identity_key: bytes) -> db.ContactRow:
        """The user compared safety numbers and they match: remember this device."""
        with self.db.transaction() as cur:
            c = db.get_contact(cur, identity_key)
            if c is None:
                raise UnknownContact("no such contact")
            c = replace(c, verified_key=c.device_key, updated_at_ms=int(self.clock() * 1000))
            db.put_contact(cur, c)
        self.channel.emit(ev.ContactChanged(identity_key.hex(), c.state))
        return c

    async def set_display_name(self, name: str) -> None:
        """Change our name and tell every accepted contact (only them: profiles
        are for contacts)."""
        name = validate_display_name(name)
        profile = replace(self.account.profile, display_name=name, updated_at=int(self.clock()))
        self._save_and_send(profile)

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
        self._save_and_send(profile)

    def _save_and_send(self, profile: object) -> None:
        save_profile(self.db, profile)  # type: ignore[arg-type]
        self.account.profile = profile  # type: ignore[assignment]
        self.announce_profile()

    def announce_profile(self) -> None:
        """Send our whole profile (name, picture, status, region, cover: see
        client/profiles.py) to every accepted contact again."""
        with self.db.transaction() as cur:
            body = self._profile_body(cur)
            for c in db.list_contacts(cur):
                if c.state == ContactState.ACCEPTED.value:
                    self.conversations.queue_in(cur, c, body)
        self.channel.emit(ev.ProfileChanged(self.account.profile.display_name))

    def _profile_body(self, cur: db.Cursor) -> env.ProfileUpdate:
        d = profile_store.get_details(cur, self.me)
        return env.ProfileUpdate(
            self.account.profile.display_name,
            self._shared_avatar(),
            d.status,
            d.region,
            d.cover or b"",
        )

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

    def _queue_avatar(self, cur: db.Cursor, contact: db.ContactRow) -> None:
        """A contact just accepted: their copy of our card has our name but no picture
        (nor status, region, cover)."""
        body = self._profile_body(cur)
        if body.avatar or body.status or body.region or body.cover:
            self.conversations.queue_in(cur, contact, body)

    async def _solve_pow(self, recipient: bytes) -> ProofOfWork:
        """The request's proof of work: ~1 s in a worker thread at the real
        difficulty; inline when it is a few milliseconds' work (tests), so the
        proof's timestamp is the injected clock's and no thread runs while a
        virtual clock jumps ahead (which made proofs stale on arrival)."""
        ts = int(self.clock() * 1000)
        if self.pow_difficulty <= INLINE_POW_BITS:
            proof = solve(recipient, self.me, ts, difficulty=self.pow_difficulty)
        else:
            proof = await trio.to_thread.run_sync(
                lambda: solve(recipient, self.me, ts, difficulty=self.pow_difficulty),
                abandon_on_cancel=True,  # type: ignore[call-arg]  # trio-stubs predate it
            )
        if proof is None:
            raise UsageError("could not solve the contact request's proof of work")
        return proof

    # -- handlers (inside the receive transaction) ----------------------------------------------

    def _on_request(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.ContactRequest)
        contact = r.contact or self._stranger(r, body)
        if contact is None:
            return None
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
        if restarted:
            self.conversations.queue_in(cur, contact, env.ContactResponse(env.Decision.ACCEPT))
        if new is ContactState.ACCEPTED:  # crossed requests, or a contact asking again
            self._queue_avatar(cur, contact)
        key = contact.identity_key.hex()
        if new is ContactState.REQUEST_RECEIVED:
            self.channel.emit(ev.ContactRequestReceived(key, new.value, contact.display_name))
        else:
            self.channel.emit(ev.ContactChanged(key, new.value))

        async def subscribe() -> None:
            await self.channel.transport.subscribe([topic])

        return subscribe

    def _stranger(self, r: Received, body: env.ContactRequest) -> db.ContactRow | None:
        """A new contact row from a stranger's request, if its card is the sender's own."""
        code = senders_card(body.sender_card, r.sender, r.device_key, self.clock())
        if code is None:  # the gate checked it already: this is a second line
            logger.warning("contact request whose card is not its sender's; dropped")
            return None
        now_ms = int(self.clock() * 1000)
        return db.ContactRow(
            identity_key=r.sender,
            display_name=code.display_name,
            bundle=code.to_bytes(),
            device_key=r.device_key,
            state=ContactState.NONE.value,
            intro="",
            conversation_topic=conversation_topic(body.conversation_secret),
            verified_key=None,
            lamport=0,
            added_at_ms=now_ms,
            updated_at_ms=now_ms,
        )

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

    def _on_response(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.ContactResponse)
        if r.contact is None:
            return None
        event = (
            ContactEvent.ACCEPT_RECEIVED
            if body.decision is env.Decision.ACCEPT
            else ContactEvent.DECLINE_RECEIVED
        )
        new = next_contact_state(ContactState(r.contact.state), event)
        contact = replace(r.contact, state=new.value)
        db.put_contact(cur, contact)
        self.channel.emit(ev.ContactChanged(r.sender.hex(), new.value))
        if new is ContactState.ACCEPTED:
            self.conversations.retry_now(r.sender)
            self._queue_avatar(cur, contact)
        return None

    def _on_profile(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.ProfileUpdate)
        if r.contact is None:
            return None
        try:
            name = validate_display_name(body.name)
        except InvalidProfile as exc:
            logger.info("a contact's new name was ignored: %s", exc)
            name = r.contact.display_name
        contact = replace(r.contact, display_name=name)
        db.put_contact(cur, contact)
        db.set_contact_avatar(cur, r.sender, _received_avatar(contact, body.avatar))
        now_ms = int(self.clock() * 1000)
        received_details(cur, r.sender, body.status, body.region, body.cover, now_ms)
        self.channel.emit(ev.ContactChanged(r.sender.hex(), contact.state))
        return None


def _received_avatar(contact: db.ContactRow, avatar: bytes) -> bytes | None:
    """The picture to keep from a contact's ProfileUpdate (a bad one: the old one)."""
    if not avatar:
        return None
    try:
        avatar_mime(avatar)
    except InvalidAvatar as exc:
        logger.info("a contact's picture was ignored: %s", exc)
        return contact.avatar
    return avatar
