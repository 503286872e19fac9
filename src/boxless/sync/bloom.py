"""The SDS bloom filter of received message ids, bit-compatible with js-waku and nim-sds.

Theory of operation
-------------------
The SDS spec says each participant keeps a bloom filter of the message ids it has
received, rolled over once it reaches a predefined capacity, sized to keep false
positives low -- but leaves size, hashing and serialisation to implementations.
A receiver looks ids up in a *sender's* filter, so it must know the sender's
hashing, layout and parameters bit for bit. We follow js-waku's ``@waku/sds``
(``bloom_filter/bloom.ts``, ``DEFAULT_BLOOM_FILTER_OPTIONS``), which in turn
follows nim-sds, and tell the parameters from the size (below):

* capacity 10,000 ids at a 0.1 % false-positive rate: ``ceil(-ln(p) / ln(2)^2)``
  = 15 bits per id, ``k = round(ln(2) * 15)`` = 10 hashes, ``m`` = 150,000 bits;
* the ``n``-th position of an id is ``|a + n*b| mod m`` (Kirsch-Mitzenmacher
  double hashing) with ``a = |h(id)| mod m``, ``b = |h(id + " b")| mod m``, where
  ``h`` is Nim's string hash: MurmurHash3 x86_32, seed 0, read as a signed int32,
  over the id's bytes (UTF-8 here, as native Nim; ids are ASCII hex in practice,
  where js-waku's char codes are the same bytes);
* bit ``h`` lives in 64-bit word ``h // 64`` at bit ``h % 64``; the filter is
  ``1 + m // 64`` words, each serialised big-endian: 2,344 words = 18,752 bytes.

Sized filters. The spec leaves the size open ("rolled over once it reaches a
predefined capacity ... an optimal selection of size and hash functions"), and
js-waku's 18,752 bytes were 90 % of a group text. A filter only has to cover the
ids its receivers may still be waiting to see acknowledged -- the last hundred or
so messages of a channel, not 10,000 -- so we send smaller ones
(:meth:`BloomParams.for_window`). Senders and receivers need not agree on the size
beforehand: the size on the wire says everything (:meth:`BloomParams.for_wire_size`).

* js-waku's default size (18,752 bytes) is read with js-waku's parameters
  (``m`` = 150,000, ``k`` = 10), so older members and js-waku peers still count;
* any other whole number of 64-bit words ``W`` (2 to :data:`MAX_BLOOM_BYTES` / 8)
  is read as ``m = 64 * (W - 1)`` bits with ``k`` = :data:`SIZED_K_HASHES` = 7:
  the same layout js-waku gives a filter whose ``capacity * bits_per_id`` is a
  multiple of 64 (``W = 1 + m // 64``), e.g. js-waku's ``{capacity: 128,
  errorRate: 0.01}`` is bit for bit our ``for_window(128, 0.01)``.

The sizing math: with ``k`` hashes, ``m`` bits and ``n`` ids the false-positive
rate is ``p = (1 - e^(-k n / m))^k``; at the optimal ``k = (m / n) ln 2`` that is
``m = -n ln p / (ln 2)^2`` (9.6 bits per id at 1 %, 14.4 at 0.1 %). With ``k``
fixed at 7 (optimal for 1 %), ``m = -k n / ln(1 - p^(1/k))``: 9.6 bits per id at
1 % and 15.0 at 0.1 %, within 4 % of the optimum over that range. Rounded up to
whole 64-bit words.

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
    "MAX_BLOOM_BYTES",
    "MIN_BLOOM_BYTES",
    "ROLL_KEEP_FRACTION",
    "SIZED_K_HASHES",
    "WINDOW_BLOOM_PARAMS",
    "BloomFilter",
    "BloomParams",
    "RollingBloomFilter",
    "base_hashes",
    "hash_n",
    "murmur3_32",
]

#: When a rolling filter reaches capacity it keeps this fraction of its newest ids.
ROLL_KEEP_FRACTION: Final = 0.8
#: Hashes per id of every filter that is not js-waku's default size.
SIZED_K_HASHES: Final = 7
#: Smallest and largest filter read from a peer (2 words; 512 kbit, 28x js-waku's).
MIN_BLOOM_BYTES: Final = 16
MAX_BLOOM_BYTES: Final = 65_536

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


def base_hashes(item: str) -> tuple[int, int]:
    """The two hashes every position of ``item`` derives from, for any filter size."""
    raw = item.encode("utf-8")
    return abs(murmur3_32(raw)), abs(murmur3_32(raw + b" b"))


def hash_n(item: str, n: int, max_value: int) -> int:
    """The ``n``-th bloom position of ``item`` in ``[0, max_value)`` (nim-sds ``hashN``)."""
    ha, hb = base_hashes(item)
    return (ha % max_value + n * (hb % max_value)) % max_value


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

    @classmethod
    def for_window(cls, capacity: int, error_rate: float) -> BloomParams:
        """The smallest filter with :data:`SIZED_K_HASHES` hashes that holds ``capacity``
        ids at ``error_rate``, in whole 64-bit words: readable by size alone."""
        if capacity < 1 or not 0.0 < error_rate < 1.0:
            raise UsageError("bloom filter needs capacity >= 1 and 0 < error_rate < 1")
        k = SIZED_K_HASHES
        bits = -k * capacity / math.log(1.0 - error_rate ** (1.0 / k))
        total_bits = 64 * max(1, math.ceil(bits / 64))
        params = cls(capacity, error_rate, k, total_bits)
        if params.n_bytes > MAX_BLOOM_BYTES:
            raise UsageError(f"a bloom filter of {params.n_bytes} bytes is too large to send")
        return params

    @classmethod
    def for_wire_size(cls, n_bytes: int) -> BloomParams:
        """How a peer's filter of ``n_bytes`` is read (see the module docstring).

        Raises :class:`DecodeError` for a size no filter has: not whole 64-bit
        words, or outside ``[MIN_BLOOM_BYTES, MAX_BLOOM_BYTES]``.
        """
        if n_bytes == DEFAULT_BLOOM_PARAMS.n_bytes:
            return DEFAULT_BLOOM_PARAMS
        if n_bytes % 8 or not MIN_BLOOM_BYTES <= n_bytes <= MAX_BLOOM_BYTES:
            raise DecodeError(f"a bloom filter cannot be {n_bytes} bytes")
        total_bits = 8 * n_bytes - 64
        k = SIZED_K_HASHES
        capacity = max(1, int(total_bits * -math.log(1.0 - 0.01 ** (1.0 / k)) / k))
        return cls(capacity, 0.01, k, total_bits)

    @property
    def n_bytes(self) -> int:
        """Serialised size: ``1 + total_bits // 64`` big-endian 64-bit words."""
        return 8 * (1 + self.total_bits // 64)

    def positions(self, item: str) -> tuple[int, ...]:
        """The ``k`` bit positions of ``item``."""
        return self.positions_of(base_hashes(item))

    def positions_of(self, base: tuple[int, int]) -> tuple[int, ...]:
        """The ``k`` bit positions of an item from its :func:`base_hashes`."""
        m = self.total_bits
        a, b = base[0] % m, base[1] % m
        return tuple((a + n * b) % m for n in range(self.k_hashes))


#: js-waku's ``DEFAULT_BLOOM_FILTER_OPTIONS`` (capacity 10,000, error rate 0.001).
DEFAULT_BLOOM_PARAMS: Final = BloomParams.for_capacity(10_000, 0.001)
#: What SDS sends by default: the last 128 ids at 1 % (1,280 bits, k = 7, 168 bytes;
#: js-waku's ``{capacity: 128, errorRate: 0.01}`` bit for bit). See docs/groups.md.
WINDOW_BLOOM_PARAMS: Final = BloomParams.for_window(128, 0.01)


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
    def from_bytes(cls, data: bytes, params: BloomParams | None = None) -> BloomFilter:
        """Read a peer's filter, of any size (:meth:`BloomParams.for_wire_size`), or of
        exactly ``params``' size if given; raises :class:`DecodeError` otherwise."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("bloom filter must be bytes")
        if params is None:
            params = BloomParams.for_wire_size(len(data))
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
