"""Bundles published on an identity's bundle topic: untrusted bytes from anyone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.identity import (
    Device,
    Identity,
    InvalidContactCode,
    decode_contact_code,
    generate_phrase,
    keys,
    make_contact_code,
)
from boxless.identity.keys import (
    DEFAULT_BUNDLE_VALIDITY,
    DeviceBundle,
    ExpiredBundle,
    InvalidBundle,
    decode_published_bundle,
    encode_published_bundle,
)

NOW = 1_800_000_000.0
IDENTITY = Identity.from_phrase(generate_phrase())
DEVICE = Device.create(IDENTITY, NOW)
PAYLOAD = encode_published_bundle(DEVICE.bundle(NOW))


def test_roundtrip_verifies_and_carries_no_profile() -> None:
    got = decode_published_bundle(PAYLOAD, IDENTITY.public_key, NOW + 60)
    assert got == DEVICE.bundle(NOW)
    assert got.curve25519 == DEVICE.certificate.device_curve25519


def sealed_for(identity_key: bytes, bundle: DeviceBundle) -> bytes:
    """What a forger who knows ``identity_key`` can publish on its topic."""
    nonce = b"\x00" * 12
    plain = bundle.to_proto().SerializeToString()
    return nonce + keys._published_key(identity_key).encrypt(nonce, plain, keys._PUBLISHED_INFO)


def test_the_payload_hides_the_identity_and_device_keys() -> None:
    assert IDENTITY.public_key not in PAYLOAD
    assert DEVICE.certificate.device_curve25519 not in PAYLOAD
    assert encode_published_bundle(DEVICE.bundle(NOW)) != PAYLOAD  # fresh nonce each time


def test_a_payload_sealed_for_another_identity_is_refused() -> None:
    other = Identity.from_phrase(generate_phrase())
    with pytest.raises(InvalidBundle, match="not sealed for this identity"):
        decode_published_bundle(PAYLOAD, other.public_key, NOW)


def test_a_device_certified_by_someone_else_is_refused() -> None:
    # Mallory knows Alice's key, so she can seal for Alice's topic -- but she cannot
    # make Alice's identity certify her device.
    mallory = Identity.from_phrase(generate_phrase())
    forged = sealed_for(IDENTITY.public_key, Device.create(mallory, NOW).bundle(NOW))
    with pytest.raises(InvalidBundle, match="another identity"):
        decode_published_bundle(forged, IDENTITY.public_key, NOW)
    stolen_cert = Device.create(mallory, NOW).bundle(NOW)
    with pytest.raises(InvalidBundle):
        decode_published_bundle(encode_published_bundle(stolen_cert), IDENTITY.public_key, NOW)


@given(st.binary(max_size=600))
def test_garbage_sealed_for_the_right_key_gives_a_clear_error(plain: bytes) -> None:
    nonce = b"\x01" * 12
    payload = nonce + keys._published_key(IDENTITY.public_key).encrypt(
        nonce, plain, keys._PUBLISHED_INFO
    )
    with pytest.raises(InvalidBundle):
        decode_published_bundle(payload, IDENTITY.public_key, NOW)


def test_expired_and_future_bundles_are_refused() -> None:
    with pytest.raises(ExpiredBundle):
        decode_published_bundle(PAYLOAD, IDENTITY.public_key, NOW + DEFAULT_BUNDLE_VALIDITY)
    with pytest.raises(ExpiredBundle, match="future"):
        decode_published_bundle(PAYLOAD, IDENTITY.public_key, NOW - 3600)


@pytest.mark.parametrize("index", [5, 40, 80, 120, -1])
def test_a_flipped_byte_never_passes(index: int) -> None:
    damaged = bytearray(PAYLOAD)
    damaged[index] ^= 0x01
    with pytest.raises(InvalidBundle):
        decode_published_bundle(bytes(damaged), IDENTITY.public_key, NOW)


@given(st.binary(max_size=600))
def test_garbage_gives_a_clear_error(payload: bytes) -> None:
    with pytest.raises(InvalidBundle):
        decode_published_bundle(payload, IDENTITY.public_key, NOW)


@given(st.data())
def test_mutated_payloads_give_a_clear_error_or_the_same_bundle(data: st.DataObject) -> None:
    raw = bytearray(PAYLOAD)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        got = decode_published_bundle(bytes(raw), IDENTITY.public_key, NOW)
    except InvalidBundle:
        return
    assert got == DEVICE.bundle(NOW)  # only a no-op mutation can pass


def test_an_expired_link_decodes_only_when_asked_to() -> None:
    old = make_contact_code(IDENTITY, DEVICE, "Alice", NOW).link
    later = NOW + DEFAULT_BUNDLE_VALIDITY + 1
    with pytest.raises(InvalidContactCode, match="expired"):
        decode_contact_code(old, later)
    code = decode_contact_code(old, later, allow_expired=True)
    assert code.identity_key == IDENTITY.public_key and code.display_name == "Alice"
    forged = old[:-6] + ("A" if old[-6] != "A" else "B") + old[-5:]
    with pytest.raises(InvalidContactCode):
        decode_contact_code(forged, later, allow_expired=True)
