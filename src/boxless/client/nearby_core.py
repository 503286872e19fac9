"""People Nearby, sans-IO: cells, presence cards, hellos, the bounded table.

Theory of operation
-------------------
Sharing makes a *session*: a fresh Ed25519 card key and X25519 box key that
exist only in memory and name nobody. The device's position is reduced to a
geohash **cell** of 5 characters (~4.9 x 4.9 km), whose topic the card is
published on, and an **area** of 6 characters (~1.2 x 0.6 km) inside it,
the finest thing a card says (distance buckets come from areas). A card lives
at most :data:`CARD_TTL_MS` (5 minutes) and is re-published every minute; a
*withdrawn* card (stop sharing) removes it at once.

Readers watch their cell and its 8 neighbours, so someone just across a
border is seen. Every card is attacker-controlled input: :func:`open_card`
checks size, fields, signature and times and raises :class:`Dropped` with a
reason; :class:`CardTable` keeps at most :data:`MAX_PER_CELL` cards per cell
(the oldest seen is pushed out), rate-limits each card key, and counts every
drop by reason.

A hello is sealed to the card's box key (X25519 -> HKDF -> ChaCha20-Poly1305,
a fresh key per message) and carries a proof of work bound to the card key
and the message's own key, the same proof contact requests need; inside are
the greeter's contact link, card and a token, and a signature by the link's
identity key over (recipient card, token, sender card), so no one can make
us send a contact request to a third person by passing off their link. Accepting answers with our own
link and the token, sealed to the greeter's card: both sides then send each
other ordinary contact requests (crossed requests accept each other), so the
contact itself is made by the existing request path with its proof of work
and rate limits.

Nothing here reads a clock or does I/O: ``now_ms`` is passed in.
"""

from __future__ import annotations

import enum
import hashlib
import math
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.chat.pow import (
    PowVerdict,
    ProofOfWork,
    RateLimiter,
    SpentProofs,
    check_proof,
    proof_digest,
)
from boxless.errors import UsageError
from boxless.identity.contact_code import InvalidContactCode, decode_contact_code
from boxless.identity.keys import verify_ed25519
from boxless.waku.sharding import ContentTopic
from boxless.wire import nearby_pb2

__all__ = [
    "CARD_TTL_MS",
    "CELL_CHARS",
    "AREA_CHARS",
    "Card",
    "CardTable",
    "Drop",
    "Dropped",
    "Hello",
    "HelloKind",
    "Session",
    "bucket",
    "cell_topic",
    "decode_geohash",
    "distance_km",
    "encode_geohash",
    "hello_topic",
    "neighbours",
    "open_card",
    "open_hello",
    "seal_hello",
]

ProofSolver = Callable[[bytes, bytes], ProofOfWork]
"""Solves the proof of work for (recipient card key, message key)."""
Signer = Callable[[bytes], bytes]
"""Signs with the sender's identity key (the one in the hello's link)."""

CELL_CHARS = 5
AREA_CHARS = 6
CARD_TTL_MS = 5 * 60_000
REPUBLISH_MS = 60_000
MAX_FUTURE_MS = 60_000
MAX_CARD_BYTES = 16 * 1024
MAX_AVATAR_BYTES = 12 * 1024
MAX_NAME_CHARS = 64
MAX_STATUS_CHARS = 100
MAX_LINK_CHARS = 4096
MAX_TEXT_CHARS = 200
MAX_HELLO_BYTES = 8 * 1024
MAX_PER_CELL = 200
CARD_RATE_PER_S = 1 / 20  # a card key may replace its card every 20 s (burst 3)
TOKEN_BYTES = 16
_SIGN_DOMAIN = b"boxless nearby card v1"
_HELLO_INFO = b"boxless nearby hello v1"
_B32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_B32_INDEX = {c: i for i, c in enumerate(_B32)}


class Drop(enum.Enum):
    """Why a card or hello was not taken (counted)."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    FUTURE = "future"
    WRONG_CELL = "wrong_cell"
    RATE_LIMITED = "rate_limited"
    POW = "proof_of_work"
    REPLAYED = "replayed"
    UNREADABLE = "unreadable"
    UNEXPECTED = "unexpected"


class Dropped(Exception):
    """Input refused, with the reason counted by the caller."""

    def __init__(self, reason: Drop, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


# -- geohash ---------------------------------------------------------------------------


def encode_geohash(lat: float, lon: float, chars: int) -> str:
    """The standard geohash of a point (``chars`` base-32 characters)."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or math.isnan(lat + lon):
        raise UsageError("latitude must be -90..90 and longitude -180..180")
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out: list[str] = []
    bits, value, even = 0, 0, True
    while len(out) < chars:
        if even:
            mid = (lon_lo + lon_hi) / 2
            value = value * 2 + (lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            value = value * 2 + (lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even = not even
        bits += 1
        if bits == 5:
            out.append(_B32[value])
            bits, value = 0, 0
    return "".join(out)


def _bounds(gh: str) -> tuple[float, float, float, float]:
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for ch in gh:
        value = _B32_INDEX[ch]
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lat_lo, lat_hi, lon_lo, lon_hi


def is_geohash(text: str, chars: int) -> bool:
    return len(text) == chars and all(c in _B32_INDEX for c in text)


def decode_geohash(gh: str) -> tuple[float, float]:
    """The centre of a geohash cell."""
    if not gh or any(c not in _B32_INDEX for c in gh):
        raise UsageError(f"not a geohash: {gh!r}")
    lat_lo, lat_hi, lon_lo, lon_hi = _bounds(gh)
    return (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2


def neighbours(gh: str) -> list[str]:
    """The cell and its 8 neighbours (fewer at the poles), same precision."""
    lat_lo, lat_hi, lon_lo, lon_hi = _bounds(gh)
    dlat, dlon = lat_hi - lat_lo, lon_hi - lon_lo
    lat, lon = (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2
    out: list[str] = []
    for dy in (0, -1, 1):
        for dx in (0, -1, 1):
            y = lat + dy * dlat
            if not -90 < y < 90:
                continue
            x = (lon + dx * dlon + 180.0) % 360.0 - 180.0
            cell = encode_geohash(y, x, len(gh))
            if cell not in out:
                out.append(cell)
    return out


def distance_km(a: str, b: str) -> float:
    """Great-circle distance between the centres of two geohash cells."""
    (la1, lo1), (la2, lo2) = decode_geohash(a), decode_geohash(b)
    p1, p2 = math.radians(la1), math.radians(la2)
    dp, dl = p2 - p1, math.radians(lo2 - lo1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def bucket(km: float) -> str:
    """What the UI shows: never a number finer than the areas allow."""
    if km < 1:
        return "< 1 km"
    if km < 5:
        return "< 5 km"
    if km < 10:
        return "< 10 km"
    return "> 10 km"


def cell_topic(cell: str) -> str:
    if not is_geohash(cell, CELL_CHARS):
        raise UsageError("a nearby cell is a 5-character geohash")
    return str(ContentTopic("boxless", "1", f"nearby-{cell}", "proto"))


def hello_topic(card_key: bytes) -> str:
    return str(
        ContentTopic(
            "boxless", "1", "nearby-hello-" + hashlib.sha256(card_key).hexdigest()[:32], "proto"
        )
    )


# -- cards -----------------------------------------------------------------------------


def _clean(what: str, text: str, limit: int) -> str:
    clean = unicodedata.normalize("NFC", text).strip()
    if len(clean) > limit:
        raise UsageError(f"the {what} has {len(clean)} characters; the limit is {limit}")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in clean):
        raise UsageError(f"the {what} must be one line of text")
    return clean


def _is_image(data: bytes) -> bool:
    return (
        data.startswith(b"\x89PNG\r\n\x1a\n")
        or data.startswith(b"\xff\xd8\xff")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


@dataclass(frozen=True, slots=True)
class Card:
    """A presence card, checked: valid only if built by :func:`open_card` or a Session."""

    card_key: bytes
    box_key: bytes
    cell: str
    area: str
    name: str
    status: str
    avatar: bytes = field(repr=False)
    issued_at_ms: int
    expires_at_ms: int
    withdrawn: bool = False


def _raw_key(pub: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Session:
    """One sharing session: fresh keys (memory only) and what our card says."""

    def __init__(
        self, lat: float, lon: float, *, name: str = "", status: str = "", avatar: bytes = b""
    ) -> None:
        self.area = encode_geohash(lat, lon, AREA_CHARS)
        self.cell = self.area[:CELL_CHARS]
        self.name = _clean("name", name, MAX_NAME_CHARS)
        self.status = _clean("status", status, MAX_STATUS_CHARS)
        if avatar and (len(avatar) > MAX_AVATAR_BYTES or not _is_image(avatar)):
            avatar = b""  # too big for a card: shown without a picture
        self.avatar = avatar
        self._sign = Ed25519PrivateKey.generate()
        self._box = X25519PrivateKey.generate()
        self.card_key = _raw_key(self._sign.public_key())
        self.box_key = _raw_key(self._box.public_key())

    def watched_cells(self) -> list[str]:
        return neighbours(self.cell)

    def card(self, now_ms: int, *, withdrawn: bool = False) -> bytes:
        """Our signed card, valid for CARD_TTL_MS from ``now_ms``."""
        body = nearby_pb2.PresenceBody(
            version=1,
            card_key=self.card_key,
            box_key=self.box_key,
            cell=self.cell,
            area=self.area,
            name=self.name,
            status=self.status,
            avatar=b"" if withdrawn else self.avatar,
            issued_at_ms=now_ms,
            expires_at_ms=now_ms + (0 if withdrawn else CARD_TTL_MS),
            withdrawn=withdrawn,
        ).SerializeToString()
        sig = self._sign.sign(_SIGN_DOMAIN + body)
        return nearby_pb2.SignedPresence(body=body, signature=sig).SerializeToString()

    def open(self, sealed: nearby_pb2.SealedHello) -> bytes:
        """Decrypt a hello sealed to our box key; raises Dropped(UNREADABLE)."""
        try:
            peer = X25519PublicKey.from_public_bytes(sealed.ephemeral)
            shared = self._box.exchange(peer)
            key = _hello_key(shared, sealed.ephemeral, self.box_key)
            return ChaCha20Poly1305(key).decrypt(bytes(12), sealed.ciphertext, sealed.ephemeral)
        except (ValueError, InvalidTag):
            raise Dropped(Drop.UNREADABLE, "not sealed to our card") from None


def open_card(raw: bytes, topic_cell: str, now_ms: int) -> Card:
    """A card from the network, checked; raises :class:`Dropped` with the reason."""
    if len(raw) > MAX_CARD_BYTES:
        raise Dropped(Drop.MALFORMED, "too large")
    try:
        signed = nearby_pb2.SignedPresence.FromString(raw)
        body = nearby_pb2.PresenceBody.FromString(signed.body)
    except ProtobufDecodeError:
        raise Dropped(Drop.MALFORMED, "not a card") from None
    if body.version != 1 or len(body.card_key) != 32 or len(body.box_key) != 32:
        raise Dropped(Drop.MALFORMED, "version or key size")
    if not is_geohash(body.cell, CELL_CHARS) or not is_geohash(body.area, AREA_CHARS):
        raise Dropped(Drop.MALFORMED, "cell")
    if not body.area.startswith(body.cell):
        raise Dropped(Drop.MALFORMED, "area outside its cell")
    if len(body.avatar) > MAX_AVATAR_BYTES or (body.avatar and not _is_image(body.avatar)):
        raise Dropped(Drop.MALFORMED, "avatar")
    try:
        name = _clean("name", body.name, MAX_NAME_CHARS)
        status = _clean("status", body.status, MAX_STATUS_CHARS)
    except UsageError as exc:
        raise Dropped(Drop.MALFORMED, str(exc)) from None
    try:
        Ed25519PublicKey.from_public_bytes(body.card_key).verify(
            signed.signature, _SIGN_DOMAIN + signed.body
        )
    except (InvalidSignature, ValueError):
        raise Dropped(Drop.BAD_SIGNATURE) from None
    if body.cell != topic_cell:
        raise Dropped(Drop.WRONG_CELL)
    if body.issued_at_ms > now_ms + MAX_FUTURE_MS:
        raise Dropped(Drop.FUTURE)
    if (
        body.expires_at_ms - body.issued_at_ms > CARD_TTL_MS
        or body.expires_at_ms < body.issued_at_ms
    ):
        raise Dropped(Drop.MALFORMED, "lifetime")
    if body.expires_at_ms <= now_ms and not body.withdrawn:
        raise Dropped(Drop.EXPIRED)
    return Card(
        body.card_key,
        body.box_key,
        body.cell,
        body.area,
        name,
        status,
        body.avatar,
        body.issued_at_ms,
        body.expires_at_ms,
        body.withdrawn,
    )


class CardTable:
    """The cards seen in the watched cells: bounded, rate-limited, expiring."""

    def __init__(self, *, max_per_cell: int = MAX_PER_CELL) -> None:
        self.max_per_cell = max_per_cell
        self._cells: dict[str, OrderedDict[bytes, Card]] = {}
        self._rate = RateLimiter(rate_per_s=CARD_RATE_PER_S, burst=3, max_keys=20_000)
        self.drops: Counter[str] = Counter()
        self.evicted = 0

    def put(self, card: Card, now_ms: int) -> bool:
        """Take a checked card; False (and a counted drop) when rate-limited."""
        cell = self._cells.setdefault(card.cell, OrderedDict())
        old = cell.get(card.card_key)
        if old is not None and card.issued_at_ms <= old.issued_at_ms:
            self.drops[Drop.REPLAYED.value] += 1
            return False
        if not self._rate.allow(card.card_key, now_ms / 1000):
            self.drops[Drop.RATE_LIMITED.value] += 1
            return False
        if card.withdrawn:
            cell.pop(card.card_key, None)
            return True
        cell.pop(card.card_key, None)
        cell[card.card_key] = card
        while len(cell) > self.max_per_cell:
            cell.popitem(last=False)
            self.evicted += 1
        return True

    def drop(self, reason: Drop) -> None:
        self.drops[reason.value] += 1

    def expire(self, now_ms: int) -> int:
        """Forget expired cards; return how many."""
        gone = 0
        for cell in self._cells.values():
            for key in [k for k, c in cell.items() if c.expires_at_ms <= now_ms]:
                del cell[key]
                gone += 1
        return gone

    def keep_cells(self, cells: list[str]) -> None:
        """Forget every cell not watched any more."""
        for cell in list(self._cells):
            if cell not in cells:
                del self._cells[cell]

    def cards(self, now_ms: int) -> list[Card]:
        return [
            c for cell in self._cells.values() for c in cell.values() if c.expires_at_ms > now_ms
        ]

    def get(self, card_key: bytes) -> Card | None:
        for cell in self._cells.values():
            if card_key in cell:
                return cell[card_key]
        return None

    def __len__(self) -> int:
        return sum(len(c) for c in self._cells.values())


# -- hellos ------------------------------------------------------------------------------


class HelloKind(enum.IntEnum):
    HELLO = 1
    ACCEPTED = 2


@dataclass(frozen=True, slots=True)
class Hello:
    kind: HelloKind
    from_card_key: bytes
    from_box_key: bytes
    link: str = field(repr=False)
    text: str = field(repr=False)
    token: bytes = field(repr=False)
    name: str = field(repr=False)


def _hello_key(shared: bytes, ephemeral: bytes, recipient_box: bytes) -> bytes:
    return HKDF(
        algorithm=SHA256(), length=32, salt=None, info=_HELLO_INFO + ephemeral + recipient_box
    ).derive(shared)


def _link_statement(to_card_key: bytes, token: bytes, from_card_key: bytes) -> bytes:
    return _HELLO_INFO + to_card_key + token + from_card_key


def seal_hello(
    hello: Hello,
    to_card_key: bytes,
    to_box_key: bytes,
    proof_for: ProofSolver | None,
    sign: Signer,
) -> bytes:
    """``hello`` sealed to a card's box key, with a proof of work from ``proof_for``
    (called with the recipient card key and this message's key). An acceptance
    needs none (``None``): its token, which only the greeter gave out, is the proof."""
    eph = X25519PrivateKey.generate()
    eph_pub = _raw_key(eph.public_key())
    shared = eph.exchange(X25519PublicKey.from_public_bytes(to_box_key))
    body = nearby_pb2.HelloBody(
        kind=int(hello.kind),
        from_card_key=hello.from_card_key,
        from_box_key=hello.from_box_key,
        link=hello.link,
        text=hello.text,
        token=hello.token,
        name=hello.name,
        link_signature=sign(_link_statement(to_card_key, hello.token, hello.from_card_key)),
    ).SerializeToString()
    ct = ChaCha20Poly1305(_hello_key(shared, eph_pub, to_box_key)).encrypt(bytes(12), body, eph_pub)
    sealed = nearby_pb2.SealedHello(ephemeral=eph_pub, ciphertext=ct)
    if proof_for is not None:
        proof = proof_for(to_card_key, eph_pub)
        sealed.pow_timestamp_ms, sealed.pow_nonce = proof.timestamp_ms, proof.nonce
    return sealed.SerializeToString()


def open_hello(
    raw: bytes,
    session: Session,
    spent: SpentProofs,
    *,
    now_ms: int,
    difficulty: int,
) -> Hello:
    """A hello sent to our card, checked (its proof of work first: the cheap part);
    raises :class:`Dropped`. A message without a proof can only be an acceptance
    (the caller then checks its token)."""
    if len(raw) > MAX_HELLO_BYTES:
        raise Dropped(Drop.MALFORMED, "too large")
    try:
        sealed = nearby_pb2.SealedHello.FromString(raw)
        proof = ProofOfWork(sealed.pow_timestamp_ms, sealed.pow_nonce) if sealed.pow_nonce else None
    except (ProtobufDecodeError, UsageError):
        raise Dropped(Drop.MALFORMED, "not a hello") from None
    if proof is None:
        plain = session.open(sealed)
    else:
        verdict = check_proof(
            session.card_key, sealed.ephemeral, proof, now_ms=now_ms, difficulty=difficulty
        )
        if verdict is not PowVerdict.OK:
            raise Dropped(Drop.POW, verdict.value)
        digest = proof_digest(session.card_key, sealed.ephemeral, proof)
        if spent.is_spent(digest, proof.timestamp_ms):
            raise Dropped(Drop.REPLAYED)
        plain = session.open(sealed)
        spent.spend(digest, proof.timestamp_ms, now_ms=now_ms)
    try:
        body = nearby_pb2.HelloBody.FromString(plain)
        kind = HelloKind(body.kind)
    except (ProtobufDecodeError, ValueError):
        raise Dropped(Drop.MALFORMED, "hello body") from None
    if proof is None and kind is not HelloKind.ACCEPTED:
        raise Dropped(Drop.POW, "a hello without a proof of work")
    if len(body.from_card_key) != 32 or len(body.from_box_key) != 32:
        raise Dropped(Drop.MALFORMED, "keys")
    if len(body.token) != TOKEN_BYTES or len(body.link) > MAX_LINK_CHARS or not body.link:
        raise Dropped(Drop.MALFORMED, "token or link")
    try:
        text = _clean("greeting", body.text, MAX_TEXT_CHARS)
        name = _clean("name", body.name, MAX_NAME_CHARS)
        code = decode_contact_code(body.link, now_ms / 1000, allow_expired=True)
    except (UsageError, InvalidContactCode) as exc:
        raise Dropped(Drop.MALFORMED, str(exc)) from None
    statement = _link_statement(session.card_key, body.token, body.from_card_key)
    if not verify_ed25519(code.identity_key, statement, body.link_signature):
        raise Dropped(Drop.BAD_SIGNATURE, "the link is not the sender's")
    return Hello(kind, body.from_card_key, body.from_box_key, body.link, text, body.token, name)
