"""Ethereum Node Records (EIP-778, identity scheme "v4") with Waku's fields (31/WAKU2-ENR).

Theory of operation
-------------------
A record is the RLP list ``[signature, seq, k1, v1, k2, v2, ...]``: keys are
unique and sorted, ``signature`` is the 64-byte ``r ‖ s`` secp256k1 ECDSA
signature of ``keccak256(rlp([seq, k1, v1, ...]))`` by the key in the
``secp256k1`` pair (33-byte compressed point), ``id`` is ``"v4"`` and the whole
encoding is at most 300 bytes. The text form is ``"enr:"`` + unpadded base64url.

An :class:`Enr` can only exist verified: its constructor checks the identity
scheme, the key, the signature and the size, so :meth:`Enr.decode` is "parse,
then construct" and every instance a caller holds was signed by its key. The
Waku fields are checked at decode time too, so the accessors never fail:

* ``multiaddrs``: concatenated ``u16 big-endian length ‖ binary multiaddr``
  entries, without ``/p2p/`` (js-waku refuses to encode one). An entry
  py-multiaddr cannot parse (a transport it doesn't know) is skipped by
  :meth:`Enr.multiaddrs`, not fatal; a truncated entry is.
* ``waku2``: one byte of capability flags, bit 0 relay, 1 store, 2 filter,
  3 lightpush, 4 sync (:class:`Waku2`).
* ``rs`` / ``rsv``: relay shards, ``u16 cluster`` then either ``u8 count`` and
  ``count`` u16 shard indices (``rs``), or a 1024-bit vector, shard *i* in byte
  ``i // 8`` at bit ``7 - i % 8`` (130 bytes in all; ``rsv``). As in js-waku the
  format is told by length (130 bytes is a bit vector), whatever the key;
  :meth:`Enr.build` writes ``rsv`` from 64 shards on, as nwaku does.
* ``ip``/``tcp``/``udp`` (and ``ip6``/``tcp6``/``udp6``): EIP-778's own keys.
  Ports are written as minimal big-endian integers (canonical RLP integers, as
  EIP-778 and geth want) and read from one or two bytes. js-waku reads ports
  as exactly two bytes, so it mis-reads ports below 256; don't use those.

Why hand-written: the one Python ENR library, ``eth-enr`` 0.5.0 (2020), pins
``rlp<3``, ``eth-keys<0.4`` and ``eth-utils<2`` and so can't be installed
next to current ``rlp`` (5.x); it also knows nothing of Waku's fields. This
module writes by hand only the record layout: RLP is the ``rlp`` package,
ECDSA is ``coincurve`` (libsecp256k1, RFC 6979 nonces, low-s signatures),
keccak is pycryptodome, multiaddrs are ``multiaddr``, peer ids are libp2p's.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import coincurve
import multiaddr
import rlp
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from Crypto.Hash import keccak
from libp2p.crypto.secp256k1 import Secp256k1PublicKey
from libp2p.peer.id import ID

from boxless.errors import DecodeError, UsageError

__all__ = [
    "MAX_RECORD_SIZE",
    "TEXT_PREFIX",
    "Enr",
    "RelayShards",
    "Waku2",
]

MAX_RECORD_SIZE = 300
"""EIP-778: a record's RLP encoding is at most 300 bytes."""

TEXT_PREFIX = "enr:"

_ID_V4 = b"v4"
_PUBKEY_LEN = 33
_SIG_LEN = 64
_MAX_SEQ = 2**64 - 1
_MAX_TEXT_LEN = len(TEXT_PREFIX) + (MAX_RECORD_SIZE * 4 + 2) // 3
_RSV_LEN = 130  # u16 cluster + 1024-bit vector
_RSV_SHARDS = 1024
_RSV_FROM = 64  # nwaku and js-waku switch to the bit vector at 64 shards
_MAX_U16 = 0xFFFF
_MA_LEN_SIZE = 2


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (the pre-standard SHA-3 Ethereum uses)."""
    return keccak.new(digest_bits=256, data=data).digest()


@dataclass(frozen=True, slots=True)
class Waku2:
    """The ``waku2`` capability flags (31/WAKU2-ENR)."""

    relay: bool = False
    store: bool = False
    filter: bool = False
    lightpush: bool = False
    sync: bool = False

    def to_byte(self) -> int:
        """The one-byte field value."""
        bits = (self.relay, self.store, self.filter, self.lightpush, self.sync)
        return sum(1 << i for i, on in enumerate(bits) if on)

    @classmethod
    def from_byte(cls, value: int) -> Waku2:
        """Read the flags; undefined bits (5 to 7) are ignored."""
        return cls(*(bool(value >> i & 1) for i in range(5)))


@dataclass(frozen=True, slots=True)
class RelayShards:
    """The relay shards a node serves in one cluster (``rs``/``rsv`` fields)."""

    cluster_id: int
    shards: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.cluster_id <= _MAX_U16:
            raise UsageError(f"cluster id {self.cluster_id} is outside 0..{_MAX_U16}")
        if any(not 0 <= s <= _MAX_U16 for s in self.shards):
            raise UsageError(f"shard index outside 0..{_MAX_U16} in {self.shards}")
        if list(self.shards) != sorted(set(self.shards)):
            raise UsageError("shards must be sorted and unique")

    @classmethod
    def of(cls, cluster_id: int, shards: Iterable[int]) -> RelayShards:
        """Build from any iterable of shard indices (sorted and deduplicated here)."""
        return cls(cluster_id, tuple(sorted(set(shards))))

    def encode(self) -> tuple[str, bytes]:
        """The ENR key (``rs`` or ``rsv``) and value for these shards."""
        head = self.cluster_id.to_bytes(2, "big")
        if len(self.shards) >= _RSV_FROM and all(s < _RSV_SHARDS for s in self.shards):
            vector = bytearray(_RSV_LEN - 2)
            for s in self.shards:
                vector[s // 8] |= 1 << (7 - s % 8)
            return "rsv", head + bytes(vector)
        if len(self.shards) > 0xFF:
            raise UsageError(f"{len(self.shards)} shards fit neither `rs` nor `rsv`")
        body = b"".join(s.to_bytes(2, "big") for s in self.shards)
        return "rs", head + bytes([len(self.shards)]) + body

    @classmethod
    def decode(cls, data: bytes) -> RelayShards:
        """Parse an ``rs`` or ``rsv`` value; :class:`DecodeError` if malformed."""
        if len(data) < 3:
            raise DecodeError(f"relay shards field of {len(data)} bytes is too short")
        cluster = int.from_bytes(data[:2], "big")
        if len(data) == _RSV_LEN:
            bits = int.from_bytes(data[2:], "big")
            shards = [i for i in range(_RSV_SHARDS) if bits >> (_RSV_SHARDS - 1 - i) & 1]
            return cls(cluster, tuple(shards))
        count = data[2]
        if len(data) != 3 + 2 * count:
            raise DecodeError(f"relay shards field: {count} shards need {3 + 2 * count} bytes")
        found = (int.from_bytes(data[i : i + 2], "big") for i in range(3, len(data), 2))
        return cls.of(cluster, found)


def _port(value: bytes, key: str) -> int:
    if not 1 <= len(value) <= 2 or value[0] == 0:
        raise DecodeError(f"ENR `{key}` is not a port number")
    return int.from_bytes(value, "big")


def _ip(value: bytes, key: str) -> str:
    want = 4 if key == "ip" else 16
    if len(value) != want:
        raise DecodeError(f"ENR `{key}` must be {want} bytes, got {len(value)}")
    return str(ipaddress.ip_address(value))


def encode_multiaddrs(addrs: Iterable[str]) -> bytes:
    """The ``multiaddrs`` field value; :class:`UsageError` for a bad or ``/p2p/`` address."""
    out = bytearray()
    for text in addrs:
        try:
            ma = multiaddr.Multiaddr(text)
            raw = ma.to_bytes()
            names = [p.name for p in ma.protocols()]
        except Exception as exc:  # py-multiaddr raises assorted ValueError/KeyError types
            raise UsageError(f"not a valid multiaddr: {text!r} ({exc})") from exc
        if "p2p" in names:
            raise UsageError(f"ENR multiaddrs must not contain a peer id: {text!r}")
        if len(raw) > _MAX_U16:
            raise UsageError(f"multiaddr too long for the ENR field: {text!r}")
        out += len(raw).to_bytes(_MA_LEN_SIZE, "big") + raw
    return bytes(out)


def _parse_multiaddr(raw: bytes) -> str | None:
    """The text form of binary multiaddr ``raw``, or None if we can't read it exactly.

    py-multiaddr 0.2.0 decodes lazily and leniently (it reads ``04 01`` as
    ``/ip4/0.0.0.1``), so we accept an entry only if it re-encodes to the very
    same bytes.
    """
    try:
        text = str(multiaddr.Multiaddr(raw))
        ok = multiaddr.Multiaddr(text).to_bytes() == raw
    except Exception:  # py-multiaddr raises assorted types on bad input
        return None
    return text if ok and text else None


def decode_multiaddrs(data: bytes) -> list[str]:
    """Split a ``multiaddrs`` value; unreadable entries are skipped.

    :class:`DecodeError` if the length prefixes don't tile the value exactly.
    """
    out: list[str] = []
    pos = 0
    while pos < len(data):
        if pos + _MA_LEN_SIZE > len(data):
            raise DecodeError("ENR multiaddrs field ends inside a length prefix")
        size = int.from_bytes(data[pos : pos + _MA_LEN_SIZE], "big")
        pos += _MA_LEN_SIZE
        if size == 0 or pos + size > len(data):
            raise DecodeError("ENR multiaddrs field has an entry of bad length")
        text = _parse_multiaddr(data[pos : pos + size])
        pos += size
        if text is not None:
            out.append(text)
    return out


def _check_waku_fields(pairs: Mapping[str, bytes]) -> None:
    """Raise :class:`DecodeError` if a field we interpret is malformed."""
    for key in ("ip", "ip6"):
        if key in pairs:
            _ip(pairs[key], key)
    for key in ("tcp", "udp", "tcp6", "udp6"):
        if key in pairs:
            _port(pairs[key], key)
    if "waku2" in pairs and len(pairs["waku2"]) != 1:
        raise DecodeError("ENR `waku2` must be one byte")
    for key in ("rs", "rsv"):
        if key in pairs:
            RelayShards.decode(pairs[key])
    if "multiaddrs" in pairs:
        decode_multiaddrs(pairs["multiaddrs"])


def _content(seq: int, pairs: Mapping[str, bytes]) -> list[object]:
    items: list[object] = [seq]
    for key in sorted(pairs, key=str.encode):
        items += [key.encode(), pairs[key]]
    return items


def _verify(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    try:
        pub = coincurve.PublicKey(public_key)
        der = cdata_to_der(deserialize_compact(signature))
    except ValueError:
        return False
    # libsecp256k1 accepts only low-s signatures, as geth and js-waku (noble) do.
    return bool(pub.verify(der, digest, hasher=None))


@dataclass(frozen=True, slots=True)
class Enr:
    """A verified node record. Build with :meth:`build`, read with :meth:`decode`.

    ``pairs`` holds every key/value pair, ``id`` and ``secp256k1`` included;
    ``public_key`` is the 33-byte compressed key of the ``secp256k1`` pair.
    Constructing one checks the signature, so an invalid record cannot exist.
    """

    seq: int
    pairs: Mapping[str, bytes]
    public_key: bytes
    signature: bytes
    _raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = MappingProxyType(dict(self.pairs))
        object.__setattr__(self, "pairs", pairs)
        if not 0 <= self.seq <= _MAX_SEQ:
            raise DecodeError(f"ENR sequence number {self.seq} is out of range")
        if "id" not in pairs:
            raise DecodeError("ENR has no identity scheme (`id`)")
        if pairs["id"] != _ID_V4:
            raise DecodeError(f"unknown ENR identity scheme {pairs['id']!r}")
        if pairs.get("secp256k1") != self.public_key or len(self.public_key) != _PUBKEY_LEN:
            raise DecodeError("ENR `secp256k1` must be the 33-byte compressed public key")
        if len(self.signature) != _SIG_LEN:
            raise DecodeError(f"ENR v4 signature must be {_SIG_LEN} bytes")
        content = _content(self.seq, pairs)
        if not _verify(self.public_key, self.signature, keccak256(rlp.encode(content))):
            raise DecodeError("ENR signature does not verify")
        raw = rlp.encode([self.signature, *content])
        if len(raw) > MAX_RECORD_SIZE:
            raise DecodeError(f"ENR of {len(raw)} bytes exceeds {MAX_RECORD_SIZE}")
        _check_waku_fields(pairs)
        object.__setattr__(self, "_raw", raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    # -- building and codecs ------------------------------------------------

    @classmethod
    def build(
        cls,
        private_key_secp256k1: bytes,
        seq: int,
        *,
        ip: str | None = None,
        tcp: int | None = None,
        udp: int | None = None,
        multiaddrs: Iterable[str] = (),
        waku2: Waku2 | None = None,
        shards: RelayShards | None = None,
        extra: Mapping[str, bytes] | None = None,
    ) -> Enr:
        """Sign a new record with the 32-byte secp256k1 ``private_key_secp256k1``.

        ``ip`` may be IPv4 (keys ``ip``/``tcp``/``udp``) or IPv6 (``ip6``/
        ``tcp6``/``udp6``). ``multiaddrs`` are for what those keys can't say
        (``/ws``, ``/wss``, DNS names) and must not carry ``/p2p/``. ``extra``
        adds raw pairs. :class:`UsageError` on bad input or a record over 300
        bytes.
        """
        try:
            key = coincurve.PrivateKey(private_key_secp256k1)
        except ValueError as exc:
            raise UsageError("not a valid secp256k1 private key") from exc
        pairs: dict[str, bytes] = dict(extra or {})
        pairs["id"] = _ID_V4
        pairs["secp256k1"] = key.public_key.format(compressed=True)
        suffix = ""
        if ip is not None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError as exc:
                raise UsageError(f"not an IP address: {ip!r}") from exc
            suffix = "6" if addr.version == 6 else ""
            pairs["ip" + suffix] = addr.packed
        for name, port in (("tcp", tcp), ("udp", udp)):
            if port is not None:
                if not 1 <= port <= _MAX_U16:
                    raise UsageError(f"{name} port {port} is outside 1..{_MAX_U16}")
                pairs[name + suffix] = port.to_bytes((port.bit_length() + 7) // 8, "big")
        ma_value = encode_multiaddrs(multiaddrs)
        if ma_value:
            pairs["multiaddrs"] = ma_value
        if waku2 is not None:
            pairs["waku2"] = bytes([waku2.to_byte()])
        if shards is not None:
            shard_key, shard_value = shards.encode()
            pairs[shard_key] = shard_value
        return cls.sign(key.secret, seq, pairs)

    @classmethod
    def sign(cls, private_key_secp256k1: bytes, seq: int, pairs: Mapping[str, bytes]) -> Enr:
        """Sign raw ``pairs`` (``id`` and ``secp256k1`` are set here); see :meth:`build`."""
        if not 0 <= seq <= _MAX_SEQ:
            raise UsageError(f"ENR sequence number {seq} is out of range")
        try:
            key = coincurve.PrivateKey(private_key_secp256k1)
        except ValueError as exc:
            raise UsageError("not a valid secp256k1 private key") from exc
        full = {**pairs, "id": _ID_V4, "secp256k1": key.public_key.format(compressed=True)}
        digest = keccak256(rlp.encode(_content(seq, full)))
        signature = key.sign_recoverable(digest, hasher=None)[:_SIG_LEN]
        try:
            return cls(seq, full, full["secp256k1"], signature)
        except DecodeError as exc:
            raise UsageError(f"cannot build this ENR: {exc}") from exc

    @classmethod
    def decode(cls, data: bytes) -> Enr:
        """Parse and verify an RLP-encoded record; :class:`DecodeError` if it is not valid."""
        if len(data) > MAX_RECORD_SIZE:
            raise DecodeError(f"ENR of {len(data)} bytes exceeds {MAX_RECORD_SIZE}")
        try:
            items = rlp.decode(data)
        except rlp.exceptions.RLPException as exc:
            raise DecodeError(f"ENR is not valid RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) < 2 or len(items) % 2:
            raise DecodeError("ENR must be an RLP list [signature, seq, k, v, ...]")
        if not all(isinstance(item, bytes) for item in items):
            raise DecodeError("ENR items must be byte strings")
        signature, seq_raw, *kvs = items
        if len(seq_raw) > 8 or seq_raw[:1] == b"\x00":
            raise DecodeError("ENR sequence number is not a canonical 64-bit integer")
        keys = kvs[0::2]
        if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
            raise DecodeError("ENR keys are not sorted and unique")
        try:
            pairs = {k.decode(): v for k, v in zip(keys, kvs[1::2], strict=True)}
        except UnicodeDecodeError as exc:
            raise DecodeError("ENR key is not UTF-8") from exc
        public_key = pairs.get("secp256k1", b"")
        record = cls(int.from_bytes(seq_raw, "big"), pairs, public_key, signature)
        if record._raw != data:  # can't happen after the checks above; be sure
            raise DecodeError("ENR is not canonically encoded")
        return record

    @classmethod
    def from_text(cls, text: str) -> Enr:
        """Parse ``enr:<base64url>``; :class:`DecodeError` if it is not a valid record."""
        if not text.startswith(TEXT_PREFIX):
            raise DecodeError(f"ENR text must start with {TEXT_PREFIX!r}")
        body = text[len(TEXT_PREFIX) :]
        if len(text) > _MAX_TEXT_LEN or not body.isascii():
            raise DecodeError("ENR text is too long or not base64url")
        try:
            data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        except binascii.Error as exc:
            raise DecodeError(f"ENR text is not base64url: {exc}") from exc
        return cls.decode(data)

    def encode(self) -> bytes:
        """The RLP encoding (what peer exchange carries)."""
        return self._raw

    def to_text(self) -> str:
        """The ``enr:`` text form."""
        return TEXT_PREFIX + base64.urlsafe_b64encode(self._raw).rstrip(b"=").decode()

    # -- reading ------------------------------------------------------------

    def peer_id(self) -> ID:
        """The libp2p peer id of the record's secp256k1 key (``16Uiu2...``)."""
        return ID.from_pubkey(Secp256k1PublicKey.from_bytes(self.public_key))

    def node_id(self) -> bytes:
        """The discv5 node id: keccak256 of the uncompressed public key."""
        point = coincurve.PublicKey(self.public_key).format(compressed=False)
        return keccak256(point[1:])

    @property
    def ip(self) -> str | None:
        return _ip(self.pairs["ip"], "ip") if "ip" in self.pairs else None

    @property
    def ip6(self) -> str | None:
        return _ip(self.pairs["ip6"], "ip6") if "ip6" in self.pairs else None

    def port(self, key: str) -> int | None:
        """The port under ``key`` (``tcp``, ``udp``, ``tcp6``, ``udp6``), if present."""
        return _port(self.pairs[key], key) if key in self.pairs else None

    @property
    def tcp(self) -> int | None:
        return self.port("tcp")

    @property
    def udp(self) -> int | None:
        return self.port("udp")

    @property
    def waku2(self) -> Waku2 | None:
        value = self.pairs.get("waku2")
        return Waku2.from_byte(value[0]) if value else None

    @property
    def shards(self) -> RelayShards | None:
        """Relay shards from ``rs`` (preferred) or ``rsv``."""
        value = self.pairs.get("rs") or self.pairs.get("rsv")
        return RelayShards.decode(value) if value else None

    def location_multiaddrs(self) -> list[str]:
        """Dialable addresses without ``/p2p/``: ip/tcp, ip6/tcp6, then the ``multiaddrs`` field.

        UDP ports are left out: they are discv5's, not a libp2p listener.
        """
        out = []
        if self.ip is not None and self.tcp is not None:
            out.append(f"/ip4/{self.ip}/tcp/{self.tcp}")
        tcp6 = self.port("tcp6")
        if self.ip6 is not None and tcp6 is not None:
            out.append(f"/ip6/{self.ip6}/tcp/{tcp6}")
        out += decode_multiaddrs(self.pairs.get("multiaddrs", b""))
        return out

    def multiaddrs(self) -> list[str]:
        """:meth:`location_multiaddrs` with ``/p2p/<peer id>`` appended, ready to dial."""
        suffix = f"/p2p/{self.peer_id()}"
        return [addr + suffix for addr in self.location_multiaddrs()]
