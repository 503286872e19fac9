"""The app envelope codec: roundtrips, limits, schema evolution, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat.envelope import (
    ChatMessage,
    ContactRequest,
    ContactResponse,
    Decision,
    Delete,
    Edit,
    ProfileUpdate,
    Reaction,
    Receipt,
    ReceiptKind,
    SessionReset,
    Text,
    Typing,
    Unsupported,
    UnsupportedVersion,
    decode,
    encode,
    is_reliable,
    new_message,
)
from boxless.chat.pow import ProofOfWork
from boxless.errors import DecodeError, UsageError
from boxless.wire import chat_pb2

MID = bytes(range(16))
OTHER = bytes(range(16, 32))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, whatever its number."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _header(version: int = 1) -> bytes:
    return chat_pb2.ChatMessage(
        version=version, message_id=MID, lamport=7, sent_at_ms=1_700_000_000_000
    ).SerializeToString()


# --- strategies -------------------------------------------------------------------

ids = st.binary(min_size=16, max_size=16)
texts = st.text(min_size=1, max_size=200)
emoji = st.sampled_from(["👍", "❤️", "😂", "👨‍👩‍👧", "🏳️‍🌈", "a", "+1"])
proofs = st.builds(
    ProofOfWork,
    timestamp_ms=st.integers(-(2**63), 2**63 - 1),
    nonce=st.binary(min_size=8, max_size=8),
)
bodies = st.one_of(
    st.builds(Text, texts, st.none() | ids),
    st.builds(
        Text,
        texts,
        st.none(),
        st.lists(st.binary(min_size=32, max_size=32), max_size=5).map(tuple),
        st.booleans(),
    ),
    st.builds(env.GroupPin, st.text("0123456789abcdef-", min_size=1, max_size=64), st.booleans()),
    st.builds(env.GroupRead, st.integers(0, 2**63 - 1)),
    st.builds(
        env.SasRequest,
        st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        st.binary(min_size=32, max_size=32),
    ),
    st.builds(env.SasCancel, st.just("flow"), st.sampled_from(env.SasCancelReason)),
    st.builds(Edit, ids, texts),
    st.builds(Delete, ids),
    st.builds(Reaction, ids, emoji, st.booleans()),
    st.builds(
        Receipt,
        st.lists(ids, min_size=1, max_size=20).map(tuple),
        st.sampled_from(ReceiptKind),
    ),
    st.builds(Typing, st.booleans()),
    st.builds(
        ContactRequest,
        st.text(max_size=100),
        proofs,
        st.binary(min_size=1, max_size=300),
        st.binary(min_size=32, max_size=32),
    ),
    st.builds(ContactResponse, st.sampled_from(Decision)),
    st.builds(ProfileUpdate, st.text(min_size=1, max_size=64), st.binary(max_size=200)),
    st.just(SessionReset()),
    st.builds(env.GroupKeyShareBody, st.binary(min_size=1, max_size=300)),
    st.builds(
        env.GroupOpBody,
        st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5).map(tuple),
        st.lists(st.binary(min_size=1, max_size=200), max_size=3).map(tuple),
    ),
)
messages = st.builds(
    ChatMessage,
    ids,
    st.integers(0, env.MAX_LAMPORT),
    st.integers(0, 2**63 - 1),
    bodies,
)


@given(messages)
def test_roundtrip_of_valid_messages(msg: ChatMessage) -> None:
    assert decode(encode(msg)) == msg


@given(st.binary(max_size=512))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        msg = decode(data)
    except DecodeError:
        return
    assert isinstance(msg, ChatMessage)


@given(messages, st.data())
def test_mutated_messages_decode_or_raise_decode_error(
    msg: ChatMessage, data: st.DataObject
) -> None:
    raw = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        decode(bytes(raw[:cut]))
    except DecodeError:
        pass


def test_every_body_kind_roundtrips() -> None:
    proof = ProofOfWork(1_700_000_000_000, b"\x00" * 8)
    for body in (
        Text("hello"),
        Text("re", reply_to=OTHER),
        Edit(OTHER, "hello again"),
        Delete(OTHER),
        Reaction(OTHER, "👍"),
        Reaction(OTHER, "👍", remove=True),
        Receipt((OTHER, MID), ReceiptKind.READ),
        Typing(True),
        ContactRequest("hi, it's Bob", proof, b"card", b"s" * 32),
        ContactResponse(Decision.DECLINE),
        ProfileUpdate("Alice", b"\x89PNG"),
        ProfileUpdate("Alice"),
        SessionReset(),
        env.GroupKeyShareBody(b"share"),
        env.GroupOpBody((b"op1", b"op2"), (b"card",)),
        env.GroupOpBody((b"op",)),
        Text("hi @all @Bob", None, (b"\x01" * 32,), True),
        env.GroupPin("abc123", False),
        env.GroupRead(17),
    ):
        msg = new_message(body, lamport=3, sent_at_ms=5)
        assert decode(encode(msg)) == msg


def test_empty_reply_to_is_not_absent_reply_to() -> None:
    # proto3 `optional`: a reply_to that is present must be a real id
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.text.text = "x"
    pb.text.reply_to = b""
    with pytest.raises(DecodeError, match="reply_to must be 16 bytes"):
        decode(pb.SerializeToString())


# --- schema evolution -----------------------------------------------------------------


def test_unknown_body_kind_is_unsupported_not_an_error() -> None:
    raw = _header() + _field(40, _field(1, b"from the future"))
    msg = decode(raw)
    assert msg.body == Unsupported("body field 40")
    assert msg.message_id == MID and msg.lamport == 7
    assert is_reliable(msg.body)  # still acknowledged


def test_unknown_header_field_is_ignored() -> None:
    raw = _header() + _field(5, b"future header") + _field(10, _field(1, b"hi"))
    assert decode(raw).body == Text("hi")


def test_unknown_enum_values_are_unsupported() -> None:
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.receipt.message_ids.append(OTHER)
    pb.receipt.kind = 9  # type: ignore[assignment]
    assert decode(pb.SerializeToString()).body == Unsupported("receipt kind 9")
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.contact_response.decision = 3  # type: ignore[assignment]
    assert decode(pb.SerializeToString()).body == Unsupported("contact response decision 3")


def test_unspecified_enums_are_errors() -> None:
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.receipt.message_ids.append(OTHER)
    with pytest.raises(DecodeError, match="receipt has no kind"):
        decode(pb.SerializeToString())
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.contact_response.SetInParent()
    with pytest.raises(DecodeError, match="no decision"):
        decode(pb.SerializeToString())


def test_other_versions_are_rejected_clearly() -> None:
    with pytest.raises(UnsupportedVersion, match="version 2 is not supported") as info:
        decode(_header(version=2) + _field(10, _field(1, b"hi")))
    assert info.value.version == 2
    with pytest.raises(DecodeError, match="no version"):
        decode(_header(version=0) + _field(10, _field(1, b"hi")))


def test_unsupported_cannot_be_sent() -> None:
    with pytest.raises(UsageError, match="cannot be sent"):
        encode(new_message(Unsupported("x"), lamport=1, sent_at_ms=1))


# --- garbage and limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xff\xff", "not valid protobuf"),
        (_header(), "no body"),
        (_header() + _field(10, b"\x0a\x02\xff\xfe"), "not valid protobuf"),  # bad UTF-8
        (_header() + _field(12, _field(1, b"short")), "delete target must be 16 bytes"),
        (b"\x00" * (env.MAX_ENCODED_BYTES + 1), "limit is"),
    ],
)
def test_garbage_is_a_clear_decode_error(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(raw)


def test_header_is_validated() -> None:
    pb = chat_pb2.ChatMessage(version=1, message_id=b"abc", lamport=1, sent_at_ms=1)
    pb.typing.typing = True
    with pytest.raises(DecodeError, match="message_id must be 16 bytes"):
        decode(pb.SerializeToString())
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=2**63, sent_at_ms=1)
    pb.typing.typing = True
    with pytest.raises(DecodeError, match="lamport"):
        decode(pb.SerializeToString())
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=-5)
    pb.typing.typing = True
    with pytest.raises(DecodeError, match="sent_at_ms"):
        decode(pb.SerializeToString())


def test_limits_hold_for_local_and_remote_messages() -> None:
    with pytest.raises(UsageError, match="text is 61441 bytes"):
        Text("x" * (env.MAX_TEXT_BYTES + 1))
    Text("é" * (env.MAX_TEXT_BYTES // 2))  # counted in UTF-8 bytes
    with pytest.raises(UsageError, match="must not be empty"):
        Text("")
    with pytest.raises(UsageError, match="not valid Unicode"):
        Text("\ud800")
    with pytest.raises(UsageError, match="emoji is 33 bytes"):
        Reaction(OTHER, "😀" * 8 + "a")
    with pytest.raises(UsageError, match="spaces or control"):
        Reaction(OTHER, "👍 ")
    with pytest.raises(UsageError, match="1..500"):
        Receipt(tuple(bytes([i % 256, i // 256]) * 8 for i in range(501)), ReceiptKind.READ)
    with pytest.raises(UsageError, match="1..500"):
        Receipt((), ReceiptKind.READ)
    with pytest.raises(UsageError, match="64"):
        ProfileUpdate("n" * 65)
    with pytest.raises(UsageError, match="avatar"):
        ProfileUpdate("n", b"\x00" * (env.MAX_AVATAR_BYTES + 1))
    proof = ProofOfWork(0, b"\x00" * 8)
    with pytest.raises(UsageError, match="conversation secret"):
        ContactRequest("", proof, b"card", b"short")
    with pytest.raises(UsageError, match="sender card"):
        ContactRequest("", proof, b"", b"s" * 32)

    # the same rules reject a peer's bytes
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.reaction.target = OTHER
    pb.reaction.emoji = "x" * 33
    with pytest.raises(DecodeError, match="emoji is 33 bytes"):
        decode(pb.SerializeToString())
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1)
    pb.receipt.message_ids.extend([OTHER] * 501)
    pb.receipt.kind = chat_pb2.Receipt.DELIVERED
    with pytest.raises(DecodeError, match="more than 500"):
        decode(pb.SerializeToString())


def test_largest_text_fits_the_encoded_limit() -> None:
    msg = new_message(
        Text("x" * env.MAX_TEXT_BYTES, reply_to=OTHER), lamport=2**63 - 1, sent_at_ms=2**62
    )
    assert len(encode(msg)) <= env.MAX_ENCODED_BYTES
    assert decode(encode(msg)) == msg


def test_an_oversized_message_cannot_be_encoded() -> None:
    big = ProfileUpdate("n", b"\x00" * env.MAX_AVATAR_BYTES)
    assert len(encode(new_message(big, lamport=1, sent_at_ms=1))) <= env.MAX_ENCODED_BYTES
    ids = tuple(i.to_bytes(16, "big") for i in range(500))
    receipt = new_message(Receipt(ids, ReceiptKind.READ), lamport=1, sent_at_ms=1)
    assert decode(encode(receipt)) == receipt


def test_reprs_show_no_plaintext() -> None:
    secret = "my secret plan"
    proof = ProofOfWork(0, b"\x00" * 8)
    values = [
        new_message(Text(secret, reply_to=OTHER), lamport=1, sent_at_ms=1),
        Edit(OTHER, secret),
        Reaction(OTHER, "🤫"),
        ContactRequest(secret, proof, b"secret card", b"S" * 32),
        ProfileUpdate(secret, b"secret avatar"),
    ]
    for value in values:
        shown = repr(value) + str(value)
        assert secret not in shown and "🤫" not in shown and "secret" not in shown
        assert "SSSS" not in shown


def test_reliability_classes() -> None:
    assert is_reliable(Text("x")) and is_reliable(
        ContactRequest("", ProofOfWork(0, b"\0" * 8), b"c", b"s" * 32)
    )
    assert not is_reliable(Typing(True))
    assert not is_reliable(Receipt((MID,), ReceiptKind.DELIVERED))


def test_new_message_gives_fresh_ids() -> None:
    a = new_message(Typing(True), lamport=1, sent_at_ms=1)
    b = new_message(Typing(True), lamport=1, sent_at_ms=1)
    assert a.message_id != b.message_id and len(a.message_id) == 16
    assert new_message(Typing(True), lamport=1, sent_at_ms=1, message_id=MID).message_id == MID


def test_group_bodies_are_bounded() -> None:
    with pytest.raises(UsageError):
        env.GroupOpBody(())
    with pytest.raises(UsageError):
        env.GroupOpBody((b"x",) * (env.MAX_GROUP_OPS + 1))
    with pytest.raises(UsageError):
        env.GroupKeyShareBody(b"")
    assert "share" not in repr(env.GroupKeyShareBody(b"share"))
