"""Property tests (W7) for decoders of peers' bytes on last session's surfaces that had
none shaped for them: a node's TURN answer (the client hands its URLs to the
browser) and the ask / re-pinned notes of "ask again" built field by field (random
bytes rarely reach those fields in test_attachment_descriptor's fuzz)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat.attachment import decode_attachments
from boxless.errors import DecodeError, PeerError
from boxless.node.turn_service import parse_turn_answer, turn_url_refused
from boxless.wire import attachment_pb2

NODE = {"8.8.4.4"}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_urls = st.one_of(
    st.text(max_size=80),
    st.builds(
        "{}:{}:{}{}".format,
        st.sampled_from(["turn", "turns", "stun", "http"]),
        st.one_of(
            st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
            st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
        ),
        st.integers(-5, 70000),
        st.sampled_from(["", "?transport=udp", "?transport=sctp", "/x", "@y"]),
    ),
)


@given(
    st.one_of(
        st.binary(max_size=300),
        _json.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "urls": st.lists(_urls, max_size=5),
                "username": _json,
                "credential": _json,
                "ttl_s": _json,
            }
        ).map(lambda v: json.dumps(v).encode()),
    )
)
@settings(max_examples=150, deadline=None)
def test_a_nodes_turn_answer_is_checked(raw: bytes) -> None:
    try:
        got = parse_turn_answer(raw, NODE)
    except (DecodeError, PeerError):
        return
    assert set(got) == {"urls", "username", "credential", "ttl_s"}
    assert all(turn_url_refused(u, NODE) is None for u in got["urls"])
    assert 0 < got["ttl_s"] <= 86400 and not isinstance(got["ttl_s"], bool)


@given(
    ask=st.booleans(),
    message_id=st.binary(max_size=40),
    index=st.integers(0, 2**32 - 1),
    group_id=st.binary(max_size=40),
    peers=st.lists(st.text(max_size=120), max_size=12),
    items=st.integers(0, 2),
)
@settings(max_examples=150, deadline=None)
def test_ask_and_repinned_notes_decode_or_are_refused(
    ask: bool, message_id: bytes, index: int, group_id: bytes, peers: list[str], items: int
) -> None:
    pb = attachment_pb2.Attachments()
    note = pb.ask if ask else pb.repinned
    note.message_id, note.index = message_id, index
    if ask:
        pb.ask.group_id = group_id
    else:
        pb.repinned.peers.extend(peers)
    for _ in range(items):
        pb.items.add()
    try:
        got = decode_attachments(pb.SerializeToString())
    except DecodeError:
        return
    assert got.is_note and not got.items
    assert decode_attachments(got.encode()) == got
