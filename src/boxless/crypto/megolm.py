"""Megolm group sessions, pickled in the user's database.

Theory of operation
-------------------
Every member *device* of a group has its own outbound Megolm session for that
group. A message is encrypted once with it (:meth:`GroupSessions.encrypt`,
O(1) whatever the group's size) and published once on the group's content
topic; every member holding that session's key decrypts it. The key travels
to each member device once per session, inside an Olm 1:1 message: that is
the O(n) part, paid when a session starts, not per message.

:meth:`GroupSessions.outbound` is the one place that decides about sessions.
Called with the group's current member devices (Curve25519 device keys, this
device excluded), it:

* **rotates** -- starts a new session and shares its key at index 0 with every
  member device -- when there is no session yet, when a device it was shared
  with is no longer a member (a removed member must not read what follows: it
  keeps the old key, which decrypts nothing new), or when the session is
  :class:`RotationPolicy`-old (1,000 messages or 7 days by default);
* otherwise shares the current session with devices that **joined** since it
  was shared, at the session's *current* index: a late joiner cannot read
  what was sent before it joined. With ``share_history=True`` (a group
  setting) joiners instead get exports (``export_at``) of this device's
  sessions for the group from their first index, the current one included.

:meth:`GroupSessions.encrypt` never rotates (it has no member list, so it can
not share a new key): when the session is missing or due, it raises
:class:`RotationNeeded` and the caller runs :meth:`outbound` and sends the
shares first. So the client's loop per group message is::

    try:
        ct = groups.encrypt(group_id, plaintext, now)
    except RotationNeeded:
        _, shares = groups.outbound(group_id, member_devices, now)
        send_over_olm(shares)            # each share.payload to share.device
        ct = groups.encrypt(group_id, plaintext, now)
    publish(group_topic, encode_group_message(ct))

and :meth:`outbound` runs again on every membership change.

Receiving: :meth:`GroupSessions.add_key_share` stores a share that arrived
over Olm from ``sender_device`` (the Olm session proves that device sent it).
A session id belongs to one sender device per group; a second device
claiming it is refused, so a member cannot pass someone else's session off as
its own. :meth:`GroupSessions.decrypt` finds the session by ``session_id``
(the group message carries no sender), refuses an index already decrypted
(:class:`DuplicateMessage`: Megolm itself would decrypt it again), and names
the sender in its result (authenticating before the replay check, so a forged
copy is :class:`TamperedMessage`). Failures: no such session
:class:`UnknownGroupSession` (ask the sender to re-share), an index before the
key's first index :class:`MessageBeforeKeyShare` (sent before we joined),
altered or forged :class:`TamperedMessage`. A failed decrypt changes nothing.

Plaintexts are padded to a size bucket before encryption, so the ciphertext
shows only the bucket: :data:`GROUP_BUCKETS`, the sealed envelope's buckets
with 4 KiB steps between 16 and 64 KiB. Group messages carry SDS's ~19 KB of
causal history and bloom filter, so with the envelope's buckets alone nearly
every one was padded to 64 KiB (3.3x its size); now a short text is ~20 KiB.

Persistence and transactions
----------------------------
As in :mod:`boxless.crypto.olm_sessions`: no cache; each call unpickles what
it needs and writes back through the cursor of one ``db.transaction()``
block, which nests as a savepoint in the caller's transaction. Each call
takes the database transaction first, then the manager's lock.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Final

import vodozemac
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.crypto.errors import (
    CryptoPeerError,
    CryptoStateError,
    CryptoUsageError,
    DuplicateMessage,
    TamperedMessage,
)
from boxless.crypto.interfaces import KEY_BYTES, Cursor, TransactionalDB, check_key
from boxless.crypto.olm_sessions import PICKLE_KEY_BYTES, device_tag
from boxless.crypto.sealed import MAX_CONTENT_BYTES, pad, unpad
from boxless.errors import DecodeError, ValidationError
from boxless.wire import megolm_pb2

log = logging.getLogger(__name__)

WIRE_VERSION: Final = 1
SESSION_KEY_BYTES: Final = 229  # version 2, index u32, ratchet 128, Ed25519 key, signature
EXPORTED_KEY_BYTES: Final = 165  # version 1, index u32, ratchet 128, Ed25519 key
MAX_KEY_SHARE_BYTES: Final = 512
#: Padding buckets of group plaintexts (see the module doc); the largest is the envelope's.
GROUP_BUCKETS: Final = (256, 1024, 4096, 16384, *range(20480, 65537, 4096), 262144)
#: The largest padded plaintext, plus Megolm's framing, MAC and signature, plus protobuf.
MAX_GROUP_MESSAGE_BYTES: Final = MAX_CONTENT_BYTES + 1 + 1024
#: History sharing hands a joiner at most this many of our past sessions per group.
MAX_HISTORY_SESSIONS: Final = 100

# vodozemac 0.10.0 reports this failure only through the exception text;
# test_megolm.py fails loudly if it changes.
_UNKNOWN_INDEX_TEXT: Final = "unknown message index"


class UnknownGroupSession(CryptoPeerError):
    """No key for this group message's session: ask its sender to share it again.

    Nothing was decrypted. Typical causes: the key share is still in flight
    (Olm and the group topic are separate paths), this device lost its state,
    or the sender is not (or no longer) a member sharing with us.
    """


class MessageBeforeKeyShare(CryptoPeerError):
    """The session's key we hold starts after this message: it predates our join.

    Expected for a late joiner in a group that does not share history; the
    sender will not share an earlier index then, so do not ask again.
    """


class RotationNeeded(CryptoUsageError):
    """:meth:`GroupSessions.encrypt` has no usable session: call ``outbound()`` first."""


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """When an outbound session is replaced even though no member left."""

    max_messages: int = 1000
    max_age_seconds: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_age_seconds <= 0:
            raise CryptoUsageError("a rotation policy needs max_messages >= 1 and a positive age")


@dataclass(frozen=True, slots=True)
class OutboundState:
    """What :meth:`GroupSessions.outbound` left in place (no key material)."""

    session_id: str = field(repr=False)
    message_index: int
    created_at: float
    rotated: bool
    reason: str  # "new", "member removed", "message count", "age", or "" (kept)


@dataclass(frozen=True, slots=True)
class KeyShare:
    """An encoded :class:`GroupKeyShare` for one member device: Olm-encrypt it to ``device``."""

    device: bytes = field(repr=False)  # the member device's Curve25519 key
    payload: bytes = field(repr=False)  # GroupKeyShare protobuf bytes: secret
    first_index: int
    exported: bool


@dataclass(frozen=True, slots=True)
class GroupKeyShare:
    """A decoded key share (see ``wire/megolm.proto``)."""

    group_id: bytes = field(repr=False)
    session_id: str = field(repr=False)
    session_key: bytes = field(repr=False)
    first_index: int
    exported: bool


@dataclass(frozen=True, slots=True)
class GroupCiphertext:
    """One Megolm message and the id of the session that made it."""

    session_id: str = field(repr=False)
    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.body:
            raise CryptoUsageError("a Megolm message body is never empty")


@dataclass(frozen=True, slots=True)
class GroupPlaintext:
    """A decrypted group message and who sent it (the device that shared the session)."""

    plaintext: bytes = field(repr=False)
    message_index: int
    sender_device: bytes = field(repr=False)
    sender_identity: bytes = field(repr=False)


# ---------------------------------------------------------------- codecs


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def session_id_bytes(session_id: str) -> bytes:
    """The 32 raw bytes of a vodozemac session id (unpadded base64 of a public key)."""
    try:
        raw = _unb64(session_id)
    except ValueError:
        raise CryptoUsageError("a Megolm session id is base64 of 32 bytes") from None
    return check_key("Megolm session id", raw)


def encode_key_share(share: GroupKeyShare) -> bytes:
    """The protobuf bytes of a key share (to be sent inside an Olm message only)."""
    return megolm_pb2.GroupKeyShare(
        version=WIRE_VERSION,
        group_id=check_key("group id", share.group_id),
        session_id=session_id_bytes(share.session_id),
        session_key=share.session_key,
        first_index=share.first_index,
        exported=share.exported,
    ).SerializeToString()


def decode_key_share(data: bytes) -> GroupKeyShare:
    """Decode a key share; :class:`~boxless.errors.DecodeError` for anything malformed.

    Checks shape only (sizes, version, that ``first_index`` is the key's own
    index); :meth:`GroupSessions.add_key_share` checks the key makes that session.
    """
    if len(data) > MAX_KEY_SHARE_BYTES:
        raise DecodeError("group key share is too large")
    msg = megolm_pb2.GroupKeyShare()
    try:
        msg.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError("group key share is not valid protobuf") from None
    if msg.version != WIRE_VERSION:
        raise DecodeError("unsupported group key share version")
    if len(msg.group_id) != KEY_BYTES or len(msg.session_id) != KEY_BYTES:
        raise DecodeError("group key share has a malformed group or session id")
    key = msg.session_key
    length, key_version = (EXPORTED_KEY_BYTES, 1) if msg.exported else (SESSION_KEY_BYTES, 2)
    if len(key) != length or key[0] != key_version:
        raise DecodeError("group key share holds a malformed session key")
    if int.from_bytes(key[1:5], "big") != msg.first_index:
        raise DecodeError("group key share's first index disagrees with its key")
    if key[5 + 128 : 5 + 128 + KEY_BYTES] != msg.session_id:
        raise DecodeError("group key share's session id disagrees with its key")
    return GroupKeyShare(
        group_id=msg.group_id,
        session_id=_b64(msg.session_id),
        session_key=key,
        first_index=msg.first_index,
        exported=msg.exported,
    )


def encode_group_message(ct: GroupCiphertext) -> bytes:
    """The payload of the Waku message published on the group's topic."""
    return megolm_pb2.GroupMessage(
        version=WIRE_VERSION, session_id=session_id_bytes(ct.session_id), ciphertext=ct.body
    ).SerializeToString()


def decode_group_message(data: bytes) -> GroupCiphertext:
    """Decode a group message payload; :class:`~boxless.errors.DecodeError` if malformed."""
    if len(data) > MAX_GROUP_MESSAGE_BYTES:
        raise DecodeError("group message is too large")
    msg = megolm_pb2.GroupMessage()
    try:
        msg.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError("group message is not valid protobuf") from None
    if msg.version != WIRE_VERSION:
        raise DecodeError("unsupported group message version")
    if len(msg.session_id) != KEY_BYTES or not msg.ciphertext:
        raise DecodeError("group message has a malformed session id or no ciphertext")
    return GroupCiphertext(session_id=_b64(msg.session_id), body=msg.ciphertext)


# ---------------------------------------------------------------- the manager


@dataclass(frozen=True, slots=True)
class _Outbound:
    session_id: str
    pickle: str = field(repr=False)
    created_at: float
    messages_sent: int


@dataclass(frozen=True, slots=True)
class _Inbound:
    sender_key: bytes = field(repr=False)
    session_id: str = field(repr=False)
    pickle: str = field(repr=False)
    first_known_index: int
    sender_identity: bytes = field(repr=False)


class GroupSessions:
    """This device's Megolm sessions for every group it is in. See the module docstring."""

    def __init__(
        self,
        db: TransactionalDB,
        pickle_key: bytes,
        *,
        policy: RotationPolicy | None = None,
    ) -> None:
        if not isinstance(pickle_key, bytes) or len(pickle_key) != PICKLE_KEY_BYTES:
            raise CryptoUsageError(f"the pickle key must be {PICKLE_KEY_BYTES} bytes")
        self._db = db
        self._pickle_key = pickle_key
        self.policy = policy or RotationPolicy()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<GroupSessions at {id(self):#x}>"

    def transaction(self) -> AbstractContextManager[Cursor]:
        """The database's transaction: wrap a call and your own writes in it."""
        return self._db.transaction()

    # -- sending

    def outbound(
        self,
        group_id: bytes,
        member_devices: Iterable[bytes],
        now: float,
        *,
        share_history: bool = False,
    ) -> tuple[OutboundState, list[KeyShare]]:
        """Rotate or extend this device's session for the group; return the shares to send.

        ``member_devices``: the Curve25519 keys of every current member device
        except this one (this account's other devices included). The shares
        are committed as sent: deliver each over Olm in the same transaction
        as your outbox write, or they are lost with it.
        """
        check_key("group id", group_id)
        devices = {check_key("member device key", d) for d in member_devices}
        with self._locked() as cur:
            current = self._current(cur, group_id)
            shared: set[bytes] = set()
            reason = "new"
            if current is not None:
                shared = self._shared_with(cur, group_id, current.session_id)
                reason = self._rotation_reason(current, shared - devices, now)
            if reason:
                session, created_at = self._rotate(cur, group_id, current, now), now
                targets = devices
            else:
                assert current is not None
                session, created_at = self._unpickle_outbound(current.pickle), current.created_at
                targets = devices - shared
            shares = self._shares(cur, group_id, session, targets, devices - shared, share_history)
            self._record_shared(cur, group_id, session.session_id, targets)
        if reason:
            log.info(
                "group %s: new megolm session (%s), key shared with %d devices",
                device_tag(group_id),
                reason,
                len(targets),
            )
        elif targets:
            log.info(
                "group %s: megolm session shared with %d joined devices",
                device_tag(group_id),
                len(targets),
            )
        state = OutboundState(
            session_id=session.session_id,
            message_index=session.message_index,
            created_at=created_at,
            rotated=bool(reason),
            reason=reason,
        )
        return state, shares

    def encrypt(self, group_id: bytes, plaintext: bytes, now: float) -> GroupCiphertext:
        """Encrypt once for the whole group: O(1) in the number of members.

        Raises :class:`RotationNeeded` when there is no session or it is due
        for rotation (:class:`RotationPolicy`); nothing is encrypted then.
        """
        check_key("group id", group_id)
        padded = pad(plaintext, GROUP_BUCKETS)
        with self._locked() as cur:
            current = self._current(cur, group_id)
            if current is None:
                raise RotationNeeded("no outbound group session: call outbound() first")
            if self._rotation_reason(current, set(), now):
                raise RotationNeeded("the outbound group session is due for rotation")
            session = self._unpickle_outbound(current.pickle)
            message = session.encrypt(padded)
            cur.execute(
                "UPDATE crypto_megolm_outbound SET pickle = ?, messages_sent = ?"
                " WHERE group_id = ? AND session_id = ?",
                (
                    session.pickle(self._pickle_key),
                    session.message_index,
                    group_id,
                    current.session_id,
                ),
            )
        return GroupCiphertext(session_id=current.session_id, body=message.to_bytes())

    def reshare(self, group_id: bytes, session_id: bytes, device: bytes) -> KeyShare | None:
        """Share this device's current session again with a member device it was shared
        with before (whose copy was lost): at the session's current index, so it reads
        what follows, nothing earlier. None if ``session_id`` (raw 32 bytes) is not the
        current session or was never shared with ``device``."""
        with self._locked() as cur:
            current = self._current(cur, group_id)
            if current is None or session_id_bytes(current.session_id) != session_id:
                return None
            if device not in self._shared_with(cur, group_id, current.session_id):
                return None
            session = self._unpickle_outbound(current.pickle)
            shares = self._shares(cur, group_id, session, {device}, set(), False)
        return shares[0]

    # -- receiving

    def add_key_share(
        self, sender_identity: bytes, sender_device: bytes, payload: bytes
    ) -> GroupKeyShare:
        """Store a key share that arrived over Olm from ``sender_device``.

        Raises :class:`~boxless.errors.DecodeError` for a malformed share and
        :class:`~boxless.errors.ValidationError` when the session belongs to
        another device of the group (or to this one), or the sender's identity changed.
        """
        share = decode_key_share(payload)
        self.add_inbound(
            share.group_id,
            sender_identity,
            sender_device,
            share.session_key,
            exported=share.exported,
        )
        return share

    def add_inbound(
        self,
        group_id: bytes,
        sender_identity: bytes,
        sender_device: bytes,
        session_key: bytes,
        *,
        exported: bool = False,
    ) -> str:
        """Store a session key (raw SessionKey bytes, or ExportedSessionKey with ``exported``).

        Returns the session id. A key we already hold is kept unless the new
        one starts earlier (a history export after a current-index share).
        """
        check_key("group id", group_id)
        check_key("sender identity key", sender_identity)
        check_key("sender device key", sender_device)
        session = self._import(session_key, exported=exported)
        session_id = session.session_id
        with self._locked() as cur:
            cur.execute(
                "SELECT 1 FROM crypto_megolm_outbound WHERE group_id = ? AND session_id = ?",
                (group_id, session_id),
            )
            if cur.fetchone() is not None:
                raise ValidationError("a group session of this device was shared back to it")
            existing = self._inbound(cur, group_id, session_id)
            if existing is not None:
                if existing.sender_key != sender_device:
                    raise ValidationError("a group session was shared by a second device")
                if existing.sender_identity != sender_identity:
                    raise ValidationError("a group session's sender changed identity")
                if session.first_known_index >= existing.first_known_index:
                    return session_id
                cur.execute(
                    "UPDATE crypto_megolm_inbound SET pickle = ?, first_known_index = ?,"
                    " exported = ? WHERE group_id = ? AND session_id = ?",
                    (
                        session.pickle(self._pickle_key),
                        session.first_known_index,
                        int(exported),
                        group_id,
                        session_id,
                    ),
                )
            else:
                cur.execute(
                    "INSERT INTO crypto_megolm_inbound (group_id, sender_key, session_id,"
                    " pickle, first_known_index, sender_identity, exported)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        group_id,
                        sender_device,
                        session_id,
                        session.pickle(self._pickle_key),
                        session.first_known_index,
                        sender_identity,
                        int(exported),
                    ),
                )
        log.debug(
            "group %s: megolm key from device %s", device_tag(group_id), device_tag(sender_device)
        )
        return session_id

    def decrypt(
        self, group_id: bytes, sender_device: bytes | None, ciphertext: GroupCiphertext
    ) -> GroupPlaintext:
        """Decrypt a group message; ``sender_device`` None means "whoever shared the session".

        With ``sender_device`` given, a session shared by another device is
        :class:`UnknownGroupSession`. Raises :class:`DuplicateMessage`,
        :class:`TamperedMessage`, :class:`MessageBeforeKeyShare`,
        :class:`UnknownGroupSession` or :class:`~boxless.errors.DecodeError`;
        after any of them the stored state is as it was.
        """
        check_key("group id", group_id)
        if sender_device is not None:
            check_key("sender device key", sender_device)
        try:
            message = vodozemac.MegolmMessage.from_bytes(ciphertext.body)
        except vodozemac.DecodeException:
            raise DecodeError("malformed Megolm message") from None
        with self._locked() as cur:
            row = self._inbound(cur, group_id, ciphertext.session_id)
            if row is None or (sender_device is not None and row.sender_key != sender_device):
                raise UnknownGroupSession("no key for this group message's session")
            session = self._unpickle_inbound(row.pickle)
            try:
                decrypted = session.decrypt(message)
            except vodozemac.MegolmDecryptionException as exc:
                if _UNKNOWN_INDEX_TEXT in str(exc):
                    raise MessageBeforeKeyShare(
                        "group message is older than the key this device was given"
                    ) from None
                raise TamperedMessage("group message failed authentication") from None
            # Authenticated first, so a forged copy is reported as tampered, not a replay.
            cur.execute(
                "INSERT OR IGNORE INTO crypto_megolm_seen (group_id, session_id, message_index)"
                " VALUES (?, ?, ?)",
                (group_id, row.session_id, decrypted.message_index),
            )
            if cur.rowcount == 0:
                raise DuplicateMessage("group message already decrypted")
            plaintext = unpad(decrypted.plaintext)  # authenticated: bad padding is the sender's
        return GroupPlaintext(
            plaintext=plaintext,
            message_index=decrypted.message_index,
            sender_device=row.sender_key,
            sender_identity=row.sender_identity,
        )

    def forget_group(self, group_id: bytes) -> None:
        """Delete every session of the group (after leaving it)."""
        check_key("group id", group_id)
        with self._locked() as cur:
            for table in (
                "crypto_megolm_outbound",
                "crypto_megolm_outbound_devices",
                "crypto_megolm_inbound",
                "crypto_megolm_seen",
            ):
                cur.execute(f"DELETE FROM {table} WHERE group_id = ?", (group_id,))
        log.info("group %s: megolm sessions forgotten", device_tag(group_id))

    # -- outbound helpers

    def _rotation_reason(self, current: _Outbound, removed: set[bytes], now: float) -> str:
        if removed:
            return "member removed"
        if current.messages_sent >= self.policy.max_messages:
            return "message count"
        if now - current.created_at >= self.policy.max_age_seconds:
            return "age"
        return ""

    def _rotate(
        self, cur: Cursor, group_id: bytes, current: _Outbound | None, now: float
    ) -> vodozemac.GroupSession:
        if current is not None:
            cur.execute(
                "UPDATE crypto_megolm_outbound SET current = 0, pickle = NULL"
                " WHERE group_id = ? AND session_id = ?",
                (group_id, current.session_id),
            )
        session = vodozemac.GroupSession()
        origin = vodozemac.InboundGroupSession(session.session_key)
        cur.execute(
            "INSERT INTO crypto_megolm_outbound (group_id, session_id, pickle, origin_pickle,"
            " created_at, messages_sent, current) VALUES (?, ?, ?, ?, ?, 0, 1)",
            (
                group_id,
                session.session_id,
                session.pickle(self._pickle_key),
                origin.pickle(self._pickle_key),
                now,
            ),
        )
        return session

    def _shares(
        self,
        cur: Cursor,
        group_id: bytes,
        session: vodozemac.GroupSession,
        targets: set[bytes],
        joiners: set[bytes],
        share_history: bool,
    ) -> list[KeyShare]:
        """The current key for every target; for joiners with history, exports instead."""
        current_share = encode_key_share(
            GroupKeyShare(
                group_id=group_id,
                session_id=session.session_id,
                session_key=_unb64(session.session_key.to_base64()),
                first_index=session.message_index,
                exported=False,
            )
        )
        history: list[tuple[int, bytes]] = []
        if share_history and joiners:
            history = self._history_exports(cur, group_id)
        shares: list[KeyShare] = []
        for device in sorted(targets):
            if device in joiners and history:
                shares.extend(KeyShare(device, payload, i, True) for i, payload in history)
            else:
                shares.append(KeyShare(device, current_share, session.message_index, False))
        return shares

    def _history_exports(self, cur: Cursor, group_id: bytes) -> list[tuple[int, bytes]]:
        """Exports of this device's sessions for the group from their first index, newest first."""
        cur.execute(
            "SELECT origin_pickle FROM crypto_megolm_outbound WHERE group_id = ?"
            " ORDER BY current DESC, created_at DESC LIMIT ?",
            (group_id, MAX_HISTORY_SESSIONS),
        )
        exports: list[tuple[int, bytes]] = []
        for (pickle,) in cur.fetchall():
            origin = self._unpickle_inbound(str(pickle))
            exported = origin.export_at(origin.first_known_index)
            if exported is None:  # pragma: no cover - the first known index always exports
                continue
            share = GroupKeyShare(
                group_id=group_id,
                session_id=origin.session_id,
                session_key=_unb64(exported.to_base64()),
                first_index=origin.first_known_index,
                exported=True,
            )
            exports.append((origin.first_known_index, encode_key_share(share)))
        return exports

    @staticmethod
    def _record_shared(cur: Cursor, group_id: bytes, session_id: str, devices: set[bytes]) -> None:
        cur.executemany(
            "INSERT OR IGNORE INTO crypto_megolm_outbound_devices"
            " (group_id, session_id, device_key) VALUES (?, ?, ?)",
            [(group_id, session_id, device) for device in devices],
        )

    # -- storage

    @contextmanager
    def _locked(self) -> Iterator[Cursor]:
        # Database transaction first, then the lock, as in olm_sessions.py.
        with self._db.transaction() as cur, self._lock:
            yield cur

    @staticmethod
    def _current(cur: Cursor, group_id: bytes) -> _Outbound | None:
        cur.execute(
            "SELECT session_id, pickle, created_at, messages_sent FROM crypto_megolm_outbound"
            " WHERE group_id = ? AND current = 1",
            (group_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return _Outbound(str(row[0]), str(row[1]), float(row[2]), int(row[3]))

    @staticmethod
    def _shared_with(cur: Cursor, group_id: bytes, session_id: str) -> set[bytes]:
        cur.execute(
            "SELECT device_key FROM crypto_megolm_outbound_devices"
            " WHERE group_id = ? AND session_id = ?",
            (group_id, session_id),
        )
        return {bytes(device) for (device,) in cur.fetchall()}

    @staticmethod
    def _inbound(cur: Cursor, group_id: bytes, session_id: str) -> _Inbound | None:
        cur.execute(
            "SELECT sender_key, session_id, pickle, first_known_index, sender_identity"
            " FROM crypto_megolm_inbound WHERE group_id = ? AND session_id = ?",
            (group_id, session_id),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return _Inbound(bytes(row[0]), str(row[1]), str(row[2]), int(row[3]), bytes(row[4]))

    @staticmethod
    def _import(session_key: bytes, *, exported: bool) -> vodozemac.InboundGroupSession:
        if not isinstance(session_key, bytes):
            raise CryptoUsageError("a Megolm session key is bytes")
        try:
            if exported:
                return vodozemac.InboundGroupSession.import_session(
                    vodozemac.ExportedSessionKey(_b64(session_key))
                )
            return vodozemac.InboundGroupSession(vodozemac.SessionKey(_b64(session_key)))
        except (vodozemac.SessionKeyDecodeException, vodozemac.DecodeException):
            raise DecodeError("malformed Megolm session key") from None

    def _unpickle_outbound(self, pickle: str) -> vodozemac.GroupSession:
        try:
            return vodozemac.GroupSession.from_pickle(pickle, self._pickle_key)
        except vodozemac.PickleException:
            raise CryptoStateError(
                "a stored Megolm session cannot be unpickled (wrong pickle key or corrupted row)"
            ) from None

    def _unpickle_inbound(self, pickle: str) -> vodozemac.InboundGroupSession:
        try:
            return vodozemac.InboundGroupSession.from_pickle(pickle, self._pickle_key)
        except vodozemac.PickleException:
            raise CryptoStateError(
                "a stored Megolm session cannot be unpickled (wrong pickle key or corrupted row)"
            ) from None
