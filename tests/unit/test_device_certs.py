"""Device links, revocations and rosters: signed by the identity, refused otherwise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.identity.device_certs import (
    MAX_DEVICES,
    DeviceLink,
    DeviceRoster,
    InvalidDeviceRecord,
    decode_published_roster,
    device_allowed,
    encode_published_roster,
    first_roster,
    newer,
    roster_from_bytes,
)
from boxless.identity.keys import Device, Identity, InvalidBundle, decode_published_bundle
from boxless.identity.seed import generate_phrase

NOW = 1_800_000_000


def _setup() -> tuple[Identity, Device, DeviceLink, DeviceRoster]:
    me = Identity.from_phrase(generate_phrase())
    device = Device.create(me, NOW)
    link = DeviceLink.issue(me, device.certificate, "Laptop", "linux", NOW)
    return me, device, link, first_roster(me, link, NOW)


def test_roster_round_trip_and_linking() -> None:
    me, _, link, roster = _setup()
    second = Device.create(me, NOW + 5)
    link2 = DeviceLink.issue(me, second.certificate, "  Phone  ", "android", NOW + 5)
    assert link2.name == "Phone"
    roster2 = roster.with_device(me, link2, NOW + 5)
    got = roster_from_bytes(roster2.to_bytes(), me.public_key)
    assert got == roster2 and got.serial == 2
    assert got.active(second.certificate.device_curve25519) == link2
    assert newer(roster, got) and not newer(got, roster)
    # published on the bundle topic: readable as a roster, skipped as a bundle
    payload = encode_published_roster(roster2)
    assert decode_published_roster(payload, me.public_key) == roster2
    with pytest.raises(InvalidBundle):
        decode_published_bundle(payload, me.public_key, NOW)
    assert device_allowed(None, second.certificate)  # an account that never linked


def test_revocation_is_sticky() -> None:
    me, _, link, roster = _setup()
    second = Device.create(me, NOW)
    link2 = DeviceLink.issue(me, second.certificate, "Phone", "android", NOW)
    roster2 = roster.with_device(me, link2, NOW)
    roster3 = roster2.without_device(me, link2.curve25519, NOW + 60)
    assert roster3.is_revoked(link2.curve25519)
    assert not device_allowed(roster3, second.certificate)
    assert device_allowed(roster3, link.certificate)
    with pytest.raises(InvalidDeviceRecord, match="revoked"):
        roster3.with_device(me, link2, NOW + 61)
    # a later roster signed to bring it back (say, by a thief who kept an old list)
    # never replaces one that revoked it
    sneaky = DeviceRoster.issue(me, 9, NOW + 70, [link, link2])
    assert not newer(roster3, sneaky)
    with pytest.raises(InvalidDeviceRecord, match="last device"):
        roster3.without_device(me, link.curve25519, NOW + 80)


def test_attackers() -> None:
    me, device, link, roster = _setup()
    mallory = Identity.from_phrase(generate_phrase())
    # a certificate for our identity signed by someone else
    forged_cert = Device.create(mallory, NOW).certificate
    forged_link = DeviceLink.issue(mallory, forged_cert, "Evil", "linux", NOW)
    with pytest.raises(InvalidDeviceRecord, match="another identity"):
        DeviceRoster.issue(me, 2, NOW, [link, forged_link])
    # a roster signed by Mallory claiming our identity
    fake = DeviceRoster(me.public_key, 5, NOW, (link,), (), mallory.sign(b"x"))
    with pytest.raises(InvalidDeviceRecord, match="not signed"):
        roster_from_bytes(fake.to_bytes(), me.public_key)
    # a roster for another identity than asked
    theirs = first_roster(mallory, forged_link, NOW)
    with pytest.raises(InvalidDeviceRecord, match="another identity"):
        roster_from_bytes(theirs.to_bytes(), me.public_key)
    # a link whose name was changed after signing
    tampered = DeviceLink(
        link.certificate, "Renamed", link.platform, link.linked_at, link.signature
    )
    with pytest.raises(InvalidDeviceRecord):
        tampered.verify()
    # too many devices
    many = [
        DeviceLink.issue(me, Device.create(me, NOW).certificate, f"d{i}", "linux", NOW)
        for i in range(MAX_DEVICES + 1)
    ]
    with pytest.raises(InvalidDeviceRecord):
        DeviceRoster.issue(me, 2, NOW, many)
    # a payload sealed for another identity
    with pytest.raises(InvalidDeviceRecord):
        decode_published_roster(encode_published_roster(theirs), me.public_key)
    assert device.certificate == link.certificate


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_roster_decoder_only_raises_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidDeviceRecord):
        roster_from_bytes(raw)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_roster_decoder_mutations(data: st.DataObject) -> None:
    _, _, _, roster = _setup()
    raw = bytearray(roster.to_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        got = roster_from_bytes(bytes(raw))
    except InvalidDeviceRecord:
        return
    assert got == roster  # only a flip that decodes to the same values may pass
