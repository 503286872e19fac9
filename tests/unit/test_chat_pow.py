"""Proof of work for contact requests, and the token-bucket rate limiter."""

from __future__ import annotations

import hashlib
import os
import statistics
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat import pow as pw
from boxless.chat.pow import PowVerdict, ProofOfWork, RateLimiter, check_proof, solve, verify
from boxless.errors import UsageError

ALICE = b"A" * 32
BOB = b"B" * 32
MALLORY = b"M" * 32
NOW = 1_700_000_000_000
EASY = 8  # tests solve at 8 bits (~256 hashes); the default is measured below


def _solved(difficulty: int = EASY, timestamp_ms: int = NOW) -> ProofOfWork:
    proof = solve(BOB, ALICE, timestamp_ms, difficulty=difficulty)
    assert proof is not None
    return proof


def test_solution_verifies_and_meets_difficulty() -> None:
    proof = _solved()
    assert verify(BOB, ALICE, proof, now_ms=NOW, difficulty=EASY)
    digest = hashlib.sha256(
        pw.DOMAIN + BOB + ALICE + NOW.to_bytes(8, "big", signed=True) + proof.nonce
    ).digest()
    assert pw.leading_zero_bits(digest) >= EASY  # the documented layout, recomputed by hand


def test_proof_is_bound_to_both_keys_and_the_timestamp() -> None:
    proof = _solved(difficulty=16)
    assert check_proof(BOB, ALICE, proof, now_ms=NOW, difficulty=16) is PowVerdict.OK
    # another recipient, another sender, another timestamp: a fresh 16-bit hash passes 1 in 65536
    assert not verify(MALLORY, ALICE, proof, now_ms=NOW, difficulty=16)
    assert not verify(BOB, MALLORY, proof, now_ms=NOW, difficulty=16)
    moved = ProofOfWork(NOW + 1, proof.nonce)
    assert check_proof(BOB, ALICE, moved, now_ms=NOW, difficulty=16) is PowVerdict.INSUFFICIENT


def test_higher_difficulty_rejects_a_weaker_proof() -> None:
    proof = _solved(difficulty=4)
    zeros = pw.leading_zero_bits(
        hashlib.sha256(
            pw.DOMAIN + BOB + ALICE + NOW.to_bytes(8, "big", signed=True) + proof.nonce
        ).digest()
    )
    assert verify(BOB, ALICE, proof, now_ms=NOW, difficulty=zeros)
    assert not verify(BOB, ALICE, proof, now_ms=NOW, difficulty=zeros + 1)


def test_stale_and_future_proofs_are_rejected() -> None:
    proof = _solved()
    hour = 3_600_000
    assert check_proof(BOB, ALICE, proof, now_ms=NOW + hour, difficulty=EASY) is PowVerdict.OK
    stale = check_proof(BOB, ALICE, proof, now_ms=NOW + hour + 1, difficulty=EASY)
    assert stale is PowVerdict.STALE
    ahead = NOW - pw.MAX_FUTURE_MS - 1
    assert check_proof(BOB, ALICE, proof, now_ms=ahead, difficulty=EASY) is PowVerdict.FUTURE


def test_malformed_keys() -> None:
    proof = _solved()
    assert check_proof(b"short", ALICE, proof, now_ms=NOW) is PowVerdict.MALFORMED
    with pytest.raises(UsageError, match="recipient key must be 32 bytes"):
        solve(b"short", ALICE, NOW)
    with pytest.raises(UsageError, match="nonce is 8 bytes"):
        ProofOfWork(NOW, b"123")
    with pytest.raises(UsageError, match="difficulty"):
        solve(BOB, ALICE, NOW, difficulty=65)


def test_solving_in_slices_finds_the_same_nonce() -> None:
    whole = _solved(difficulty=12)
    first = int.from_bytes(whole.nonce, "big")
    assert solve(BOB, ALICE, NOW, difficulty=12, max_iterations=first) is None
    resumed = solve(BOB, ALICE, NOW, difficulty=12, start_nonce=first, max_iterations=1)
    assert resumed == whole


def test_zero_difficulty_is_free() -> None:
    assert solve(BOB, ALICE, NOW, difficulty=0) == ProofOfWork(NOW, bytes(8))


@given(st.binary(min_size=8, max_size=8), st.integers(-(2**63), 2**63 - 1))
def test_check_never_raises_on_peer_values(nonce: bytes, ts: int) -> None:
    verdict = check_proof(BOB, ALICE, ProofOfWork(ts, nonce), now_ms=NOW)
    assert verdict in set(PowVerdict)


@pytest.mark.skipif(not os.environ.get("BOXLESS_POW_BENCH"), reason="set BOXLESS_POW_BENCH=1")
def test_default_difficulty_solve_time() -> None:  # pragma: no cover - a measurement
    times = []
    for i in range(30):
        start = time.perf_counter()
        assert solve(os.urandom(32), os.urandom(32), NOW + i) is not None
        times.append(time.perf_counter() - start)
    print(
        f"\ndifficulty {pw.DEFAULT_DIFFICULTY}: mean {statistics.mean(times):.2f} s, "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"
    )


# --- rate limiter --------------------------------------------------------------------


def test_bucket_allows_a_burst_then_refills() -> None:
    limiter = RateLimiter(rate_per_s=0.5, burst=3)
    assert [limiter.allow(ALICE, 0.0) for _ in range(4)] == [True, True, True, False]
    assert not limiter.allow(ALICE, 1.0)  # half a token
    assert limiter.allow(ALICE, 2.0)  # one token back
    assert not limiter.allow(ALICE, 2.0)
    assert limiter.allow(BOB, 2.0)  # other senders have their own bucket
    assert [limiter.allow(ALICE, 1000.0) for _ in range(4)] == [True, True, True, False]  # capped


def test_clock_going_back_refills_nothing() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1)
    assert limiter.allow(ALICE, 100.0)
    assert not limiter.allow(ALICE, 50.0)
    assert not limiter.allow(ALICE, 100.5)
    assert limiter.allow(ALICE, 101.0)


def test_memory_is_bounded_least_recently_used_first() -> None:
    limiter = RateLimiter(rate_per_s=0, burst=1, max_keys=2)
    assert limiter.allow(ALICE, 0) and limiter.allow(BOB, 0)
    assert not limiter.allow(ALICE, 0)  # ALICE is now the most recently used
    assert limiter.allow(MALLORY, 0)  # evicts BOB
    assert len(limiter) == 2
    assert not limiter.allow(ALICE, 0)  # still remembered
    assert limiter.allow(BOB, 0)  # forgotten: a fresh bucket


def test_limiter_arguments_are_checked() -> None:
    with pytest.raises(UsageError):
        RateLimiter(rate_per_s=-1, burst=1)
    with pytest.raises(UsageError):
        RateLimiter(rate_per_s=1, burst=0)


def test_available_predicts_allow_and_changes_nothing() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, max_keys=1)
    assert limiter.available(ALICE, 0.0) and len(limiter) == 0
    assert limiter.allow(ALICE, 0.0)
    assert not limiter.available(ALICE, 0.5)
    assert limiter.available(ALICE, 1.0)
    assert limiter.available(BOB, 1.0) and len(limiter) == 1  # BOB did not evict ALICE
    assert limiter.allow(ALICE, 1.0) and not limiter.allow(ALICE, 1.0)


# --- spent proofs --------------------------------------------------------------------


def test_a_spent_proof_is_spent_until_it_goes_stale() -> None:
    spent = pw.SpentProofs()
    proof = _solved()
    digest = pw.proof_digest(BOB, ALICE, proof)
    assert (
        digest
        == hashlib.sha256(
            pw.DOMAIN + BOB + ALICE + NOW.to_bytes(8, "big", signed=True) + proof.nonce
        ).digest()
    )
    assert not spent.is_spent(digest, NOW)
    spent.spend(digest, NOW, now_ms=NOW)
    assert spent.is_spent(digest, NOW)
    with pytest.raises(UsageError, match="spent already"):
        spent.spend(digest, NOW, now_ms=NOW)
    # an hour later it is forgotten on the next spend, but the floor still refuses it
    other = pw.proof_digest(BOB, MALLORY, proof)
    spent.spend(other, NOW + pw.MAX_AGE_MS + 1, now_ms=NOW + pw.MAX_AGE_MS + 1)
    assert len(spent) == 1 and spent.floor_ms == NOW
    assert spent.is_spent(digest, NOW)


def test_a_full_table_forgets_the_oldest_and_raises_its_floor() -> None:
    """Attack: flood the table so that it forgets a spent proof, then replay that proof."""
    spent = pw.SpentProofs(max_entries=3)
    digests = [bytes([i]) * 32 for i in range(5)]
    for i, digest in enumerate(digests):
        spent.spend(digest, NOW + i, now_ms=NOW)
    assert len(spent) == 3
    assert all(spent.is_spent(d, NOW + i) for i, d in enumerate(digests))
    assert not spent.is_spent(b"x" * 32, NOW + 2)  # above the floor, never spent


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=4), st.integers(0, 10_000)), max_size=60))
def test_spent_proofs_never_forget_a_replay_and_stay_bounded(
    spends: list[tuple[bytes, int]],
) -> None:
    spent = pw.SpentProofs(max_entries=8, max_age_ms=5_000)
    done: list[tuple[bytes, int]] = []
    now = 0
    for digest, ts in spends:
        now = max(now, ts)
        if spent.is_spent(digest, ts):
            continue
        spent.spend(digest, ts, now_ms=now)
        done.append((digest, ts))
        assert len(spent) <= 8
    assert all(spent.is_spent(d, ts) for d, ts in done)
