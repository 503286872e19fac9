"""Moments' pure parts: the wire codec (with hypothesis), sealing, audiences, the rules."""

from __future__ import annotations

import os

import pytest
from google.protobuf.message import DecodeError as ProtobufDecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat import moment as m
from boxless.client import moments_core as core
from boxless.client.moments_core import AudienceMode, PostFacts, Window
from boxless.errors import DecodeError, UsageError
from boxless.wire import moment_pb2

A, B, C, D = (bytes([i]) * 32 for i in range(1, 5))
PID = b"p" * 16


def test_bodies_round_trip_through_the_envelope() -> None:
    bodies: list[m.MomentBody] = [
        m.MomentKey(PID, b"k" * 32, b"h" * 32, 5, 0),
        m.MomentDelete(PID),
        m.MomentAct(PID, b"a" * 16, m.ActKind.COMMENT, "hi", b"r" * 16, None, (b"t" * 8,)),
        m.MomentAct(PID, b"a" * 16, m.ActKind.UNCOMMENT, target=b"c" * 16),
        m.MomentRelay(A, m.MomentAct(PID, b"a" * 16, m.ActKind.LIKE), 7),
    ]
    for body in bodies:
        msg = env.new_message(body, lamport=1, sent_at_ms=1)
        assert env.decode(env.encode(msg)).body == body


@pytest.mark.parametrize(
    "build",
    [
        lambda: m.MomentKey(b"short", b"k" * 32, b"h" * 32, 5),
        lambda: m.MomentAct(PID, b"a" * 16, m.ActKind.COMMENT, ""),  # empty comment
        lambda: m.MomentAct(PID, b"a" * 16, m.ActKind.COMMENT, "x" * 1001),
        lambda: m.MomentAct(PID, b"a" * 16, m.ActKind.LIKE, "text on a like"),
        lambda: m.MomentAct(PID, b"a" * 16, m.ActKind.UNCOMMENT),  # names no comment
        lambda: m.MomentAct(PID, b"a" * 16, m.ActKind.LIKE, contact_tags=(b"t" * 8,) * 4001),
        lambda: m.MomentRelay(
            A, m.MomentAct(PID, b"a" * 16, m.ActKind.LIKE, contact_tags=(b"t" * 8,)), 1
        ),
        lambda: m.MomentContent(PID, A, ""),  # nothing to show
        lambda: m.MomentContent(PID, A, "x" * 2001),
        lambda: m.MomentContent(PID, A, "hi", place="p" * 101),
        lambda: m.MomentContent(PID, A, "hi", mentions=(B, B)),
        lambda: m.MomentContent(PID, A, "hi\x00"),
    ],
)
def test_bad_values_are_refused(build: object) -> None:
    with pytest.raises(UsageError):
        build()  # type: ignore[operator]


def test_sealed_content_opens_only_under_its_key_and_id() -> None:
    key = os.urandom(32)
    content = m.MomentContent(PID, A, "secret text", "Place", (B,), (), 9)
    sealed = m.seal_content(key, content)
    assert b"secret" not in sealed and b"Place" not in sealed and B not in sealed
    assert m.open_content(key, PID, sealed) == content
    with pytest.raises(DecodeError):
        m.open_content(os.urandom(32), PID, sealed)
    with pytest.raises(DecodeError):
        m.open_content(key, b"q" * 16, sealed)
    # a key holder re-sealing under another post id is caught by the id inside
    other = m.seal_content(key, m.MomentContent(b"q" * 16, A, "swap"))
    with pytest.raises(DecodeError):
        m.open_content(key, PID, other)
    assert m.content_topic(key).startswith("/boxless/1/moment-")
    assert m.content_topic(key) != m.content_topic(os.urandom(32))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_moment_body_decoder_takes_any_bytes(raw: bytes) -> None:
    pb = moment_pb2.MomentBody()
    try:
        pb.ParseFromString(raw)
    except (ProtobufDecodeError, ValueError):  # protobuf's own refusal of malformed bytes
        return
    try:
        m.decode_body(pb)
    except UsageError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.binary(min_size=16, max_size=16))
def test_content_decoder_and_opener_take_any_bytes(raw: bytes, post_id: bytes) -> None:
    for call in (
        lambda: m.MomentContent.decode(raw),
        lambda: m.open_content(b"k" * 32, post_id, raw),
    ):
        try:
            call()
        except DecodeError:
            pass


def test_audiences_are_resolved_on_the_posters_device() -> None:
    contacts = [B, C, D]
    assert core.resolve_audience(AudienceMode.ALL, [], contacts, []) == {B, C, D}
    assert core.resolve_audience(AudienceMode.EXCEPT, [D], contacts, []) == {B, C}
    assert core.resolve_audience(AudienceMode.ONLY, [B], contacts, []) == {B}
    assert core.resolve_audience(AudienceMode.ME, [], contacts, []) == set()
    assert core.resolve_audience(AudienceMode.ALL, [], contacts, [C]) == {B, D}  # hidden from C
    assert core.resolve_audience(AudienceMode.ONLY, [B, C], contacts, [C]) == {B}
    with pytest.raises(UsageError):
        core.resolve_audience(AudienceMode.ONLY, [A], contacts, [])  # a stranger
    with pytest.raises(UsageError):
        core.resolve_audience(AudienceMode.ONLY, [], contacts, [])


def test_windows() -> None:
    assert Window.DAYS3.until(1000) == 1000 + 3 * core.DAY_MS
    assert Window.ALL.until(1000) == 0
    assert core.visible(0, 10**15) and core.visible(5, 4) and not core.visible(5, 5)


LIKE = m.MomentAct(PID, b"a" * 16, m.ActKind.LIKE)
COMMENT = m.MomentAct(PID, b"a" * 16, m.ActKind.COMMENT, "hi")
UNCOMMENT = m.MomentAct(PID, b"a" * 16, m.ActKind.UNCOMMENT, target=b"c" * 16)
MINE = PostFacts(poster=A, mine=True, deleted=False, in_audience=True)


@pytest.mark.parametrize(
    ("sender", "act", "facts", "reason"),
    [
        (B, LIKE, MINE, None),
        (B, COMMENT, MINE, None),
        (B, LIKE, None, "no_such_post"),  # a post that does not exist
        (B, LIKE, PostFacts(poster=C, mine=False, deleted=False), "no_such_post"),  # not ours
        (D, COMMENT, PostFacts(poster=A, mine=True, deleted=False), "not_audience"),
        (
            B,
            COMMENT,
            PostFacts(poster=A, mine=True, deleted=True, in_audience=True),
            "post_deleted",
        ),
        (B, UNCOMMENT, PostFacts(A, True, False, True, target_author=C), "not_author"),
        (B, UNCOMMENT, PostFacts(A, True, False, True, target_author=B), None),
        (A, UNCOMMENT, PostFacts(A, True, False, False, target_author=C), None),  # the poster
        (B, UNCOMMENT, PostFacts(A, True, False, True, target_author=None), "no_such_post"),
        (
            B,
            COMMENT,
            PostFacts(A, True, False, True, acts_by_sender=core.MAX_ACTS_PER_AUTHOR),
            "full",
        ),
        (B, LIKE, PostFacts(A, True, False, True, acts=core.MAX_ACTS_PER_POST), "full"),
    ],
)
def test_who_may_act_on_a_post(
    sender: bytes, act: m.MomentAct, facts: PostFacts | None, reason: str | None
) -> None:
    assert core.authorise_act(sender, A, act, facts) == reason


def test_keys_relays_and_deletes_only_from_the_poster() -> None:
    key = m.MomentKey(PID, b"k" * 32, b"h" * 32, 1)
    theirs = PostFacts(poster=B, mine=False, deleted=False)
    assert core.authorise_key(B, A, key, None, []) is None
    assert core.authorise_key(B, A, key, None, [B]) == "muted_poster"
    assert core.authorise_key(C, A, key, theirs, []) == "not_poster"  # C reuses B's post id
    assert core.authorise_key(A, A, key, None, []) == "own_post_key"
    assert core.authorise_relay(B, theirs) is None
    assert core.authorise_relay(C, theirs) == "not_poster"
    assert core.authorise_relay(B, None) == "no_such_post"
    assert core.authorise_relay(A, MINE) == "not_poster"
    flooded = PostFacts(poster=B, mine=False, deleted=False, acts=core.MAX_ACTS_PER_POST)
    assert core.authorise_relay(B, flooded, m.ActKind.COMMENT) == "full"  # bounded per post
    assert core.authorise_relay(B, flooded, m.ActKind.UNCOMMENT) is None  # deletes still pass
    assert (
        core.authorise_delete(B, theirs) is None
        and core.authorise_delete(C, theirs) == "not_poster"
    )


def test_relay_targets_are_the_actors_contacts_in_the_audience() -> None:
    key = os.urandom(32)
    tags = [m.contact_tag(key, x) for x in (A, C, os.urandom(32))]  # B's contacts: A, C, a stranger
    assert core.relay_targets(key, [B, C, D], tags, B) == [C]
    assert core.relay_targets(os.urandom(32), [B, C, D], tags, B) == []  # tags of another post
