"""Sealed-sender envelopes: roundtrip, what the outer bytes hide, and a fuzzed decoder."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.crypto import (
    CryptoUsageError,
    OlmCiphertext,
    SealingKeyPair,
    TamperedMessage,
    open_envelope,
    seal,
)
from boxless.crypto.sealed import BUCKETS, MAX_CONTENT_BYTES, bucket_size, pad, unpad
from boxless.errors import DecodeError
from boxless.wire import envelope_pb2
from tests.crypto_fixtures import Device

RECIPIENT = SealingKeyPair.generate()
SENDER_IDENTITY = secrets.token_bytes(32)
SENDER_DEVICE = secrets.token_bytes(32)


def sealed(body: bytes, *, msg_type: int = 1, session_id: str = "sid") -> bytes:
    return seal(
        RECIPIENT.public_bytes,
        sender_identity_key=SENDER_IDENTITY,
        sender_device_key=SENDER_DEVICE,
        ciphertext=OlmCiphertext(msg_type, body, session_id),
    )


VALID = sealed(b"\x03" + bytes(100))


def test_roundtrip_with_real_olm(tmp_path: Path) -> None:
    alice, bob = Device(tmp_path / "a.db"), Device(tmp_path / "b.db")
    bundle = bob.bundle()
    for text in (b"first contact", b"second", b"x" * 5000):
        envelope = seal(
            bundle.sealing_key,
            sender_identity_key=alice.identity_key,
            sender_device_key=alice.curve25519,
            ciphertext=alice.manager.encrypt(bundle, text),
        )
        opened = open_envelope(bob.sealing, envelope)
        assert opened.sender_identity_key == alice.identity_key
        assert opened.sender_device_key == alice.curve25519
        assert bob.manager.decrypt(opened.sender_device_key, opened.ciphertext) == text


def test_outer_bytes_show_no_plaintext_sender_or_olm_message(tmp_path: Path) -> None:
    alice, bob = Device(tmp_path / "a.db"), Device(tmp_path / "b.db")
    bundle = bob.bundle()
    plaintext = b"meet me at the old bridge at nine"
    ct = alice.manager.encrypt(bundle, plaintext)  # a pre-key message: it names Alice's key
    envelope = seal(
        bundle.sealing_key,
        sender_identity_key=alice.identity_key,
        sender_device_key=alice.curve25519,
        ciphertext=ct,
    )
    outer = envelope_pb2.SealedEnvelope.FromString(envelope)
    assert outer.version == 1 and len(outer.ephemeral_key) == 32
    for secret in (
        plaintext,
        alice.identity_key,
        alice.curve25519,
        bundle.curve25519,
        bundle.sealing_key,
        ct.session_id.encode(),
        ct.body[:16],
        ct.body[-16:],
    ):
        assert secret not in envelope
    # Two envelopes of the same message share nothing but the framing.
    again = envelope_pb2.SealedEnvelope.FromString(
        seal(
            bundle.sealing_key,
            sender_identity_key=alice.identity_key,
            sender_device_key=alice.curve25519,
            ciphertext=ct,
        )
    )
    assert again.ephemeral_key != outer.ephemeral_key
    assert again.ciphertext[:32] != outer.ciphertext[:32]


def test_lengths_are_bucketed() -> None:
    sizes = {len(sealed(b"\x03" + bytes(n))) for n in (1, 10, 100, 150)}
    assert len(sizes) == 1
    assert len(sealed(b"\x03" + bytes(300))) > max(sizes)
    assert [bucket_size(n) for n in (0, 255, 256, 1023, 1024)] == [256, 256, 1024, 1024, 4096]
    with pytest.raises(CryptoUsageError):
        bucket_size(MAX_CONTENT_BYTES + 1)
    for n in (0, 1, 254, 255, 256, 5000):
        content = secrets.token_bytes(n)
        assert len(pad(content)) in BUCKETS
        assert unpad(pad(content)) == content


def test_wrong_recipient_or_altered_bytes_fail_authentication() -> None:
    with pytest.raises(TamperedMessage):
        open_envelope(SealingKeyPair.generate(), VALID)
    outer = envelope_pb2.SealedEnvelope.FromString(VALID)
    for field in ("ephemeral_key", "ciphertext"):
        altered = envelope_pb2.SealedEnvelope()
        altered.CopyFrom(outer)
        value = bytearray(getattr(outer, field))
        value[5] ^= 0x40
        setattr(altered, field, bytes(value))
        with pytest.raises(TamperedMessage):
            open_envelope(RECIPIENT, altered.SerializeToString())
    wrong_version = envelope_pb2.SealedEnvelope()
    wrong_version.CopyFrom(outer)
    wrong_version.version = 2
    with pytest.raises(DecodeError):
        open_envelope(RECIPIENT, wrong_version.SerializeToString())


def test_keys_survive_storage_and_hide_in_repr() -> None:
    restored = SealingKeyPair.from_private_bytes(RECIPIENT.private_bytes())
    assert restored.public_bytes == RECIPIENT.public_bytes
    assert open_envelope(restored, VALID).ciphertext.body == b"\x03" + bytes(100)
    assert RECIPIENT.private_bytes().hex() not in repr(RECIPIENT)
    opened = open_envelope(RECIPIENT, VALID)
    assert SENDER_IDENTITY.hex() not in repr(opened) and "sid" not in repr(opened)


def _open_only_expected_errors(data: bytes) -> None:
    try:
        open_envelope(RECIPIENT, data)
    except (DecodeError, TamperedMessage):
        pass


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _open_only_expected_errors(data)


@settings(max_examples=300)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255), st.data())
def test_fuzz_mutated_valid_envelope(position: int, xor: int, data: st.DataObject) -> None:
    mutated = bytearray(VALID)
    mutated[position % len(mutated)] ^= xor
    cut = data.draw(st.integers(min_value=0, max_value=len(mutated)))
    _open_only_expected_errors(bytes(mutated))
    _open_only_expected_errors(bytes(mutated[:cut]))


@settings(max_examples=200)
@given(
    st.binary(min_size=32, max_size=32),
    st.sampled_from(BUCKETS[:3]),
    st.binary(max_size=64),
)
def test_fuzz_well_framed_envelopes(ephemeral: bytes, bucket: int, noise: bytes) -> None:
    """Right version and sizes, random content: must reach the AEAD and stop there."""
    body = (noise * (bucket // max(len(noise), 1) + 1))[: bucket + 16].ljust(bucket + 16, b"\0")
    envelope = envelope_pb2.SealedEnvelope(version=1, ephemeral_key=ephemeral, ciphertext=body)
    with pytest.raises(TamperedMessage):
        open_envelope(RECIPIENT, envelope.SerializeToString())


@settings(max_examples=300)
@given(st.binary(max_size=600), st.booleans())
def test_fuzz_content_decoder_behind_valid_encryption(inner: bytes, well_padded: bool) -> None:
    """Garbage sealed correctly (any sender can do that) is a DecodeError, never a crash."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    from boxless.crypto.sealed import _INFO, _SUITE

    if well_padded:
        padded = pad(inner)  # garbage protobuf behind valid padding
    else:
        padded = inner.ljust(256 if len(inner) <= 256 else 1024, b"\0")  # raw, usually bad
    sealed_bytes = _SUITE.encrypt(
        padded, X25519PublicKey.from_public_bytes(RECIPIENT.public_bytes), info=_INFO
    )
    envelope = envelope_pb2.SealedEnvelope(
        version=1, ephemeral_key=sealed_bytes[:32], ciphertext=sealed_bytes[32:]
    ).SerializeToString()
    try:
        open_envelope(RECIPIENT, envelope)
    except DecodeError:
        pass
