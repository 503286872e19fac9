"""Proof of work for unsolicited contact requests, and a rate limiter for them.

Theory of operation
-------------------
Identities are free to make, so a contact request from a stranger must cost its
sender something. The cost is hashcash: the sender searches for a ``nonce`` such
that::

    sha256(DOMAIN ‖ recipient_key ‖ sender_key ‖ timestamp_ms ‖ nonce)

starts with at least ``difficulty`` zero bits. The fields have a fixed layout
(32-byte Ed25519 keys, ``timestamp_ms`` as 8 bytes big-endian signed, ``nonce``
as 8 bytes), so any implementation can recompute the hash. Binding both keys
means a proof cannot be replayed to another recipient or claimed by another
sender (the sender key is the one the Olm session proved, not a field the
sender picks freely); binding the timestamp, with proofs older than
:data:`MAX_AGE_MS` (or more than :data:`MAX_FUTURE_MS` ahead) rejected, means
proofs cannot be stockpiled. Verifying is one hash.

Difficulty: :data:`DEFAULT_DIFFICULTY` = 20 bits, 2^20 ≈ 1.05 M hashes expected.
Measured on the development machine (2 vCPUs, CPython 3.11, hashlib with a
precomputed prefix state) at ~1.37 M hashes/s, i.e. a mean solve of 0.77 s in
theory; 30 solves measured a mean of 0.73 s, median 0.52 s, max 4.6 s (the
number of tries is geometric: 1 solve in 20 takes over 3x the mean). Re-measure
with ``BOXLESS_POW_BENCH=1 pytest -s tests/unit/test_chat_pow.py -k solve_time``.
Each extra bit doubles the cost; verification is one hash either way.

Solving is CPU-bound and sans-IO: :func:`solve` tries at most ``max_iterations``
nonces from ``start_nonce`` and returns ``None`` if none works, so an async
adapter can solve in slices in a worker thread and stay cancellable between them.

:class:`RateLimiter` is a token bucket per key (the sender's identity key) with
bounded memory, time passed in as an argument.

*Single use.* A proof stays fresh for :data:`MAX_AGE_MS`, so without memory one
solved proof could be sent again and again for an hour, each copy paid for once.
:class:`SpentProofs` remembers the hash (:func:`proof_digest`) of every proof
that was spent until it goes stale anyway, in bounded memory: when it must
forget one early (full) or on time (expired), it raises a *floor* to that
proof's timestamp and from then on refuses every proof dated at or below the
floor, because it can no longer tell whether such a proof was spent. With the
request gate's rate limits the table never fills, so the floor only ever
passes proofs that are stale already.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from boxless.errors import UsageError

__all__ = [
    "DEFAULT_DIFFICULTY",
    "DOMAIN",
    "KEY_BYTES",
    "MAX_AGE_MS",
    "MAX_FUTURE_MS",
    "NONCE_BYTES",
    "PowVerdict",
    "ProofOfWork",
    "RateLimiter",
    "SpentProofs",
    "check_proof",
    "leading_zero_bits",
    "proof_digest",
    "solve",
    "verify",
]

DOMAIN: Final = b"boxless contact request pow v1\x00"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 8
DEFAULT_DIFFICULTY: Final = 20
"""Leading zero bits required; ~0.75 s mean solve in CPython (see the module docstring)."""
MAX_DIFFICULTY: Final = 64
MAX_AGE_MS: Final = 60 * 60 * 1000
"""Proofs older than one hour are stale."""
MAX_FUTURE_MS: Final = 10 * 60 * 1000
"""Clock skew tolerated for proofs dated in the future."""

_MAX_NONCE: Final = (1 << (8 * NONCE_BYTES)) - 1
_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class ProofOfWork:
    """A solved proof: the timestamp it covers and the nonce that works."""

    timestamp_ms: int
    nonce: bytes

    def __post_init__(self) -> None:
        if len(self.nonce) != NONCE_BYTES:
            raise UsageError(f"a proof-of-work nonce is {NONCE_BYTES} bytes, not {len(self.nonce)}")
        if not _I64_MIN <= self.timestamp_ms <= _I64_MAX:
            raise UsageError("a proof-of-work timestamp must fit in 64 signed bits")


class PowVerdict(enum.Enum):
    """What :func:`check_proof` found. Only ``OK`` means the proof is good."""

    OK = "ok"
    INSUFFICIENT = "insufficient"  # the hash has too few leading zero bits
    STALE = "stale"  # older than MAX_AGE_MS
    FUTURE = "future"  # dated more than MAX_FUTURE_MS ahead
    MALFORMED = "malformed"  # a key or nonce of the wrong size


def _check_keys(recipient_key: bytes, sender_key: bytes) -> None:
    for name, key in (("recipient", recipient_key), ("sender", sender_key)):
        if len(key) != KEY_BYTES:
            raise UsageError(f"the {name} key must be {KEY_BYTES} bytes, not {len(key)}")


def _check_difficulty(difficulty: int) -> None:
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise UsageError(f"difficulty must be 0..{MAX_DIFFICULTY} bits, got {difficulty}")


def _prefix(recipient_key: bytes, sender_key: bytes, timestamp_ms: int) -> bytes:
    return DOMAIN + recipient_key + sender_key + timestamp_ms.to_bytes(8, "big", signed=True)


def leading_zero_bits(digest: bytes) -> int:
    """Return how many leading bits of ``digest`` are zero."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solve(
    recipient_key: bytes,
    sender_key: bytes,
    timestamp_ms: int,
    *,
    difficulty: int = DEFAULT_DIFFICULTY,
    max_iterations: int | None = None,
    start_nonce: int = 0,
) -> ProofOfWork | None:
    """Search nonces ``start_nonce, start_nonce + 1, ...`` for a proof.

    Tries at most ``max_iterations`` nonces (default: 64 times the expected
    number, which fails with probability e^-64) and returns ``None`` if none
    meets ``difficulty``. CPU-bound: run it in a worker thread, in slices.
    """
    _check_keys(recipient_key, sender_key)
    _check_difficulty(difficulty)
    if max_iterations is None:
        max_iterations = 64 << difficulty
    if max_iterations < 0 or not 0 <= start_nonce <= _MAX_NONCE:
        raise UsageError("max_iterations and start_nonce must be non-negative (nonce < 2^64)")
    ProofOfWork(timestamp_ms, bytes(NONCE_BYTES))  # validates the timestamp
    base = hashlib.sha256(_prefix(recipient_key, sender_key, timestamp_ms))
    target = 1 << (256 - difficulty)
    stop = min(start_nonce + max_iterations, _MAX_NONCE + 1)
    for counter in range(start_nonce, stop):
        nonce = counter.to_bytes(NONCE_BYTES, "big")
        attempt = base.copy()
        attempt.update(nonce)
        if int.from_bytes(attempt.digest(), "big") < target:
            return ProofOfWork(timestamp_ms, nonce)
    return None


def proof_digest(recipient_key: bytes, sender_key: bytes, proof: ProofOfWork) -> bytes:
    """The proof's hash: what :class:`SpentProofs` remembers (it binds both keys)."""
    return hashlib.sha256(
        _prefix(recipient_key, sender_key, proof.timestamp_ms) + proof.nonce
    ).digest()


def check_proof(
    recipient_key: bytes,
    sender_key: bytes,
    proof: ProofOfWork,
    *,
    now_ms: int,
    difficulty: int = DEFAULT_DIFFICULTY,
) -> PowVerdict:
    """Judge a proof received from a peer: one hash and a clock comparison."""
    _check_difficulty(difficulty)
    if len(recipient_key) != KEY_BYTES or len(sender_key) != KEY_BYTES:
        return PowVerdict.MALFORMED
    if proof.timestamp_ms < now_ms - MAX_AGE_MS:
        return PowVerdict.STALE
    if proof.timestamp_ms > now_ms + MAX_FUTURE_MS:
        return PowVerdict.FUTURE
    if leading_zero_bits(proof_digest(recipient_key, sender_key, proof)) < difficulty:
        return PowVerdict.INSUFFICIENT
    return PowVerdict.OK


def verify(
    recipient_key: bytes,
    sender_key: bytes,
    proof: ProofOfWork,
    *,
    now_ms: int,
    difficulty: int = DEFAULT_DIFFICULTY,
) -> bool:
    """Return whether ``proof`` is fresh and meets ``difficulty`` (see :func:`check_proof`)."""
    verdict = check_proof(recipient_key, sender_key, proof, now_ms=now_ms, difficulty=difficulty)
    return verdict is PowVerdict.OK


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by sender, with at most ``max_keys`` buckets in memory.

    Each key may spend ``burst`` requests at once and regains ``rate_per_s``
    per second. When ``max_keys`` is reached the least recently used bucket is
    forgotten (its key then starts again with a full bucket); for contact
    requests every new key has already paid a proof of work, so cycling through
    keys to escape the limit costs the attacker that work each time.

    ``now`` is any non-decreasing clock in seconds; a clock that goes backwards
    refills nothing.
    """

    def __init__(self, *, rate_per_s: float, burst: float, max_keys: int = 10_000) -> None:
        if rate_per_s < 0 or burst < 1 or max_keys < 1:
            raise UsageError("rate_per_s must be >= 0, burst >= 1 and max_keys >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def available(self, key: bytes, now: float) -> bool:
        """Whether :meth:`allow` would succeed now; changes nothing (not even recency)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return True
        elapsed = max(0.0, now - bucket.updated)
        return min(self.burst, bucket.tokens + elapsed * self.rate_per_s) >= 1

    def allow(self, key: bytes, now: float) -> bool:
        """Spend one token for ``key`` at time ``now``; False when it has none left."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated = max(bucket.updated, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False


class SpentProofs:
    """The proofs already spent, until they go stale, in at most ``max_entries``.

    :meth:`is_spent` answers True for a proof spent before, and also for any
    proof dated at or below :attr:`floor_ms`: the newest timestamp this table
    has forgotten (an entry that expired, or the oldest one pushed out when the
    table was full), because whether such a proof was spent is no longer known.
    ``now_ms`` is passed in; nothing here reads a clock.
    """

    def __init__(self, *, max_entries: int = 50_000, max_age_ms: int = MAX_AGE_MS) -> None:
        if max_entries < 1 or max_age_ms < 0:
            raise UsageError("max_entries must be >= 1 and max_age_ms >= 0")
        self.max_entries = max_entries
        self.max_age_ms = max_age_ms
        self.floor_ms = _I64_MIN - 1
        self._spent: dict[bytes, int] = {}
        self._by_time: list[tuple[int, bytes]] = []  # a heap of (timestamp_ms, digest)

    def __len__(self) -> int:
        return len(self._spent)

    def is_spent(self, digest: bytes, timestamp_ms: int) -> bool:
        """Whether this proof may not be spent (again); changes nothing."""
        return timestamp_ms <= self.floor_ms or digest in self._spent

    def spend(self, digest: bytes, timestamp_ms: int, *, now_ms: int) -> None:
        """Remember a proof as spent; forget expired ones, and the oldest when full."""
        if self.is_spent(digest, timestamp_ms):
            raise UsageError("this proof of work was spent already")
        self._forget(lambda ts: ts < now_ms - self.max_age_ms)
        self._spent[digest] = timestamp_ms
        heapq.heappush(self._by_time, (timestamp_ms, digest))
        self._forget(lambda _ts: len(self._spent) > self.max_entries)

    def _forget(self, should: Callable[[int], bool]) -> None:
        while self._by_time and should(self._by_time[0][0]):
            timestamp_ms, digest = heapq.heappop(self._by_time)
            del self._spent[digest]
            self.floor_ms = max(self.floor_ms, timestamp_ms)
