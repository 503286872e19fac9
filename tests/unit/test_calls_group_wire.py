"""The group call's wire: CallSignal with a group id (client/calls_group.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat.envelope import CallSignal, CallSignalKind
from boxless.errors import DecodeError, UsageError
from boxless.wire import chat_pb2


@settings(max_examples=50, deadline=None)
@given(
    kind=st.sampled_from(list(CallSignalKind)),
    gid=st.binary(max_size=64),
    cands=st.lists(st.text(min_size=1, max_size=40), max_size=16),
    video=st.booleans(),
)
def test_group_call_signal_round_trip(kind, gid, cands, video) -> None:  # type: ignore[no-untyped-def]
    sig = CallSignal(os.urandom(16), kind, "", tuple(cands), video, group_id=gid)
    msg = env.new_message(sig, lamport=1, sent_at_ms=5)
    assert env.decode(env.encode(msg)).body == sig
    assert not env.is_reliable(sig)  # ephemeral, never in the outbox


@settings(max_examples=150, deadline=None)
@given(gid=st.binary(max_size=300), kind=st.integers(min_value=0, max_value=20))
def test_a_peers_group_signal_decodes_or_is_refused(gid: bytes, kind: int) -> None:
    pb = chat_pb2.ChatMessage()
    msg = env.new_message(
        CallSignal(b"c" * 16, CallSignalKind.RING, group_id=b"g"), lamport=1, sent_at_ms=5
    )
    pb.ParseFromString(env.encode(msg))
    pb.call_signal.group_id = gid
    pb.call_signal.kind = kind  # type: ignore[assignment]
    try:
        body = env.decode(pb.SerializeToString()).body
    except DecodeError:
        assert len(gid) > 64 or kind == 0
        return
    assert len(gid) <= 64
    if isinstance(body, CallSignal):
        assert body.group_id == gid


def test_a_long_group_id_is_refused_when_sending() -> None:
    with pytest.raises(UsageError):
        CallSignal(b"c" * 16, CallSignalKind.JOIN, group_id=b"g" * 65)
