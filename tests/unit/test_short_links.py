"""Short contact and group links (<= 120 characters): what they name, the sealed payloads
fetched by them, and every way a holder of the link or a stranger can try to swap them."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.groups import GroupLog, Invite, Promote, create_op, make_group_link
from boxless.groups.invites import (
    InvalidGroupLink,
    ShortGroupLink,
    decode_any_group_link,
    decode_group_link,
    new_short_group_link,
    open_group_link,
    seal_group_link,
)
from boxless.identity.contact_code import (
    InvalidContactCode,
    ShortContactLink,
    decode_contact_code,
    decode_contact_link,
    make_contact_code,
    open_card,
    seal_card,
    short_contact_link,
)
from boxless.identity.keys import Device, Identity

NOW = 1_800_000_000.0
ALICE = Identity.from_private_bytes(b"\x11" * 32)
MALLORY = Identity.from_private_bytes(b"\x22" * 32)
ALICE_DEVICE = Device.create(ALICE, NOW)
MALLORY_DEVICE = Device.create(MALLORY, NOW)
SHORT = short_contact_link(ALICE)
CARD = make_contact_code(ALICE, ALICE_DEVICE, "Alice", NOW)


def test_contact_link_is_short_stable_and_decodes() -> None:
    assert len(SHORT.link) <= 120
    assert SHORT.link.startswith("boxless://c/")
    assert short_contact_link(ALICE) == SHORT  # same after a restore: derived from the key
    assert short_contact_link(MALLORY).secret != SHORT.secret
    assert decode_contact_link(SHORT.link, NOW) == SHORT
    assert decode_contact_link(" " + SHORT.link[:40] + "\n" + SHORT.link[40:], NOW) == SHORT
    # the old long links still decode
    assert decode_contact_link(CARD.link, NOW) == CARD
    # the topic is bundle-shaped and reveals neither key
    assert SHORT.topic.startswith("/boxless/1/bundle-") and SHORT.topic.endswith("/proto")
    assert ALICE.public_key.hex()[:32] not in SHORT.topic


def test_a_typo_in_a_short_link_fails_offline_as_damaged() -> None:
    head, char, tail = SHORT.link[:30], SHORT.link[30], SHORT.link[31:]
    typo = head + ("A" if char != "A" else "B") + tail
    with pytest.raises(InvalidContactCode, match="damaged"):
        decode_contact_link(typo, NOW)
    with pytest.raises(InvalidContactCode, match="damaged"):
        decode_contact_link(SHORT.link[:-3], NOW)
    with pytest.raises(InvalidContactCode, match="short contact link"):
        decode_contact_code(SHORT.link, NOW)


def test_the_card_roundtrips_and_hides_everything() -> None:
    payload = seal_card(CARD, SHORT)
    assert ALICE.public_key not in payload and b"Alice" not in payload
    assert open_card(payload, SHORT, NOW + 60) == CARD
    with pytest.raises(InvalidContactCode, match="not sealed for this link"):
        open_card(payload, short_contact_link(MALLORY), NOW)


def test_a_card_of_another_identity_on_the_topic_is_refused() -> None:
    # Mallory has Alice's short link (so she can seal for its topic) and publishes
    # her own valid, signed card there: it names the wrong identity.
    mallory_card = make_contact_code(MALLORY, MALLORY_DEVICE, "Alice", NOW)
    forged = SHORT._aead().encrypt(
        b"\x00" * 12, mallory_card.to_bytes(), b"boxless contact card v1"
    )
    with pytest.raises(InvalidContactCode, match="someone else"):
        open_card(b"\x00" * 12 + forged, SHORT, NOW)
    with pytest.raises(Exception, match="own identity"):
        seal_card(mallory_card, SHORT)


def test_an_altered_or_expired_card_is_refused() -> None:
    raw = bytearray(CARD.to_bytes())
    raw[-5] ^= 1  # inside the signature
    nonce = b"\x03" * 12
    altered = nonce + SHORT._aead().encrypt(nonce, bytes(raw), b"boxless contact card v1")
    with pytest.raises(InvalidContactCode, match="signature is invalid|damaged"):
        open_card(altered, SHORT, NOW)
    with pytest.raises(InvalidContactCode, match="expired"):
        open_card(seal_card(CARD, SHORT), SHORT, NOW + 31 * 86_400)


@given(st.binary(max_size=300))
def test_card_payload_garbage_sealed_for_the_link_gives_a_clear_error(plain: bytes) -> None:
    nonce = b"\x01" * 12
    payload = nonce + SHORT._aead().encrypt(nonce, plain, b"boxless contact card v1")
    with pytest.raises(InvalidContactCode):
        open_card(payload, SHORT, NOW)


@given(st.binary(max_size=200))
def test_any_payload_bytes_give_only_a_clear_error(payload: bytes) -> None:
    with pytest.raises(InvalidContactCode):
        open_card(payload, SHORT, NOW)


def _link(prefix: str, raw: bytes) -> str:
    return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(st.binary(min_size=0, max_size=120))
def test_short_link_decoder_never_escapes(raw: bytes) -> None:
    for body in (raw, b"\x02" + raw):
        try:
            got = decode_contact_link(_link("boxless://c/", body), NOW)
            assert isinstance(got, ShortContactLink) and got.link.endswith(_link("", body)[-10:])
        except InvalidContactCode:
            pass
        try:
            g = decode_any_group_link(_link("boxless://g/", body), NOW)
            assert isinstance(g, ShortGroupLink)
        except InvalidGroupLink:
            pass


@given(st.text(max_size=200))
def test_short_link_decoder_never_escapes_on_text(text: str) -> None:
    for prefix in ("", "boxless://c/", "boxless://g/"):
        try:
            decode_contact_link(prefix + text, NOW)
        except InvalidContactCode:
            pass
        try:
            decode_any_group_link(prefix + text, NOW)
        except InvalidGroupLink:
            pass


# ---------------------------------------------------------------------- groups

CREATOR = Identity.from_private_bytes(b"\x33" * 32)
MEMBER = Identity.from_private_bytes(b"\x44" * 32)
MEMBER_DEVICE = Device.create(MEMBER, NOW)
CREATOR_DEVICE = Device.create(CREATOR, NOW)


def _group(name: str = "Hiking club") -> GroupLog:
    genesis = create_op(CREATOR, name, int(NOW * 1000))
    group = GroupLog(genesis.op_id)
    group.add(genesis)
    group.next_op(CREATOR, Invite(MEMBER.public_key), int(NOW * 1000))
    return group


GROUP = _group()
LONG = make_group_link(CREATOR, CREATOR_DEVICE, GROUP, "Cy", NOW, validity=86_400)


def test_group_link_is_short_and_its_invite_roundtrips() -> None:
    short = new_short_group_link(LONG)
    assert len(short.link) <= 120
    assert decode_any_group_link(short.link, NOW) == short
    assert decode_any_group_link(LONG.link, NOW) == LONG  # old links still work
    assert new_short_group_link(LONG).secret != short.secret  # a random secret each time
    payload = seal_group_link(LONG, short)
    assert GROUP.group_id not in payload and b"Hiking" not in payload
    got = open_group_link(payload, short, NOW + 1)
    assert got.group_id == GROUP.group_id and got.name == "Hiking club"
    with pytest.raises(InvalidGroupLink, match="short group link"):
        decode_group_link(short.link, NOW)


def _seal(link_bytes: bytes, short: ShortGroupLink) -> bytes:
    nonce = b"\x05" * 12
    return nonce + short._aead().encrypt(nonce, link_bytes, b"boxless sealed group link v1")


def test_an_invite_signed_by_a_non_admin_member_is_refused() -> None:
    # A member (no admin) who has the short link publishes their own invite on its
    # topic. They cannot even make one (the log refuses their token) ...
    with pytest.raises(Exception, match="admin"):
        make_group_link(MEMBER, MEMBER_DEVICE, GROUP, "Meg", NOW)
    # ... and a token they sign for a group of their own names another group/admin.
    own = _group("Hiking club")  # same name, made by the creator: another group id
    mine = make_group_link(CREATOR, CREATOR_DEVICE, own, "Cy", NOW)
    short = new_short_group_link(LONG)
    with pytest.raises(InvalidGroupLink, match="another group or admin"):
        open_group_link(_seal(mine.to_bytes(), short), short, NOW)
    genesis = create_op(MEMBER, "Hiking club", int(NOW * 1000))
    theirs = GroupLog(genesis.op_id)
    theirs.add(genesis)
    forged = make_group_link(MEMBER, MEMBER_DEVICE, theirs, "Cy", NOW)
    with pytest.raises(InvalidGroupLink, match="another group or admin"):
        open_group_link(_seal(forged.to_bytes(), short), short, NOW)


def test_an_expired_or_altered_invite_is_refused() -> None:
    short = new_short_group_link(LONG)
    with pytest.raises(InvalidGroupLink, match="expired"):
        open_group_link(seal_group_link(LONG, short), short, NOW + 2 * 86_400)
    raw = bytearray(LONG.to_bytes())
    raw[-3] ^= 1
    with pytest.raises(InvalidGroupLink, match="forged|damaged"):
        open_group_link(_seal(bytes(raw), short), short, NOW)
    with pytest.raises(InvalidGroupLink, match="not sealed"):
        open_group_link(seal_group_link(LONG, short), new_short_group_link(LONG), NOW)


@given(st.binary(max_size=300))
def test_group_payload_garbage_gives_a_clear_error(plain: bytes) -> None:
    short = ShortGroupLink(b"\x07" * 16, b"\x08" * 16)
    with pytest.raises(InvalidGroupLink):
        open_group_link(_seal(plain, short), short, NOW)
    with pytest.raises(InvalidGroupLink):
        open_group_link(plain, short, NOW)


def test_promoted_admins_links_commit_to_them() -> None:
    group = _group()
    group.next_op(CREATOR, Promote(MEMBER.public_key), int(NOW * 1000))
    long = make_group_link(MEMBER, MEMBER_DEVICE, group, "Meg", NOW)
    short = new_short_group_link(long)
    assert open_group_link(seal_group_link(long, short), short, NOW).admin_key == MEMBER.public_key
    with pytest.raises(InvalidGroupLink, match="another group or admin"):
        open_group_link(_seal(LONG.to_bytes(), short), short, NOW)
