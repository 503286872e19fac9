"""Group links: roundtrip, joining through one, clear errors for every kind of bad link, fuzzing."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import UsageError
from boxless.groups import (
    GroupLink,
    GroupLog,
    InvalidGroupLink,
    Invite,
    OpStatus,
    Promote,
    Role,
    check_token_fresh,
    create_op,
    decode_group_link,
    join_op,
    make_group_link,
)
from boxless.identity.keys import Device, Identity
from boxless.wire import group_pb2

NOW = 1_800_000_000.0
CREATOR, ADMIN, MEMBER, JOINER = (
    Identity.from_private_bytes(bytes([i + 7]) * 32) for i in range(4)
)
ADMIN_DEVICE = Device.create(ADMIN, NOW)


def _group() -> GroupLog:
    genesis = create_op(CREATOR, "Hiking club", int(NOW * 1000))
    group = GroupLog(genesis.op_id)
    group.add(genesis)
    group.next_op(CREATOR, Invite(ADMIN.public_key), int(NOW * 1000))
    group.next_op(CREATOR, Promote(ADMIN.public_key), int(NOW * 1000))
    group.next_op(CREATOR, Invite(MEMBER.public_key), int(NOW * 1000))
    return group


GROUP = _group()
LINK = make_group_link(ADMIN, ADMIN_DEVICE, GROUP, "Ada", NOW, validity=86_400)


def _link(raw: bytes) -> str:
    return "boxless://g/" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _reencode(mutate: object) -> str:
    msg = group_pb2.GroupLink()
    msg.ParseFromString(LINK.to_bytes()[1:])
    mutate(msg)  # type: ignore[operator]
    return _link(b"\x01" + msg.SerializeToString())


def test_roundtrip() -> None:
    text = LINK.link
    assert text.startswith("boxless://g/") and "=" not in text and len(text) < 1200
    link = decode_group_link(text, NOW + 60)
    assert link == LINK
    assert link.group_id == GROUP.group_id and link.name == "Hiking club"
    assert link.admin_key == ADMIN.public_key and link.admin_name == "Ada"
    assert link.admin_bundle.identity_key == ADMIN.public_key
    assert link.token.heads == tuple(sorted(GROUP.heads()))
    assert link.expires_at == NOW + 86_400
    assert decode_group_link("  " + text[:30] + "\n" + text[30:], NOW) == LINK
    assert decode_group_link("BOXLESS://G/" + text[12:], NOW) == LINK


def test_join_through_the_link() -> None:
    link = decode_group_link(LINK.link, NOW + 60)
    op = join_op(JOINER, link.token, int((NOW + 60) * 1000))
    check_token_fresh(op.body.token, NOW + 61)  # type: ignore[union-attr]  # the admin relays
    group = GroupLog.replay(GROUP.group_id, GROUP.ops())
    group.add(op)
    assert group.verdict(op.op_id).status is OpStatus.APPLIED
    assert group.state.role(JOINER.public_key) is Role.MEMBER


def test_only_admins_make_links() -> None:
    device = Device.create(MEMBER, NOW)
    with pytest.raises(UsageError, match="only an admin"):
        make_group_link(MEMBER, device, GROUP, "Mo", NOW)
    with pytest.raises(UsageError, match="not certified"):
        make_group_link(ADMIN, device, GROUP, "Ada", NOW)


def test_link_for_one_person() -> None:
    link = make_group_link(ADMIN, ADMIN_DEVICE, GROUP, "Ada", NOW, invitee=MEMBER.public_key)
    decoded = decode_group_link(link.link, NOW)
    assert decoded.token.invitee == MEMBER.public_key
    with pytest.raises(InvalidGroupLink, match="someone else"):
        join_op(JOINER, decoded.token, int(NOW * 1000))


def test_expired() -> None:
    with pytest.raises(InvalidGroupLink, match="expired"):
        decode_group_link(LINK.link, NOW + 86_401)
    with pytest.raises(InvalidGroupLink, match="expired"):
        check_token_fresh(LINK.token, NOW + 86_401)
    with pytest.raises(InvalidGroupLink, match="expired"):
        join_op(JOINER, LINK.token, int((NOW + 86_401) * 1000))


@pytest.mark.parametrize(
    "text", ["", "hello", "https://example.org/g/abc", "boxless://c/" + LINK.link[12:]]
)
def test_not_a_group_link(text: str) -> None:
    with pytest.raises(InvalidGroupLink, match="not a Boxless group link") as info:
        decode_group_link(text, NOW)
    assert isinstance(info.value, UsageError)


@pytest.mark.parametrize(
    "text",
    [
        "boxless://g/",
        "boxless://g/a",
        "boxless://g/$$$$",
        LINK.link[:-40],
        _link(b"\x01garbage"),
        _link(b"\x01"),
        _reencode(lambda m: m.ClearField("token")),
        _reencode(lambda m: setattr(m, "name", "")),
        _reencode(lambda m: setattr(m, "admin_name", " Ada")),
        _reencode(lambda m: setattr(m.token, "version", 5)),
        _reencode(lambda m: setattr(m, "signature", b"short")),
    ],
)
def test_damaged(text: str) -> None:
    with pytest.raises(InvalidGroupLink, match="damaged"):
        decode_group_link(text, NOW)


def test_future_version() -> None:
    with pytest.raises(InvalidGroupLink, match="format version 3"):
        decode_group_link(_link(b"\x03" + LINK.to_bytes()[1:]), NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: setattr(m, "name", "Evil club"),
        lambda m: setattr(m, "admin_name", "Bob"),
        lambda m: setattr(m.token, "expires_at_ms", m.token.expires_at_ms + 1),
        lambda m: setattr(m.token, "issuer", JOINER.public_key),
        lambda m: setattr(m, "signature", bytes(64)),
        lambda m: setattr(m.admin_bundle, "fallback_key", bytes(32)),
    ],
)
def test_forged(mutate: object) -> None:
    with pytest.raises(InvalidGroupLink, match="signature is invalid"):
        decode_group_link(_reencode(mutate), NOW)


def test_bundle_of_another_identity() -> None:
    other = Device.create(JOINER, NOW).bundle(NOW)
    token = LINK.token
    signature = ADMIN.sign(GroupLink.signing_bytes(LINK.name, token, other, "Ada"))
    forged = dataclasses.replace(LINK, admin_bundle=other, signature=signature)
    with pytest.raises(InvalidGroupLink, match="signature is invalid"):
        decode_group_link(forged.link, NOW)


def _only_invalid_group_link(text: str) -> None:
    try:
        link = decode_group_link(text, NOW)
    except InvalidGroupLink:
        return
    assert isinstance(link, GroupLink)


@given(st.text(max_size=300))
def test_fuzz_text(text: str) -> None:
    _only_invalid_group_link(text)
    _only_invalid_group_link("boxless://g/" + text)


@given(st.binary(max_size=400))
def test_fuzz_payload(raw: bytes) -> None:
    _only_invalid_group_link(_link(raw))
    _only_invalid_group_link(_link(b"\x01" + raw))


@given(st.data())
def test_fuzz_mutated_link(data: st.DataObject) -> None:
    raw = bytearray(LINK.to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _only_invalid_group_link(_link(bytes(raw)))
