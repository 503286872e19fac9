"""The emoji-verification (SAS) bodies of the app envelope: roundtrips, garbage, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.errors import DecodeError, UsageError
from boxless.wire import chat_pb2

MID = bytes(range(16))
flow_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
sas_bytes = st.binary(min_size=env.SAS_BYTES, max_size=env.SAS_BYTES)
sas_bodies = st.one_of(
    st.builds(env.SasRequest, flow_ids, sas_bytes),
    st.builds(env.SasKey, flow_ids, sas_bytes),
    st.builds(env.SasMac, flow_ids, sas_bytes),
    st.builds(env.SasCancel, flow_ids, st.sampled_from(env.SasCancelReason)),
)


def _wrap(**body: object) -> bytes:
    pb = chat_pb2.ChatMessage(version=1, message_id=MID, lamport=1, sent_at_ms=1, **body)  # type: ignore[arg-type]
    return pb.SerializeToString()


@given(sas_bodies, st.integers(0, env.MAX_LAMPORT))
def test_sas_bodies_roundtrip(body: env.Body, lamport: int) -> None:
    msg = env.new_message(body, lamport=lamport, sent_at_ms=1_700_000_000_000)
    assert env.decode(env.encode(msg)) == msg
    assert env.is_reliable(body) and isinstance(body, env.SAS_BODIES)


@given(
    st.sampled_from(["sas_request", "sas_key", "sas_mac", "sas_cancel"]),
    st.text(max_size=80),
    st.binary(max_size=64),
    st.integers(0, 2**31 - 1),
)
def test_any_sas_field_values_decode_or_raise_decode_error(
    kind: str, flow_id: str, value: bytes, reason: int
) -> None:
    """Whatever a peer puts in the SAS fields: a valid body or a clear DecodeError."""
    fields = {
        "sas_request": lambda: chat_pb2.SasRequest(flow_id=flow_id, commitment=value),
        "sas_key": lambda: chat_pb2.SasKey(flow_id=flow_id, key=value),
        "sas_mac": lambda: chat_pb2.SasMac(flow_id=flow_id, mac=value),
        "sas_cancel": lambda: chat_pb2.SasCancel(flow_id=flow_id, reason=reason),  # type: ignore[arg-type]
    }
    raw = _wrap(**{kind: fields[kind]()})
    try:
        msg = env.decode(raw)
    except DecodeError as exc:
        assert "SAS" in str(exc) or "sas" in str(exc)
        return
    assert isinstance(msg.body, env.SAS_BODIES)
    assert msg.body.flow_id == flow_id


@given(sas_bodies, st.data())
def test_mutated_sas_messages_decode_or_raise_decode_error(
    body: env.Body, data: st.DataObject
) -> None:
    raw = bytearray(env.encode(env.new_message(body, lamport=1, sent_at_ms=1)))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        env.decode(bytes(raw[: data.draw(st.integers(0, len(raw)))]))
    except DecodeError:
        pass


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_wrap(sas_key=chat_pb2.SasKey(flow_id="f", key=b"short")), "SAS key must be 32 bytes"),
        (_wrap(sas_mac=chat_pb2.SasMac(flow_id="f")), "SAS MAC must be 32 bytes"),
        (_wrap(sas_request=chat_pb2.SasRequest(commitment=b"c" * 32)), "SAS flow id is 1..64"),
        (_wrap(sas_key=chat_pb2.SasKey(flow_id="a b", key=b"k" * 32)), "SAS flow id"),
        (_wrap(sas_key=chat_pb2.SasKey(flow_id="x" * 65, key=b"k" * 32)), "SAS flow id"),
        (_wrap(sas_cancel=chat_pb2.SasCancel(flow_id="f")), "SAS cancel has no reason"),
    ],
)
def test_sas_garbage_is_a_clear_decode_error(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        env.decode(raw)


def test_a_newer_cancel_reason_still_cancels() -> None:
    raw = _wrap(sas_cancel=chat_pb2.SasCancel(flow_id="f", reason=99))  # type: ignore[arg-type]
    body = env.decode(raw).body
    assert body == env.SasCancel("f", env.SasCancelReason.UNEXPECTED)


def test_sas_bodies_are_checked_when_built_and_hide_their_bytes() -> None:
    with pytest.raises(UsageError):
        env.SasKey("f", b"\x00" * 31)
    with pytest.raises(UsageError):
        env.SasRequest("", b"\x00" * 32)
    with pytest.raises(UsageError):
        env.SasCancel("é", env.SasCancelReason.USER)
    secret = bytes(range(32))
    for body in (env.SasKey("f", secret), env.SasMac("f", secret), env.SasRequest("f", secret)):
        assert secret.hex()[:8] not in repr(body) and str(list(secret[:4])) not in repr(body)
