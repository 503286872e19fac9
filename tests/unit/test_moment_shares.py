"""Moments keying, sans-IO: the shares message codec and who gets a post key how.

Attackers: a non-audience member (a reader whose record is not there), a
reader of one post re-using another reader's record under its own header, a
forged record, a message claiming more records than allowed, garbage bytes.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat import moment_shares as shares
from boxless.chat.moment import MomentKey, MomentReader
from boxless.client.moments_core import FeedState, plan_readers
from boxless.errors import DecodeError, UsageError

A, B, C, D = (bytes([i]) * 32 for i in range(1, 5))


def _share(**kw: object) -> MomentKey:
    args: dict[str, object] = {
        "post_id": os.urandom(16), "key": os.urandom(32), "message_hash": os.urandom(32),
        "posted_at_ms": 1_000, "visible_until_ms": 5_000, "content_blob": b"\x01blob",
    }  # fmt: skip
    args.update(kw)
    return MomentKey(**args)  # type: ignore[arg-type]


def test_each_reader_finds_only_its_own_share() -> None:
    readers = [os.urandom(32) for _ in range(20)]
    share = _share()
    [payload] = shares.build(share, readers[:15])
    parsed = shares.parse(payload)
    assert len(parsed.records) == 16  # padded to a multiple of 8: the audience size is rough
    assert len(payload) < 16 * shares.RECORD_BYTES + 300  # ~56 bytes a reader, O(1) rest
    for r in readers[:15]:
        assert shares.open_share(parsed, r) == share
    for r in readers[15:]:  # not in this post's audience: no record, nothing learned
        assert shares.open_share(parsed, r) is None
    for secret in (share.key, share.post_id, *readers):
        assert secret not in payload


def test_a_big_audience_takes_several_messages() -> None:
    readers = [os.urandom(32) for _ in range(shares.MAX_RECORDS + 10)]
    payloads = shares.build(_share(), readers)
    assert len(payloads) == 2 and all(len(p) < 150 * 1024 for p in payloads)
    found = [shares.open_share(shares.parse(p), readers[-1]) for p in payloads]
    assert [f is not None for f in found] == [False, True]


def test_a_reader_cannot_reuse_another_readers_record_under_its_own_header() -> None:
    b_key, c_key = os.urandom(32), os.urandom(32)
    share = _share()
    parsed = shares.parse(shares.build(share, [b_key, c_key])[0])
    # C knows the post key K: it writes a header of its own (another post id and
    # content address, same K) and keeps B's record: bound to the old header, B's
    # record is not even found under the new one
    evil = _share(key=share.key)
    forged_header = shares.parse(shares.build(evil, [c_key])[0]).header
    forged = shares.Shares(parsed.salt, parsed.records, forged_header)
    assert shares.open_share(forged, b_key) is None
    # a record with B's tag but bytes of its own: forged too
    tag = shares.reader_tag(b_key, parsed.salt, parsed.header_digest())
    flipped = dict(parsed.records)
    flipped[tag] = bytes(32)
    with pytest.raises(DecodeError, match="forged"):
        shares.open_share(shares.Shares(parsed.salt, flipped, parsed.header), b_key)


def test_a_reader_key_never_travels_in_shares_and_limits_hold() -> None:
    with pytest.raises(UsageError):
        shares.build(_share(reader=MomentReader(A, B, 1)), [C])
    [payload] = shares.build(_share(), [C])
    too_many = payload[:20] + (shares.MAX_RECORDS + 1).to_bytes(2, "big") + payload[22:]
    with pytest.raises(DecodeError, match="at most"):
        shares.parse(too_many)
    with pytest.raises(DecodeError):
        shares.parse(payload[:-100])  # truncated: the header is short
    with pytest.raises(DecodeError):
        shares.parse(b"XXXX" + payload[4:])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.binary(min_size=32, max_size=32))
def test_the_shares_decoder_takes_any_bytes(raw: bytes, reader_key: bytes) -> None:
    for payload in (raw, b"BXS1" + raw):
        try:
            parsed = shares.parse(payload)
        except DecodeError:
            continue
        try:
            assert shares.open_share(parsed, reader_key) is None or True
        except DecodeError:
            pass


def test_feed_topics_name_no_one() -> None:
    secret = os.urandom(32)
    topic = shares.feed_topic(secret)
    assert topic.startswith("/boxless/1/moments-") and secret.hex()[:8] not in topic
    assert shares.feed_topic(os.urandom(32)) != topic


def _keys() -> object:
    n = iter(range(1000))
    return lambda: bytes([next(n)]) * 32


def test_steady_state_posts_need_no_olm_message() -> None:
    feed = FeedState(b"f" * 32, 3)
    readers = {B: (b"b" * 32, 3), C: (b"c" * 32, 3), D: (b"d" * 32, 2)}
    plan = plan_readers(readers, feed, {B, C, D}, {B, C, D}, new_key=_keys())  # type: ignore[arg-type]
    assert plan.feed == feed and not plan.stale
    assert plan.by_shares == (B, C) and plan.by_olm == {D}  # D holds an old epoch
    assert plan.reader_keys[D] == b"d" * 32  # same reader key, new feed secret
    # a contact in no post yet, or excluded from this one
    plan = plan_readers(readers, feed, {A, B, C, D}, {A, B}, new_key=_keys())  # type: ignore[arg-type]
    assert plan.by_shares == (B,) and plan.by_olm == {A}
    assert C not in plan.reader_keys and D not in plan.reader_keys


def test_a_removed_or_hidden_reader_rotates_the_feed_and_gets_nothing() -> None:
    feed = FeedState(b"f" * 32, 3)
    readers = {B: (b"b" * 32, 3), C: (b"c" * 32, 3)}
    plan = plan_readers(readers, feed, {B}, {B}, new_key=_keys())  # type: ignore[arg-type]
    assert plan.stale == {C} and plan.feed.epoch == 4 and plan.feed.secret != feed.secret
    assert plan.by_olm == {B} and plan.by_shares == ()  # B learns the new feed secret once
    assert C not in plan.reader_keys


def test_a_key_share_with_a_reader_key_and_a_blob_round_trips_through_olm_bodies() -> None:
    from boxless.chat import envelope as env

    share = _share(reader=MomentReader(A, B, 7))
    msg = env.new_message(share, lamport=1, sent_at_ms=1)
    assert env.decode(env.encode(msg)).body == share
    with pytest.raises(UsageError):
        MomentReader(A, B[:31], 1)
    with pytest.raises(UsageError):
        _share(content_blob=b"x" * 2000)
