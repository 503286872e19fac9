"""Private receiving: ERC-5564 stealth addresses, scheme 1 (secp256k1, view tags).

Theory of operation (ERC-5564 "SECP256k1 with view tags"):

- The recipient holds a spending key ``k`` and a viewing key ``v``; the
  *stealth meta-address* is ``K ‖ V`` (compressed, 66 bytes), published in the
  ERC-6538 registry or shown as ``st:eth:0x…``. Boxless derives both keys from
  the account's BIP-39 seed (:data:`SPEND_PATH`, :data:`VIEW_PATH`), so a
  restored account finds its stealth funds again.
- A payer draws an ephemeral key ``r``, computes ``s = r·V`` (compressed
  point), ``h = keccak256(s)``, the *view tag* ``h[0]``, and pays
  ``address(K + h·G)``; it announces ``(R = r·G, view tag ‖ metadata)`` through
  the ERC-5564 announcer.
- The recipient scans announcements: ``h = keccak256(v·R)``; if ``h[0]`` is not
  the view tag (255 times in 256) the announcement is not theirs, without the
  point addition and hashing of the address. Otherwise the address is
  recomputed and compared. Its spending key is ``k + h mod n``.

Checked against vectors made by an independent implementation (ScopeLift's
``@scopelift/stealth-address-sdk``; tests/vectors/stealth_scopelift.json says
how). Announcements come from anyone: :func:`parse_announcement` is strict and
a malformed one is skipped, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Final

import coincurve
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from boxless.errors import PeerError, UsageError
from boxless.payments.hdwallet import address_bytes, derive_private_key, keccak256

SCHEME_ID = 1
SPEND_PATH = "m/5564'/1'/0'"
VIEW_PATH = "m/5564'/1'/1'"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Metadata for a plain ETH payment (ERC-5564): view tag, 0xeeeeeeee, the ETH
# pseudo-address, the amount as 32 bytes.
ETH_SELECTOR = b"\xee" * 4
ETH_TOKEN = b"\xee" * 20


class BadMetaAddress(UsageError):
    """A stealth meta-address that is not two compressed secp256k1 points."""


class BadAnnouncement(PeerError):
    """An announcement that is not a scheme-1 announcement with a view tag."""


def _pub(secret: bytes) -> bytes:
    return coincurve.PrivateKey(secret).public_key.format(compressed=True)


@dataclass(frozen=True, slots=True)
class MetaAddress:
    spending: bytes  # 33-byte compressed K
    viewing: bytes  # 33-byte compressed V

    def __post_init__(self) -> None:
        for point in (self.spending, self.viewing):
            if len(point) != 33 or point[0] not in (2, 3):
                raise BadMetaAddress("a stealth meta-address holds two compressed public keys")
            try:
                coincurve.PublicKey(point)
            except ValueError as exc:
                raise BadMetaAddress("a stealth meta-address key is not on the curve") from exc

    @property
    def raw(self) -> bytes:
        return self.spending + self.viewing

    def uri(self, chain: str = "eth") -> str:
        return f"st:{chain}:0x{self.raw.hex()}"

    @classmethod
    def parse(cls, text: str) -> MetaAddress:
        """``st:<chain>:0x<66 bytes>`` or the bare hex."""
        parts = text.strip().split(":")
        if len(parts) == 3 and parts[0] == "st":
            text = parts[2]
        elif len(parts) != 1:
            raise BadMetaAddress("a stealth meta-address looks like st:eth:0x… (66 bytes)")
        try:
            raw = bytes.fromhex(text.removeprefix("0x"))
        except ValueError as exc:
            raise BadMetaAddress("a stealth meta-address is hex") from exc
        if len(raw) != 66:
            raise BadMetaAddress(f"a stealth meta-address has 66 bytes, not {len(raw)}")
        return cls(raw[:33], raw[33:])


@dataclass(frozen=True, slots=True)
class StealthKeys:
    """The recipient's two keys (secrets: never logged, stored encrypted)."""

    spending: bytes
    viewing: bytes

    def __repr__(self) -> str:
        return "StealthKeys(<secret>)"

    @classmethod
    def from_seed(cls, seed: bytes) -> StealthKeys:
        return cls(derive_private_key(seed, SPEND_PATH), derive_private_key(seed, VIEW_PATH))

    @property
    def meta(self) -> MetaAddress:
        return MetaAddress(_pub(self.spending), _pub(self.viewing))


@dataclass(frozen=True, slots=True)
class StealthPayment:
    """What the payer sends to and announces."""

    address: bytes
    ephemeral_public: bytes
    view_tag: int


def _hashed_secret(private: bytes, public: bytes) -> bytes:
    shared = coincurve.PublicKey(public).multiply(private).format(compressed=True)
    return keccak256(shared)


def generate(meta: MetaAddress, ephemeral: bytes | None = None) -> StealthPayment:
    """A fresh stealth address for ``meta`` (``ephemeral`` only for test vectors)."""
    r = ephemeral if ephemeral is not None else coincurve.PrivateKey(os.urandom(32)).secret
    h = _hashed_secret(r, meta.viewing)
    stealth = coincurve.PublicKey.combine_keys(
        [coincurve.PublicKey(meta.spending), coincurve.PrivateKey(h).public_key]
    )
    address = keccak256(stealth.format(compressed=False)[1:])[12:]
    return StealthPayment(address, _pub(r), h[0])


def stealth_private_key(keys: StealthKeys, ephemeral_public: bytes) -> bytes:
    """The key that spends what was paid to the announcement's stealth address."""
    h = int.from_bytes(_hashed_secret(keys.viewing, ephemeral_public), "big")
    return ((int.from_bytes(keys.spending, "big") + h) % N).to_bytes(32, "big")


def eth_metadata(view_tag: int, amount: int) -> bytes:
    return bytes([view_tag]) + ETH_SELECTOR + ETH_TOKEN + amount.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class Announcement:
    stealth_address: bytes
    ephemeral_public: bytes
    metadata: bytes
    block_number: int = 0
    tx_hash: bytes = b""

    @property
    def view_tag(self) -> int:
        return self.metadata[0]


def parse_announcement(
    scheme_id: int, stealth_address: bytes, ephemeral_public: bytes, metadata: bytes
) -> Announcement:
    """Strictly: scheme 1, a 20-byte address, a compressed point, a view tag."""
    if scheme_id != SCHEME_ID:
        raise BadAnnouncement(f"scheme {scheme_id} is not secp256k1 scheme 1")
    if len(stealth_address) != 20:
        raise BadAnnouncement("a stealth address is 20 bytes")
    if len(ephemeral_public) != 33 or ephemeral_public[0] not in (2, 3):
        raise BadAnnouncement("an ephemeral public key is a compressed point")
    if not metadata:
        raise BadAnnouncement("an announcement's metadata starts with its view tag")
    return Announcement(stealth_address, ephemeral_public, metadata)


PARALLEL_MIN: Final = 8192  # announcements below which one process scans (a pool costs ~50 ms)
MAX_WORKERS: Final = 8


class Scanner:
    """Finds the announcements that pay ``keys``' owner; needs only the viewing
    key and the spending public key (a scanning service could hold just these).

    The view-tag test, what 255 in 256 announcements stop at, calls libsecp256k1
    directly (parse, constant-time multiplication by the viewing key, serialise)
    with buffers allocated once, which saves the three coincurve objects a
    ``PublicKey(..).multiply(..).format()`` makes; :meth:`scan` splits a large
    batch over a process pool, one worker a core. Not thread-safe (the buffers).
    """

    def __init__(self, viewing: bytes, spending_public: bytes) -> None:
        if len(viewing) != 32:
            raise UsageError("a viewing key is 32 bytes")
        coincurve.PrivateKey(viewing)  # refuses a key that is not a valid scalar
        self._viewing = viewing
        self._spending_public = spending_public
        self._spend = coincurve.PublicKey(spending_public)
        self._ctx = GLOBAL_CONTEXT.ctx
        self._point = ffi.new("secp256k1_pubkey *")
        self._out = ffi.new("unsigned char[33]")
        self._outlen = ffi.new("size_t *")

    @classmethod
    def for_keys(cls, keys: StealthKeys) -> Scanner:
        return cls(keys.viewing, _pub(keys.spending))

    def _shared(self, ephemeral_public: bytes) -> bytes | None:
        """``v·R`` compressed, or None if ``R`` is not a point (someone's garbage)."""
        if len(ephemeral_public) != 33:
            return None
        if not lib.secp256k1_ec_pubkey_parse(self._ctx, self._point, ephemeral_public, 33):
            return None
        if not lib.secp256k1_ec_pubkey_tweak_mul(self._ctx, self._point, self._viewing):
            return None
        self._outlen[0] = 33
        lib.secp256k1_ec_pubkey_serialize(
            self._ctx, self._out, self._outlen, self._point, lib.SECP256K1_EC_COMPRESSED
        )
        return bytes(ffi.buffer(self._out, 33))

    def match(self, ann: Announcement) -> bool:
        if not ann.metadata:
            return False
        shared = self._shared(ann.ephemeral_public)
        if shared is None:
            return False
        h = keccak256(shared)
        if h[0] != ann.metadata[0]:
            return False  # the view tag: 255 in 256 stop here
        point = coincurve.PublicKey.combine_keys([self._spend, coincurve.PrivateKey(h).public_key])
        return keccak256(point.format(compressed=False)[1:])[12:] == ann.stealth_address

    def scan(
        self, announcements: Iterable[Announcement], *, workers: int | None = None
    ) -> list[Announcement]:
        """The announcements that are ours, in order. ``workers``: processes to use
        (default: one a core when there are at least :data:`PARALLEL_MIN`). Call it
        from a thread, never from the event loop (it takes seconds on big batches)."""
        anns = list(announcements)
        if workers is None:
            workers = min(os.cpu_count() or 1, MAX_WORKERS) if len(anns) >= PARALLEL_MIN else 1
        workers = max(1, min(workers, MAX_WORKERS, len(anns) // 1024 or 1))
        if workers == 1:
            return [a for a in anns if self.match(a)]
        step = -(-len(anns) // (workers * 4))  # 4 chunks a worker: a slow core delays less
        jobs = [
            (self._viewing, self._spending_public, start, _rows(anns[start : start + step]))
            for start in range(0, len(anns), step)
        ]
        with ProcessPoolExecutor(workers) as pool:
            hits = [i for found in pool.map(_scan_rows, jobs) for i in found]
        return [anns[i] for i in hits]


_Row = tuple[bytes, bytes, bytes]


def _rows(anns: list[Announcement]) -> list[_Row]:
    return [(a.stealth_address, a.ephemeral_public, a.metadata) for a in anns]


def _scan_rows(job: tuple[bytes, bytes, int, list[_Row]]) -> list[int]:
    """In a worker: the indices (from ``start``) of the rows that are ours."""
    viewing, spending_public, start, rows = job
    scanner = Scanner(viewing, spending_public)
    return [start + i for i, (a, e, m) in enumerate(rows) if scanner.match(Announcement(a, e, m))]


def address_of(private_key: bytes) -> bytes:
    return address_bytes(private_key)
