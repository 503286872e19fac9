"""Sealed envelope v2: a pairwise key for conversations whose topic already names the pair.

Theory of operation
-------------------
Version 1 (:mod:`boxless.crypto.sealed`) seals every message with HPKE: a
fresh X25519 key pair and two X25519 operations per message, which cost more
than the Olm step inside. Version 2 keeps the same content (a padded
:class:`~boxless.wire.envelope_pb2.SealedContent`, so the sender's identity,
its device and the Olm message stay hidden from relays and stores) and the
same outer message (:class:`~boxless.wire.envelope_pb2.SealedEnvelope`,
``version = 2``, no ephemeral key), but encrypts under a key the two devices
share:

* ``S = X25519(my sealing key, peer's sealing key)``, computed once per peer
  device and kept in memory only (never on disk, never logged);
* one key per direction: ``K(a→b) = HKDF-SHA256(S, salt = "", info =
  "boxless sealed sender v2" ‖ sealing key of a ‖ sealing key of b)``, so
  the two directions never share a key and a message cannot be reflected back
  to its sender;
* per message a random 16-byte ``seed`` in the clear, a one-use key
  ``HMAC-SHA256(K(a→b), seed)`` and ChaCha20-Poly1305 with a zero nonce (the
  key is never reused: no nonce bookkeeping that a kill -9 could roll back,
  and no 2^32-message limit of random 96-bit nonces);
* associated data ``0x02 ‖ content topic``: the envelope opens only on the
  topic it was sealed for.

Wire: ``SealedEnvelope{version: 2, ciphertext: seed ‖ AEAD(padded content)}``.

Where it is used, and what an observer learns
---------------------------------------------
Only on a 1:1 *conversation* topic (``/boxless/1/chat-…/proto``): that topic
is derived from the pair's own secret, so every message on it already belongs
to that pair, and the recipient finds the key from the topic (the contact
whose conversation it is) -- there is no key id or tag on the wire, nothing
to link beyond what the topic links. On shared topics (contact-request
partitions, where groups' direct messages also travel) v1 stays: a pairwise
tag there would link messages of one pair that today are unlinkable.

Only once the recipient has shown it can open it: the sender uses v2 for a
device only after it authenticated a message from that device *on that
conversation topic* (:meth:`PairwiseSealer.confirm`, in memory, so after a
restart the first messages go in v1 until the peer writes -- a delivery
receipt is enough). Such a message was encrypted to our current device from
the peer's contact entry for us, so the peer resolves our device, and its
certified sealing key, from that topic. And only for Olm *normal* messages:
pre-key messages (first contact, a new session, a reset) use v1, whose
opening needs nothing but the recipient's own key.

What v2 gives up against v1: v1's ephemeral key means that a sender whose
sealing key later leaks has not exposed the envelopes it sent; with v2 either
side's sealing key opens the pair's envelopes (the sender's identity and the
Olm ciphertext inside -- not the text: Olm keeps its own forward secrecy and
post-compromise security). Whoever holds either sealing key holds that
device, its database and the conversation topic anyway. As in v1, opening
proves nothing about the sender by itself: the claimed sender must be the
topic's contact (checked by the caller), and the Olm decryption that follows
proves the device. Replays: an envelope replayed under a new Waku hash opens,
then Olm refuses its spent message key (:class:`DuplicateMessage`), as in v1.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.crypto.errors import CryptoUsageError, TamperedMessage
from boxless.crypto.interfaces import check_key
from boxless.crypto.olm_sessions import OlmCiphertext
from boxless.crypto.sealed import (
    AEAD_TAG_BYTES,
    BUCKETS,
    MAX_ENVELOPE_BYTES,
    OpenedEnvelope,
    SealingKeyPair,
    content_bytes,
    pad,
    parse_content,
    unpad,
)
from boxless.errors import DecodeError
from boxless.wire import envelope_pb2

PAIRWISE_VERSION: Final = 2
SEED_BYTES: Final = 16
MAX_PAIRS: Final = 4096
"""Pair keys kept in memory (least recently used dropped; recomputed on need)."""
_INFO: Final = b"boxless sealed sender v2"
_NONCE: Final = bytes(12)  # every message key is used once: see the module docstring
_CIPHERTEXT_SIZES: Final = frozenset(SEED_BYTES + b + AEAD_TAG_BYTES for b in BUCKETS)
# A canonical SealedEnvelope starts with its version field: tag 0x08, then the varint.
_V2_PREFIX: Final = bytes((0x08, PAIRWISE_VERSION))


def is_pairwise(data: bytes) -> bool:
    """True if ``data`` announces a v2 envelope (a peek to choose the parser:
    whichever parser gets the bytes validates them in full)."""
    return data[:2] == _V2_PREFIX


@dataclass(frozen=True, slots=True)
class _Pair:
    peer_sealing_key: bytes = field(repr=False)
    send_key: bytes = field(repr=False)  # K(me → peer)
    receive_key: bytes = field(repr=False)  # K(peer → me)
    # HMAC-SHA256 keyed with send_key / receive_key, before any message: each
    # message key is a copy of it fed the seed (``hmac.digest`` set the key up
    # again per message: ~12 µs of a ~230 µs sealed ping-pong message)
    send_mac: hmac.HMAC = field(init=False, repr=False, compare=False)
    receive_mac: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "send_mac", hmac.new(self.send_key, digestmod=hashlib.sha256))
        object.__setattr__(
            self, "receive_mac", hmac.new(self.receive_key, digestmod=hashlib.sha256)
        )


class PairwiseSealer:
    """This device's v2 envelopes: pair keys per peer device, cached in memory.

    The cache is keyed by the peer's device (Curve25519) key and holds that
    device's sealing key: the device certificate binds the two, so the entry
    only changes if the caller hands in a different sealing key for the device
    (then the pair is recomputed). ``repr`` shows no key.
    """

    def __init__(self, keys: SealingKeyPair, max_pairs: int = MAX_PAIRS) -> None:
        if max_pairs < 1:
            raise CryptoUsageError("max_pairs must be at least 1")
        self._keys = keys
        self._max_pairs = max_pairs
        self._pairs: OrderedDict[bytes, _Pair] = OrderedDict()
        # (peer device key, topic) pairs seen to work; see confirm()
        self._confirmed: OrderedDict[tuple[bytes, str], None] = OrderedDict()

    def __repr__(self) -> str:
        return f"<PairwiseSealer pairs={len(self._pairs)}>"

    def seal(
        self,
        peer_device_key: bytes,
        peer_sealing_key: bytes,
        topic: str,
        *,
        sender_identity_key: bytes,
        sender_device_key: bytes,
        ciphertext: OlmCiphertext,
    ) -> bytes:
        """A v2 envelope of ``ciphertext`` for the peer device, bound to ``topic``."""
        pair = self._pair(peer_device_key, peer_sealing_key)
        content = content_bytes(sender_identity_key, sender_device_key, ciphertext)
        seed = secrets.token_bytes(SEED_BYTES)
        sealed = _aead(pair.send_mac, seed).encrypt(_NONCE, pad(content), _aad(topic))
        return envelope_pb2.SealedEnvelope(
            version=PAIRWISE_VERSION, ciphertext=seed + sealed
        ).SerializeToString()

    def open(
        self, peer_device_key: bytes, peer_sealing_key: bytes, topic: str, data: bytes
    ) -> OpenedEnvelope:
        """Open a v2 envelope the peer device sealed to us on ``topic``.

        Raises :class:`~boxless.errors.DecodeError` for malformed bytes and
        :class:`TamperedMessage` when authentication fails (altered, another
        topic, another pair, or our own message reflected) or the content names
        another device than the peer's; nothing else for any input.
        """
        envelope = parse_pairwise(data)
        try:
            pair = self._pair(peer_device_key, peer_sealing_key)
        except CryptoUsageError:  # the peer's own bundle holds an unusable key
            raise TamperedMessage("pairwise envelope from a device with an unusable key") from None
        seed, sealed = envelope.ciphertext[:SEED_BYTES], envelope.ciphertext[SEED_BYTES:]
        try:
            padded = _aead(pair.receive_mac, seed).decrypt(_NONCE, sealed, _aad(topic))
        except InvalidTag:
            raise TamperedMessage(
                "pairwise envelope failed authentication (altered, another topic, "
                "or not from this contact's device)"
            ) from None
        opened = parse_content(unpad(padded))
        if opened.sender_device_key != peer_device_key:
            raise TamperedMessage("pairwise envelope names another device than its pair's")
        return opened

    def confirm(self, peer_device_key: bytes, topic: str) -> None:
        """The peer device wrote to us on this conversation topic (authenticated):
        it knows our device, so v2 may be used to it there."""
        key = (peer_device_key, topic)
        self._confirmed[key] = None
        self._confirmed.move_to_end(key)
        while len(self._confirmed) > self._max_pairs:
            self._confirmed.popitem(last=False)

    def confirmed(self, peer_device_key: bytes, topic: str) -> bool:
        """Whether :meth:`confirm` was told of this device on this topic (since start)."""
        return (peer_device_key, topic) in self._confirmed

    def sealing_key_of(self, peer_device_key: bytes) -> bytes | None:
        """The sealing key last used with this device, if its pair is cached."""
        pair = self._pairs.get(peer_device_key)
        return None if pair is None else pair.peer_sealing_key

    def forget(self, peer_device_key: bytes) -> None:
        """Drop the pair key of a device (a blocked or removed contact)."""
        self._pairs.pop(peer_device_key, None)
        for key in [key for key in self._confirmed if key[0] == peer_device_key]:
            del self._confirmed[key]

    def _pair(self, peer_device_key: bytes, peer_sealing_key: bytes) -> _Pair:
        pair = self._pairs.get(peer_device_key)
        if pair is not None and pair.peer_sealing_key == peer_sealing_key:
            self._pairs.move_to_end(peer_device_key)
            return pair
        check_key("peer device key", peer_device_key)
        pair = self._derive(check_key("peer sealing key", peer_sealing_key))
        self._pairs[peer_device_key] = pair
        while len(self._pairs) > self._max_pairs:
            self._pairs.popitem(last=False)
        return pair

    def _derive(self, peer_sealing_key: bytes) -> _Pair:
        mine = self._keys.public_bytes
        try:
            shared = self._keys.exchange(X25519PublicKey.from_public_bytes(peer_sealing_key))
        except ValueError:  # a low-order point: the shared secret would be all zeros
            raise CryptoUsageError("the peer's sealing key is not a usable X25519 key") from None
        return _Pair(
            peer_sealing_key,
            send_key=_direction_key(shared, mine, peer_sealing_key),
            receive_key=_direction_key(shared, peer_sealing_key, mine),
        )


def parse_pairwise(data: bytes) -> envelope_pb2.SealedEnvelope:
    """Parse and check the framing of a v2 envelope (:class:`DecodeError` if malformed)."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise DecodeError("sealed envelope is larger than the largest bucket")
    envelope = envelope_pb2.SealedEnvelope()
    try:
        envelope.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError("sealed envelope is not valid protobuf") from None
    if envelope.version != PAIRWISE_VERSION:
        raise DecodeError("not a pairwise (v2) sealed envelope")
    if envelope.ephemeral_key:
        raise DecodeError("a pairwise sealed envelope carries no ephemeral key")
    if len(envelope.ciphertext) not in _CIPHERTEXT_SIZES:
        raise DecodeError("pairwise sealed envelope ciphertext is not a padding bucket")
    return envelope


def _direction_key(shared: bytes, sender_key: bytes, recipient_key: bytes) -> bytes:
    return HKDF(SHA256(), 32, salt=None, info=_INFO + sender_key + recipient_key).derive(shared)


def _aead(direction_mac: hmac.HMAC, seed: bytes) -> ChaCha20Poly1305:
    """The one-use AEAD of a message: key ``HMAC-SHA256(K(a→b), seed)``."""
    mac = direction_mac.copy()
    mac.update(seed)
    return ChaCha20Poly1305(mac.digest())


def _aad(topic: str) -> bytes:
    return _V2_PREFIX[1:] + topic.encode()
