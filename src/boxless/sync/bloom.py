"""The SDS bloom filter of received message ids, bit-compatible with js-waku and nim-sds.

Theory of operation
-------------------
The SDS spec says each participant keeps a bloom filter of the message ids it has
received, rolled over once it reaches a predefined capacity, sized to keep false
positives low -- but leaves size, hashing and serialisation to implementations.
A receiver looks ids up in a *sender's* filter with its *own* parameters, so every
member of a channel must agree on them bit for bit. We therefore follow js-waku's
``@waku/sds`` (``bloom_filter/bloom.ts``, ``DEFAULT_BLOOM_FILTER_OPTIONS``), which
in turn follows nim-sds:

* capacity 10,000 ids at a 0.1 % false-positive rate: ``ceil(-ln(p) / ln(2)^2)``
  = 15 bits per id, ``k = round(ln(2) * 15)`` = 10 hashes, ``m`` = 150,000 bits;
* the ``n``-th position of an id is ``|a + n*b| mod m`` (Kirsch-Mitzenmacher
  double hashing) with ``a = |h(id)| mod m``, ``b = |h(id + " b")| mod m``, where
  ``h`` is Nim's string hash: MurmurHash3 x86_32, seed 0, read as a signed int32,
  over the id's bytes (UTF-8 here, as native Nim; ids are ASCII hex in practice,
  where js-waku's char codes are the same bytes);
* bit ``h`` lives in 64-bit word ``h // 64`` at bit ``h % 64``; the filter is
  ``1 + m // 64`` words, each serialised big-endian: 2,344 words = 18,752 bytes.

:class:`RollingBloomFilter` is what a participant keeps: it remembers the ids it
holds, and when it reaches capacity it is recomputed from the most recent 80 %
(nim-sds keeps the newest 80 % too). Its size on the wire never changes, so peers
can always read it, and it never holds more than ``capacity`` ids, so the
false-positive rate stays at or below the design rate.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from boxless.errors import DecodeError, UsageError

__all__ = [
    "DEFAULT_BLOOM_PARAMS",
    "ROLL_KEEP_FRACTION",
    "BloomFilter",
    "BloomParams",
    "RollingBloomFilter",
    "hash_n",
    "murmur3_32",
]

#: When a rolling filter reaches capacity it keeps this fraction of its newest ids.
ROLL_KEEP_FRACTION: Final = 0.8

_C1: Final = 0xCC9E2D51
_C2: Final = 0x1B873593
_M32: Final = 0xFFFFFFFF


def murmur3_32(data: bytes) -> int:
    """MurmurHash3 x86_32 with seed 0, as a signed int32 (Nim's ``hash(string)``)."""
    h = 0
    n_blocks = len(data) // 4
    for k in struct.unpack_from(f"<{n_blocks}I", data):
        k = (k * _C1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        k = (k * _C2) & _M32
        h ^= k
        h = ((h << 13) | (h >> 19)) & _M32
        h = (h * 5 + 0xE6546B64) & _M32
    tail = data[n_blocks * 4 :]
    # Nim always mixes the tail word in, even when it is zero (so does MurmurHash3
    # in effect: a zero k stays zero through the multiplications).
    k = int.from_bytes(tail, "little")
    k = (k * _C1) & _M32
    k = ((k << 15) | (k >> 17)) & _M32
    k = (k * _C2) & _M32
    h ^= k
    h ^= len(data) & _M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def _base_hashes(item: str, max_value: int) -> tuple[int, int]:
    raw = item.encode("utf-8")
    return abs(murmur3_32(raw)) % max_value, abs(murmur3_32(raw + b" b")) % max_value


def hash_n(item: str, n: int, max_value: int) -> int:
    """The ``n``-th bloom position of ``item`` in ``[0, max_value)`` (nim-sds ``hashN``)."""
    a, b = _base_hashes(item, max_value)
    return abs(a + n * b) % max_value


@dataclass(frozen=True)
class BloomParams:
    """Shape of a filter: every member of a channel must use the same one."""

    capacity: int
    error_rate: float
    k_hashes: int
    total_bits: int

    @classmethod
    def for_capacity(cls, capacity: int, error_rate: float) -> BloomParams:
        """Size a filter the way js-waku and nim-sds do (optimal ``k``, whole bits per id)."""
        if capacity < 1 or not 0.0 < error_rate < 1.0:
            raise UsageError("bloom filter needs capacity >= 1 and 0 < error_rate < 1")
        bits_per_elem = math.ceil(-math.log(error_rate) / math.log(2) ** 2)
        k = math.floor(math.log(2) * bits_per_elem + 0.5)  # JavaScript's Math.round
        return cls(capacity, error_rate, k, capacity * bits_per_elem)

    @property
    def n_bytes(self) -> int:
        """Serialised size: ``1 + total_bits // 64`` big-endian 64-bit words."""
        return 8 * (1 + self.total_bits // 64)

    def positions(self, item: str) -> tuple[int, ...]:
        """The ``k`` bit positions of ``item``."""
        m = self.total_bits
        a, b = _base_hashes(item, m)
        return tuple((a + n * b) % m for n in range(self.k_hashes))


#: js-waku's ``DEFAULT_BLOOM_FILTER_OPTIONS`` (capacity 10,000, error rate 0.001).
DEFAULT_BLOOM_PARAMS: Final = BloomParams.for_capacity(10_000, 0.001)


def _locate(h: int) -> tuple[int, int]:
    """Byte index and mask of bit ``h`` in the big-endian 64-bit word layout."""
    return ((h >> 6) << 3) + 7 - ((h & 63) >> 3), 1 << (h & 7)


class BloomFilter:
    """A fixed-size bloom filter with the SDS (js-waku) layout."""

    __slots__ = ("_bits", "params")

    def __init__(self, params: BloomParams = DEFAULT_BLOOM_PARAMS) -> None:
        self.params = params
        self._bits = bytearray(params.n_bytes)

    def add(self, item: str) -> None:
        """Insert ``item``."""
        self.add_positions(self.params.positions(item))

    def add_positions(self, positions: Iterable[int]) -> None:
        """Insert an item by its precomputed :meth:`BloomParams.positions`."""
        bits = self._bits
        for h in positions:
            i, mask = _locate(h)
            bits[i] |= mask

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and self.contains_positions(self.params.positions(item))

    def contains_positions(self, positions: Iterable[int]) -> bool:
        """True if every position is set: the item is *probably* in the filter."""
        bits = self._bits
        for h in positions:
            i, mask = _locate(h)
            if not bits[i] & mask:
                return False
        return True

    def to_bytes(self) -> bytes:
        """The wire form (``params.n_bytes`` bytes)."""
        return bytes(self._bits)

    @classmethod
    def from_bytes(cls, data: bytes, params: BloomParams = DEFAULT_BLOOM_PARAMS) -> BloomFilter:
        """Read a peer's filter; raises :class:`DecodeError` unless it has our exact size."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("bloom filter must be bytes")
        if len(data) != params.n_bytes:
            raise DecodeError(f"bloom filter is {len(data)} bytes, expected {params.n_bytes}")
        bloom = cls(params)
        bloom._bits[:] = data
        return bloom


class RollingBloomFilter:
    """The received-ids filter a participant keeps: rolls over at capacity.

    Remembers the ids it holds (oldest first) so that it can be recomputed from
    the newest :data:`ROLL_KEEP_FRACTION` of them when it fills up.
    """

    __slots__ = ("_filter", "_ids", "_members", "_wire")

    def __init__(self, params: BloomParams = DEFAULT_BLOOM_PARAMS) -> None:
        self._filter = BloomFilter(params)
        self._ids: deque[str] = deque()
        self._members: set[str] = set()
        self._wire: bytes | None = None

    @property
    def params(self) -> BloomParams:
        return self._filter.params

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._filter

    def add(self, item: str) -> None:
        """Insert ``item`` (once); roll over first if the filter is full."""
        if item in self._members:
            return
        if len(self._ids) >= self.params.capacity:
            self._roll()
        self._ids.append(item)
        self._members.add(item)
        self._filter.add(item)
        self._wire = None

    def _roll(self) -> None:
        keep = int(self.params.capacity * ROLL_KEEP_FRACTION)
        while len(self._ids) > keep:
            self._members.discard(self._ids.popleft())
        self._filter = BloomFilter(self.params)
        for item in self._ids:
            self._filter.add(item)

    def to_bytes(self) -> bytes:
        """The wire form, cached until the next :meth:`add`."""
        if self._wire is None:
            self._wire = self._filter.to_bytes()
        return self._wire

    def ids(self) -> list[str]:
        """The ids held, oldest first (for persistence)."""
        return list(self._ids)

    @classmethod
    def from_ids(
        cls, ids: Iterable[str], params: BloomParams = DEFAULT_BLOOM_PARAMS
    ) -> RollingBloomFilter:
        """Rebuild from :meth:`ids` (the newest ``capacity`` of them are kept)."""
        rolling = cls(params)
        for item in ids:
            rolling.add(item)
        return rolling
