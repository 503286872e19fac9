"""Linked devices, the client plug-in: link, list, rename, revoke; contacts' rosters.

Theory of operation
-------------------
Decisions and formats live in :mod:`boxless.client.devices_core` (pairing)
and :mod:`boxless.identity.device_certs` (signed rosters); all SQL in
:mod:`boxless.client.devices_store`. This module moves bytes:

- **Our roster.** An account that never linked has none; the first link
  makes one (serial 1: this device) and every change makes the next, stored
  and published (sealed) on our bundle topic. We listen on that topic live:
  a newer roster from another of our devices is taken, and if it no longer
  lists *this* device (revoked), this device wipes its keys.
- **Linking** (:meth:`DeviceManager.preview`, :meth:`DeviceManager.link`):
  check the offer, certify the new device, store and publish the roster,
  then send the transfer frames on the pairing topic (ordinary Waku
  messages, so store nodes hold them while the new device is offline).
  :func:`receive_link` is the new device's side.
- **Contacts' devices** (:meth:`DeviceManager.refresh`): read a contact's
  bundle topic (rate limited), keep the newest verified roster and the
  newest bundle of each of its active devices. The direct channel asks
  :meth:`others` for the extra devices to encrypt to (fan-out) and
  :meth:`certified` whether a device is one of a contact's (then a message
  from it is read without "moving" the contact). A roster older than
  :data:`ROSTER_TTL_S` is refreshed after the next send, so a revocation stops
  fan-out within minutes.
"""

from __future__ import annotations

import hashlib
import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from boxless.chat import envelope as env
from boxless.chat.moment import MomentAct
from boxless.chat.topics import bundle_topic, contact_topic
from boxless.client import devices_store as store
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.conversations import outgoing_row
from boxless.client.devices_core import (
    Linked,
    PairingOffer,
    PairingReceiver,
    PairingRefused,
    PendingDevice,
    build_transfer,
    certify,
    check_offer,
    offer_from_link,
)
from boxless.client.transport import Incoming, Transport
from boxless.crypto.megolm import decode_key_share
from boxless.errors import BoxlessError, DecodeError, NetworkError, UsageError
from boxless.groups.requests import is_request
from boxless.identity.account import LocalAccount, account_exists, user_db_path
from boxless.identity.device_certs import (
    DeviceLink,
    DeviceRoster,
    InvalidDeviceRecord,
    decode_published_roster,
    encode_published_roster,
    first_roster,
    newer,
)
from boxless.identity.keys import (
    DeviceBundle,
    InvalidBundle,
    decode_published_bundle,
    encode_published_bundle,
)
from boxless.identity.keystore import Keystore
from boxless.identity.profile import Profile, save_profile
from boxless.storage.userdb import (
    DEFAULT_KDF,
    Cursor,
    KdfParams,
    UserDB,
    UserDBExists,
    create_user_db,
    remove_user_db,
)
from boxless.waku.message import WakuMessage

logger = logging.getLogger(__name__)

HISTORY_DAYS = 30
ROSTER_TTL_S = 300.0
CHECK_EVERY_S = 60.0
MAX_WANTED = 1024
REFETCH_AFTER_S = 10.0
LOOKBACK_S = 8 * 86_400
FRAME_PACE_S = 0.002  # between transfer frames: relays drop bursts (WAKU-NOTES)


class DeviceRevoked(UsageError):
    """This device learnt it was revoked: its keys are wiped, the client stops."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One of our devices as the device list shows it."""

    device_key: bytes
    name: str
    platform: str
    linked_at: int
    last_seen_ms: int | None
    this_device: bool


@dataclass(frozen=True, slots=True)
class LinkPreview:
    name: str
    platform: str
    code: str
    expires_at: int


class DeviceManager:
    """Our devices and our contacts' devices (see the module docstring)."""

    def __init__(
        self,
        db: UserDB,
        account: LocalAccount,
        transport: Transport,
        *,
        megolm_pickle_key: bytes,
        clock: Callable[[], float],
        emit: Callable[[ev.Event], None] = lambda event: None,
    ) -> None:
        self.db = db
        self.account = account
        self.transport = transport
        self.clock = clock
        self.megolm_pickle_key = megolm_pickle_key
        self.me = account.identity.public_key
        self.my_device_key = account.device.certificate.device_curve25519
        self.my_topic = bundle_topic(self.me)
        self._asked: dict[bytes, float] = {}
        self._wanted: set[bytes] = set()  # identities sent to since the last check
        self._copied_shares: dict[tuple[bytes, str], None] = {}  # group sessions copied
        self.wiped = trio.Event()  # set once this device learns it was revoked
        self.emit = emit
        # the bundle book's remember (set by the Client), see refresh
        self.remember_bundle: Callable[[DeviceBundle, bool], object] | None = None
        # called in the transaction that stored a newer roster (set by the Client: the
        # group inbox places bodies from the identity's newly certified devices)
        self.on_roster: Callable[[Cursor, bytes], None] | None = None
        # our like or comment copied from another device of ours (set by the Client:
        # Moments shows it as ours): the act and when it was made
        self.on_own_moment_act: Callable[[Cursor, MomentAct, int], None] | None = None

    def _changed(self, what: str, done: int, total: int) -> None:
        self.emit(ev.DevicesChanged(what, done, total))

    # -- our roster ------------------------------------------------------------------

    def roster(self) -> DeviceRoster:
        """Our roster (this device alone, unsigned into the store, if never linked)."""
        with self.db.transaction() as cur:
            held = store.get_roster(cur, self.me)
        if held is not None:
            return held
        cert = self.account.device.certificate
        link = DeviceLink.issue(
            self.account.identity, cert, "First device", _platform(), cert.created_at
        )
        return first_roster(self.account.identity, link, cert.created_at)

    def devices(self) -> list[DeviceInfo]:
        roster = self.roster()
        with self.db.transaction() as cur:
            seen = store.last_seen(cur)
        return [
            DeviceInfo(
                link.curve25519,
                link.name,
                link.platform,
                link.linked_at,
                seen.get(link.curve25519),
                link.curve25519 == self.my_device_key,
            )
            for link in roster.devices
        ]

    async def _set_roster(self, roster: DeviceRoster) -> None:
        with self.db.transaction() as cur:
            store.put_roster(cur, roster, int(self.clock() * 1000))
        await self.publish_roster(roster)

    async def publish_roster(self, roster: DeviceRoster | None = None) -> bool:
        roster = roster or self.roster()
        msg = WakuMessage(
            payload=encode_published_roster(roster),
            content_topic=self.my_topic,
            timestamp=int(self.clock() * 1e9),
        )
        try:
            return (await self.transport.send(msg)).accepted
        except BoxlessError as exc:
            logger.info("publishing our device roster failed: %s", exc)
            return False

    async def rename(self, device_key: bytes, name: str) -> None:
        try:
            roster = self.roster().renamed(
                self.account.identity, device_key, name, int(self.clock())
            )
        except InvalidDeviceRecord as exc:
            raise UsageError(str(exc)) from None
        await self._set_roster(roster)
        self._changed("renamed", 0, 0)

    async def revoke(self, device_key: bytes) -> None:
        """Revoke one of our other devices: a signed revocation in a new roster,
        published; its bundle is forgotten so nothing more is encrypted to it."""
        if device_key == self.my_device_key:
            raise UsageError("this is the device you are using; revoke it from another one")
        try:
            roster = self.roster().without_device(
                self.account.identity, device_key, int(self.clock())
            )
        except InvalidDeviceRecord as exc:
            raise UsageError(str(exc)) from None
        with self.db.transaction() as cur:
            store.retire_group_sessions(cur)  # groups rotate: it reads nothing after
        await self._set_roster(roster)
        self._changed("revoked", 0, 0)

    async def _join_roster(self) -> None:
        """A device restored (from the phrase or a backup) on an account with a
        roster is not in it: it adds itself (it holds the identity key), so that
        contacts who hold the roster read and write to it. A revoked one never."""
        roster = self.roster()
        if roster.active(self.my_device_key) is not None or roster.is_revoked(self.my_device_key):
            return
        now = int(self.clock())
        cert = self.account.device.certificate
        link = DeviceLink.issue(self.account.identity, cert, "Restored device", _platform(), now)
        try:
            roster = roster.with_device(self.account.identity, link, now)
        except InvalidDeviceRecord as exc:
            logger.warning("this restored device could not join its account's roster: %s", exc)
            return
        await self._set_roster(roster)
        self._changed("linked", 0, 0)

    # -- linking (the existing device) ---------------------------------------------------

    def preview(self, link_text: str) -> LinkPreview:
        offer = self._checked(link_text)
        return LinkPreview(offer.name, offer.platform, offer.code, offer.expires_at)

    def _checked(self, link_text: str) -> PairingOffer:
        offer = offer_from_link(link_text)
        with self.db.transaction() as cur:
            used = store.pairing_used(cur, _secret_hash(offer.secret))
        check_offer(offer, self.clock(), used)
        return offer

    async def link(self, link_text: str, *, history_days: int = HISTORY_DAYS) -> DeviceInfo:
        """Certify the device of a link and hand the account over to it."""
        if not 0 <= history_days <= 3650:
            raise UsageError("history to hand over is 0 to 3650 days")
        offer = self._checked(link_text)
        now = self.clock()
        identity = self.account.identity
        cert, link = certify(identity, offer, now)
        try:
            roster = self.roster().with_device(identity, link, int(now))
        except InvalidDeviceRecord as exc:
            raise UsageError(str(exc)) from None
        with self.db.transaction() as cur:
            store.use_pairing(cur, _secret_hash(offer.secret), int(now * 1000))
            store.put_roster(cur, roster, int(now * 1000))
            snapshot = store.export_snapshot(
                cur,
                since_ms=int((now - history_days * 86_400) * 1000),
                megolm_pickle_key=self.megolm_pickle_key,
                my_identity=self.me,
                my_device_key=self.my_device_key,
            )
        frames = build_transfer(
            self.account.device.account,
            identity,
            offer,
            link,
            roster,
            snapshot,
            self.account.profile.display_name,
        )
        await self.transport.subscribe([self.my_topic])  # its bundle, later rosters
        await self.publish_roster(roster)
        for i, frame in enumerate(frames):
            msg = WakuMessage(
                payload=frame, content_topic=offer.topic, timestamp=int(self.clock() * 1e9)
            )
            sent = await self.transport.send(msg)
            if not sent.accepted:
                raise NetworkError(f"the transfer to the new device was refused: {sent.detail}")
            self._changed("sending", i + 1, len(frames))
            await trio.sleep(FRAME_PACE_S)
        self._changed("linked", len(frames), len(frames))
        return DeviceInfo(
            cert.device_curve25519, link.name, link.platform, link.linked_at, None, False
        )

    # -- our bundle topic, live --------------------------------------------------------

    def owns(self, topic: str) -> bool:
        return topic == self.my_topic

    async def handle(self, item: Incoming) -> None:
        """A message on our own bundle topic: another device's roster or bundle."""
        payload, now = item.message.payload, self.clock()
        try:
            roster = decode_published_roster(payload, self.me)
        except InvalidDeviceRecord:
            try:
                bundle = decode_published_bundle(payload, self.me, now)
            except InvalidBundle:
                return
            self._keep_bundle(bundle)
            return
        self._take_roster(roster)

    def _take_roster(self, roster: DeviceRoster) -> None:
        with self.db.transaction() as cur:
            held = store.get_roster(cur, roster.identity_key)
            if not newer(held, roster):
                return
            store.put_roster(cur, roster, int(self.clock() * 1000))
            gone = {r.device_curve25519 for r in roster.revoked}
            if held is not None and gone - {r.device_curve25519 for r in held.revoked}:
                # a device of a contact (or ours) was revoked: our group sessions
                # rotate, so it reads nothing we write after
                store.retire_group_sessions(cur)
            if roster.identity_key == self.me and roster.active(self.my_device_key) is None:
                if roster.is_revoked(self.my_device_key):
                    store.wipe_keys(cur)
                    logger.warning("this device was revoked by another of ours: keys wiped")
                    self.wiped.set()
            if self.on_roster is not None and not self.wiped.is_set():
                self.on_roster(cur, roster.identity_key)
        self._changed("roster", roster.serial, 0)

    def _keep_bundle(self, bundle: DeviceBundle) -> None:
        if bundle.curve25519 == self.my_device_key:
            return
        with self.db.transaction() as cur:
            roster = store.get_roster(cur, bundle.identity_key)
            if roster is None or roster.active(bundle.curve25519) is None:
                return
            store.put_device_bundle(cur, bundle)
            if bundle.identity_key == self.me:
                store.touch_device(cur, bundle.curve25519, int(self.clock() * 1000))

    # -- contacts' devices (the direct channel asks) -----------------------------------

    def others(self, identity_key: bytes, known: bytes) -> list[DeviceBundle]:
        """Bundles of ``identity_key``'s active devices other than ``known`` (and ours)."""
        with self.db.transaction() as cur:
            roster = store.get_roster(cur, identity_key)
            if roster is None:
                return []
            bundles = store.device_bundles(cur, identity_key)
        now = self.clock()
        return [
            b
            for b in bundles
            if b.curve25519 not in (known, self.my_device_key)
            and roster.active(b.curve25519) is not None
            and b.expires_at > now
        ]

    def watch(self, identity_key: bytes) -> None:
        """We wrote to this contact: keep its roster fresh (see :meth:`run`)."""
        if len(self._wanted) < MAX_WANTED:
            self._wanted.add(identity_key)

    def certified(self, cur: Cursor, identity_key: bytes, device_key: bytes) -> bool:
        """Whether ``device_key`` is an active device in ``identity_key``'s roster."""
        roster = store.get_roster(cur, identity_key)
        return roster is not None and roster.active(device_key) is not None

    def revoked(self, cur: Cursor, identity_key: bytes, device_key: bytes) -> bool:
        """Whether ``identity_key``'s roster revoked ``device_key`` (its messages are dropped)."""
        roster = store.get_roster(cur, identity_key)
        return roster is not None and roster.is_revoked(device_key)

    # -- our own other devices' copies ------------------------------------------------

    def copy_topic(self, plaintext: bytes, topic: str) -> str | None:
        """Where a message we send on ``topic`` is copied to our other devices, or
        None: 1:1 texts, edits, deletes, reactions, read receipts and our Moments likes
        and comments on a contact's post on their conversation
        topic (not typing, delivery receipts, signalling); each of our group
        sessions' keys once (not once per member) on our own contact topic."""
        try:
            msg = env.decode(plaintext)
        except DecodeError:
            return None
        body = msg.body
        if isinstance(body, env.GroupKeyShareBody):
            if is_request(body.payload):
                return None  # a key request: not ours to copy
            try:
                share = decode_key_share(body.payload)
            except DecodeError:
                return None
            key = (share.group_id, share.session_id)
            if key in self._copied_shares:
                return None
            self._copied_shares[key] = None
            while len(self._copied_shares) > MAX_WANTED:
                self._copied_shares.pop(next(iter(self._copied_shares)))
            return contact_topic(self.me)
        if isinstance(body, env.Receipt):
            return topic if body.kind is env.ReceiptKind.READ else None
        copied = (env.Text, env.Edit, env.Delete, env.Reaction, MomentAct)
        return topic if isinstance(body, copied) else None

    def own_copy(self, cur: Cursor, topic: str, message: env.ChatMessage) -> None:
        """Apply what another device of ours sent on a conversation topic: our text
        (shown as sent by us), our edit, delete or reaction, our read receipt
        (unread cleared), our like or comment on the contact's post."""
        contact = db.contact_by_topic(cur, topic)
        if contact is None:
            return
        body, them = message.body, contact.identity_key
        if isinstance(body, MomentAct):
            if self.on_own_moment_act is not None:
                self.on_own_moment_act(cur, body, message.sent_at_ms)
            return
        if isinstance(body, env.Text):
            db.observe_lamport(cur, them, message.lamport)
            row = outgoing_row(them, message, body.text, body.reply_to, state="sent")
            if db.add_message(cur, row):
                self.emit(ev.MessageChanged(message.message_id.hex(), them.hex()))
        elif isinstance(body, env.Reaction):
            target = db.get_message(cur, body.target)
            if target is None or target.contact != them or target.deleted:
                return  # a message of this conversation (ours or theirs)
            db.update_message(cur, replace(target, reactions=_reacted(target.reactions, body)))
            self.emit(ev.MessageChanged(target.message_id.hex(), them.hex()))
        elif isinstance(body, (env.Edit, env.Delete)):
            target = db.get_message(cur, body.target)
            if target is None or not target.outgoing or target.contact != them:
                return  # only our own messages in this conversation
            if isinstance(body, env.Edit):
                db.update_message(cur, replace(target, text=body.text, edited=True))
            else:
                db.update_message(cur, replace(target, text="", deleted=True, reactions={}))
            self.emit(ev.MessageChanged(target.message_id.hex(), them.hex()))
        elif isinstance(body, env.Receipt) and body.kind is env.ReceiptKind.READ:
            for mid in body.message_ids:
                msg = db.get_message(cur, mid)
                if msg is not None and not msg.outgoing and msg.contact == them:
                    if msg.state != "read":
                        db.set_incoming_read(cur, [mid])
                        self.emit(ev.MessageChanged(mid.hex(), them.hex()))

    async def learn(self, identity_key: bytes, device_key: bytes) -> bool:
        """A known identity writes from a device we don't know: read its roster
        (rate limited) and say whether the device is one of its active ones.
        A device the roster certifies whose bundle that read did not find yet (it
        wrote before its bundle reached the store) lifts the rate limit, so the
        next fan-out (:meth:`complete`) reads the topic again at once."""
        await self.refresh(identity_key, device_key)
        with self.db.transaction() as cur:
            ok = self.certified(cur, identity_key, device_key)
            have = {b.curve25519 for b in store.device_bundles(cur, identity_key)}
        if ok and device_key not in have:
            self._asked.pop(identity_key, None)
        return ok

    async def complete(self, identity_key: bytes, known: bytes) -> None:
        """Before a fan-out: if the roster lists an active device (not ``known``, not
        this one) whose bundle we lack or hold only expired, read the bundle topic
        again (rate limited), so a device certified before its bundle was stored
        gets what we send next (before: only after the roster went stale, 5 min)."""
        with self.db.transaction() as cur:
            roster = store.get_roster(cur, identity_key)
            if roster is None:
                return
            bundles = {b.curve25519: b for b in store.device_bundles(cur, identity_key)}
        now = self.clock()
        for link in roster.devices:
            if link.curve25519 in (known, self.my_device_key):
                continue
            held = bundles.get(link.curve25519)
            if held is None or held.expires_at <= now:
                await self.refresh(identity_key)
                return

    def stale(self, identity_key: bytes) -> bool:
        with self.db.transaction() as cur:
            at = store.roster_checked_at(cur, identity_key)
        return at is None or self.clock() * 1000 - at > ROSTER_TTL_S * 1000

    async def run(self) -> None:
        """An account with linked devices listens on its own bundle topic (and reads
        what it missed: a revocation while it was off). Then every
        :data:`CHECK_EVERY_S`, re-read the roster of each identity we sent to since,
        if older than :data:`ROSTER_TTL_S` (cancel to stop)."""
        with self.db.transaction() as cur:
            linked = store.get_roster(cur, self.me) is not None
        if linked:
            await self.transport.subscribe([self.my_topic])
            self._asked.pop(self.me, None)
            await self.refresh(self.me)
            await self._join_roster()
        while True:
            with trio.move_on_after(CHECK_EVERY_S):
                await self.wiped.wait()
            if self.wiped.is_set():
                raise DeviceRevoked(
                    "this device was revoked from another of your devices and its keys "
                    "were wiped; to use it again, link it anew (boxless link --home NEW)"
                )
            wanted, self._wanted = self._wanted, set()
            for identity_key in sorted(wanted):
                if self.stale(identity_key):
                    await self.refresh(identity_key)

    def import_snapshot(self, snapshot: bytes) -> int:
        """A just-linked device takes the account's rows (once, before it runs)."""
        with self.db.transaction() as cur:
            return store.import_snapshot(cur, snapshot, self.megolm_pickle_key)

    def take_published(self, identity_key: bytes, payloads: list[bytes]) -> None:
        """What the bundle book's read of ``identity_key``'s bundle topic found (the
        light node returns each stored message to one read only): its verified
        rosters and its active devices' bundles are kept as :meth:`refresh` would."""
        now = self.clock()
        rosters: list[DeviceRoster] = []
        bundles: list[DeviceBundle] = []
        for payload in payloads:
            try:
                rosters.append(decode_published_roster(payload, identity_key))
                continue
            except InvalidDeviceRecord:
                pass
            try:
                bundles.append(decode_published_bundle(payload, identity_key, now))
            except InvalidBundle:
                continue
        for roster in sorted(rosters, key=lambda r: r.serial):
            self._take_roster(roster)
        for bundle in bundles:
            self._keep_bundle(bundle)

    async def refresh(
        self, identity_key: bytes, device_key: bytes | None = None
    ) -> DeviceRoster | None:
        """Read ``identity_key``'s bundle topic (rate limited): the newest roster
        and its devices' bundles. Forged, stale and older payloads are skipped.
        The bundle book also gets the verified bundles of an identity without a
        roster, and ``device_key``'s unless revoked (it wins a tie): a device
        restored from the phrase on an account that never linked is certified by
        its bundle alone, and the light node's history is deduplicated (the
        bundle book's own read of the topic right after would find nothing)."""
        now = self.clock()
        if now - self._asked.get(identity_key, -REFETCH_AFTER_S) < REFETCH_AFTER_S:
            with self.db.transaction() as cur:
                return store.get_roster(cur, identity_key)
        self._asked[identity_key] = now
        with self.db.transaction() as cur:
            store.touch_roster(cur, identity_key, int(now * 1000))
        rosters: list[DeviceRoster] = []
        bundles: list[DeviceBundle] = []
        try:
            async for item in self.transport.history(
                [bundle_topic(identity_key)], int((now - LOOKBACK_S) * 1e9)
            ):
                try:
                    rosters.append(decode_published_roster(item.message.payload, identity_key))
                    continue
                except InvalidDeviceRecord:
                    pass
                try:
                    bundles.append(decode_published_bundle(item.message.payload, identity_key, now))
                except InvalidBundle:
                    continue
        except NetworkError as exc:
            logger.info("looking up a device roster failed: %s", exc)
        for roster in sorted(rosters, key=lambda r: r.serial):
            self._take_roster(roster)
        for bundle in bundles:
            self._keep_bundle(bundle)
        with self.db.transaction() as cur:
            held = store.get_roster(cur, identity_key)
        if self.remember_bundle is not None:
            for bundle in bundles:
                asked = bundle.curve25519 == device_key
                if held is None or (asked and not held.is_revoked(bundle.curve25519)):
                    self.remember_bundle(bundle, asked)
        return held


def _reacted(reactions: dict[str, list[str]], body: env.Reaction) -> dict[str, list[str]]:
    """``reactions`` after our reaction ``body`` (as conversations applies it: "me")."""
    out = {k: list(v) for k, v in reactions.items()}
    people = out.setdefault(body.emoji, [])
    if body.remove and "me" in people:
        people.remove("me")
    elif not body.remove and "me" not in people:
        people.append("me")
    return {k: v for k, v in out.items() if v}


def _secret_hash(secret: bytes) -> bytes:
    return hashlib.sha256(b"boxless used pairing\x00" + secret).digest()


def _platform() -> str:
    return (platform.system() or "unknown")[:32]


# ------------------------------------------------------------ the new device


async def receive_link(
    transport: Transport,
    pending: PendingDevice,
    clock: Callable[[], float],
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> Linked:
    """Wait on the pairing topic (live and store history) until the transfer is
    complete; raise PairingRefused when the offer expires first."""
    offer = pending.offer
    receiver = PairingReceiver(pending)
    await transport.subscribe([offer.topic])
    since = int((offer.expires_at - 2 * 600) * 1e9)

    def take(raw: bytes) -> Linked | None:
        try:
            got = receiver.receive(raw, clock())
        except PairingRefused as exc:
            if clock() >= offer.expires_at:
                raise
            logger.info("ignored a pairing message: %s", exc)
            return None
        if isinstance(got, Linked):
            return got
        if got is not None:
            on_progress(got.done, got.total)
        return None

    async with transport.incoming() as incoming:
        async for item in transport.history([offer.topic], since):
            if (done := take(item.message.payload)) is not None:
                return done
        with trio.fail_after(max(0.0, offer.expires_at - clock())):
            async for item in incoming:
                if item.message.content_topic != offer.topic:
                    continue
                if (done := take(item.message.payload)) is not None:
                    return done
    raise PairingRefused("the network stopped before the transfer finished; link again")


def create_linked_account(
    home: Path, passphrase: str, linked: Linked, now: float, kdf: KdfParams = DEFAULT_KDF
) -> LocalAccount:
    """The new device's account: the identity and this (now certified) device; the
    snapshot goes in with :meth:`DeviceManager.import_snapshot` once a Client migrated it."""
    db_path = user_db_path(home)
    if account_exists(home):
        raise UserDBExists(f"{home} already has a Boxless account; link into a new --home")
    db = create_user_db(db_path, passphrase, kdf=kdf)
    try:
        keystore = Keystore(db)
        profile = Profile(display_name=linked.account_name, updated_at=int(now))
        with db.transaction():
            keystore.save_identity(linked.identity, now)
            keystore.save_device(linked.device, now)
            save_profile(db, profile)
    except BaseException:
        db.close()
        remove_user_db(db_path)
        raise
    return LocalAccount(db, keystore, linked.identity, linked.device, profile)


def published_bundle(account: LocalAccount, now: float) -> WakuMessage:
    """Our device's bundle as published on our bundle topic (for a just-linked device)."""
    bundle = account.device.bundle(now)
    return WakuMessage(
        payload=encode_published_bundle(bundle),
        content_topic=bundle_topic(account.identity.public_key),
        timestamp=int(now * 1e9),
    )
