"""Identity: recovery phrase, key derivation, device certificates and bundles, keystore, profile."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import unicodedata
from pathlib import Path

import pytest
import vodozemac
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from boxless.errors import DecodeError, UsageError
from boxless.identity import (
    Device,
    DeviceBundle,
    DeviceCertificate,
    ExpiredBundle,
    Identity,
    IdentityExists,
    InvalidBundle,
    InvalidCertificate,
    InvalidPhrase,
    InvalidProfile,
    Keystore,
    NoIdentity,
    Profile,
    decode_profile,
    generate_phrase,
    load_profile,
    save_profile,
    validate_phrase,
)
from boxless.identity.account import create_account, open_account
from boxless.identity.seed import phrase_from_entropy, phrase_to_seed
from boxless.storage import KdfParams, create_user_db

FAST = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
NOW = 1_800_000_000.0
# BIP-39 reference vector (trezor/python-mnemonic vectors.json): 32 zero bytes.
ZERO_PHRASE = " ".join(["abandon"] * 23 + ["art"])


# ---------------------------------------------------------------- phrase


def test_generated_phrase_is_24_valid_words() -> None:
    phrase = generate_phrase()
    assert len(phrase.split()) == 24
    assert validate_phrase(phrase) == phrase
    assert generate_phrase() != phrase


def test_bip39_reference_vector() -> None:
    assert phrase_from_entropy(bytes(32)) == ZERO_PHRASE
    # The same vector's seed with the BIP-39 passphrase "TREZOR", through our library.
    from mnemonic import Mnemonic

    assert Mnemonic.to_seed(ZERO_PHRASE, "TREZOR").hex().startswith("bda85446c6841370")


def test_identity_derivation_matches_the_documented_steps() -> None:
    phrase = phrase_from_entropy(bytes(range(32)))
    seed = hashlib.pbkdf2_hmac(
        "sha512", unicodedata.normalize("NFKD", phrase).encode(), b"mnemonic", 2048
    )
    assert phrase_to_seed(phrase) == seed
    private = HKDF(hashes.SHA256(), 32, salt=None, info=b"boxless identity v1").derive(seed)
    expected = (
        Ed25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    identity = Identity.from_phrase(phrase)
    assert identity.public_key == expected
    # Locked: changing the derivation would orphan every existing account.
    assert expected.hex() == "ced1c6d7827d2990d33d92b2db10c33535f2267d01a1bef973ed6e1f12cf7234"


def test_restore_is_deterministic_and_tolerant_of_case_and_spacing() -> None:
    phrase = generate_phrase()
    messy = "  " + "   ".join(w.upper() for w in phrase.split()) + "\n"
    assert Identity.from_phrase(messy).public_key == Identity.from_phrase(phrase).public_key


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("", "has 0"),
        (" ".join(["abandon"] * 12), "has 12"),
        (" ".join(["abandon"] * 25), "has 25"),
        (" ".join(["abandon"] * 22 + ["abandonn", "art"]), "word 23 of the recovery phrase is not"),
        (" ".join(["xx"] * 2 + ["abandon"] * 22), "words 1, 2"),
        (" ".join(["abandon"] * 24), "checksum"),
    ],
)
def test_validate_phrase_errors(phrase: str, message: str) -> None:
    with pytest.raises(InvalidPhrase, match=message) as info:
        validate_phrase(phrase)
    assert isinstance(info.value, UsageError)
    assert "abandonn" not in str(info.value)  # positions, never the words


def test_identity_repr_hides_the_private_key() -> None:
    identity = Identity.from_phrase(ZERO_PHRASE)
    text = repr(identity)
    assert identity.private_bytes().hex() not in text
    assert identity.fingerprint in text
    assert len(identity.fingerprint.split()) == 8


# ------------------------------------------------------- certificate, bundle


@pytest.fixture(scope="module")
def identity() -> Identity:
    return Identity.from_phrase(ZERO_PHRASE)


@pytest.fixture(scope="module")
def device(identity: Identity) -> Device:
    return Device.create(identity, NOW)


def test_certificate_binds_device_keys(identity: Identity, device: Device) -> None:
    cert = device.certificate
    cert.verify()
    assert cert.identity_key == identity.public_key
    assert cert.device_curve25519 == device.account.curve25519_key.to_bytes()
    assert len(cert.device_id) == 16
    again = DeviceCertificate.from_proto(cert.to_proto())
    assert again == cert
    again.verify()


@pytest.mark.parametrize(
    "field",
    ["identity_key", "device_id", "device_curve25519", "device_ed25519", "device_sealing_key"],
)
def test_tampered_certificate_fails(device: Device, field: str) -> None:
    value = bytearray(getattr(device.certificate, field))
    value[0] ^= 1
    forged = dataclasses.replace(device.certificate, **{field: bytes(value)})
    with pytest.raises(InvalidCertificate):
        forged.verify()
    later = dataclasses.replace(device.certificate, created_at=device.certificate.created_at + 1)
    with pytest.raises(InvalidCertificate):
        later.verify()


def test_certificate_by_another_identity_fails(device: Device) -> None:
    other = Identity.from_phrase(generate_phrase())
    forged = dataclasses.replace(device.certificate, identity_key=other.public_key)
    with pytest.raises(InvalidCertificate):
        forged.verify()


def test_bundle_verifies_and_expires(device: Device) -> None:
    bundle = device.bundle(NOW, validity=3600)
    bundle.verify(NOW + 10)
    assert DeviceBundle.from_proto(bundle.to_proto()) == bundle
    with pytest.raises(ExpiredBundle, match="expired"):
        bundle.verify(NOW + 3600)
    with pytest.raises(ExpiredBundle, match="future"):
        bundle.verify(NOW - 3600)


def test_bundle_with_one_time_key(device: Device) -> None:
    device.account.generate_one_time_keys(1)
    otk = next(iter(device.account.one_time_keys.values())).to_bytes()
    bundle = device.bundle(NOW, one_time_key=otk)
    bundle.verify(NOW)
    assert DeviceBundle.from_proto(bundle.to_proto()).one_time_key == otk
    swapped = dataclasses.replace(bundle, one_time_key=None)
    with pytest.raises(InvalidBundle, match="device signature"):
        swapped.verify(NOW)


def test_tampered_bundle_fails(device: Device) -> None:
    bundle = device.bundle(NOW)
    forged = dataclasses.replace(bundle, fallback_key=bytes(32))
    with pytest.raises(InvalidBundle, match="device signature"):
        forged.verify(NOW)
    stretched = dataclasses.replace(bundle, expires_at=bundle.expires_at + 1)
    with pytest.raises(InvalidBundle, match="device signature"):
        stretched.verify(NOW)


def test_bundle_opens_an_olm_session_offline(device: Device) -> None:
    """What the bundle is for: Bob starts a session from it; Alice's device decrypts."""
    bundle = device.bundle(NOW)
    bob = vodozemac.Account()
    outbound = bob.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_bytes(bundle.certificate.device_curve25519),
        vodozemac.Curve25519PublicKey.from_bytes(bundle.fallback_key),
    )
    message = outbound.encrypt(b"hello from the past")
    prekey = message.to_pre_key()
    assert prekey is not None
    _, plaintext = device.account.create_inbound_session(bob.curve25519_key, prekey)
    assert plaintext == b"hello from the past"


# ------------------------------------------------------------------ keystore


def test_keystore_roundtrip_and_nothing_in_clear(tmp_path: Path, identity: Identity) -> None:
    db = create_user_db(tmp_path / "user.db", "keystore passphrase", kdf=FAST)
    keystore = Keystore(db)
    assert not keystore.has_identity()
    with pytest.raises(NoIdentity):
        keystore.load_identity()
    dev = Device.create(identity, NOW)
    keystore.save_identity(identity, NOW)
    keystore.save_device(dev, NOW)
    with pytest.raises(IdentityExists):
        keystore.save_identity(identity, NOW)
    loaded = keystore.load_identity()
    assert loaded.public_key == identity.public_key
    loaded_dev = keystore.load_device()
    assert loaded_dev.certificate == dev.certificate
    assert loaded_dev.fallback_key == dev.fallback_key
    assert loaded_dev.account.ed25519_key == dev.account.ed25519_key
    # The pickle is encrypted with a key derived inside the database, not a fixed one.
    with db.transaction() as cur:
        cur.execute("SELECT account_pickle FROM device")
        pickle = cur.fetchone()[0]
    with pytest.raises(vodozemac.PickleException):
        vodozemac.Account.from_pickle(pickle, bytes(32))
    # Account changes (a used one-time key) are saved back.
    assert loaded_dev.sealing_private_key() == dev.sealing_private_key()
    with db.transaction() as cur:
        account = keystore.load_account(cur)
        account.generate_one_time_keys(2)
        keystore.save_account(cur, account)
    assert len(keystore.load_device().account.one_time_keys) == 2
    db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert identity.private_bytes() not in raw
    assert dev.sealing_private_key() not in raw
    assert identity.public_key not in raw
    assert dev.certificate.device_id not in raw


def test_account_create_and_open(tmp_path: Path, identity: Identity) -> None:
    profile = Profile(display_name="Alice")
    with create_account(tmp_path, "account passphrase", identity, profile, NOW, kdf=FAST) as acc:
        device_id = acc.device.device_id
    with open_account(tmp_path, "account passphrase") as acc:
        assert acc.identity.public_key == identity.public_key
        assert acc.device.device_id == device_id
        assert acc.profile.display_name == "Alice"
        assert "passphrase" not in repr(acc)
        code = acc.contact_code(NOW)
        assert code.display_name == "Alice"


# ------------------------------------------------------------------- profile


def _image(kind: str, size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, format=kind)
    return out.getvalue()


def test_profile_roundtrip_with_avatars(tmp_path: Path) -> None:
    for kind, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        profile = Profile(display_name="  Zoë 🦊 ", avatar=_image(kind), updated_at=5)
        assert profile.display_name == "Zoë 🦊"
        assert profile.avatar_type == mime
        assert decode_profile(profile.encode()) == profile
        assert "avatar=" in repr(profile) and str(profile.avatar) not in repr(profile)
    db = create_user_db(tmp_path / "user.db", "profile passphrase", kdf=FAST)
    Keystore(db)  # applies the identity migrations (profile table)
    assert load_profile(db) is None
    save_profile(db, Profile(display_name="Bob", avatar=_image("PNG")))
    save_profile(db, Profile(display_name="Bobby"))
    loaded = load_profile(db)
    assert loaded is not None and loaded.display_name == "Bobby" and loaded.avatar is None
    db.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"display_name": "   "}, "empty"),
        ({"display_name": "x" * 65}, "limit is 64"),
        ({"display_name": "evil\u202egnp.exe"}, "control"),
        ({"display_name": "tab\there"}, "control"),
        ({"display_name": "a", "avatar": b"GIF89a..."}, "PNG or JPEG"),
        ({"display_name": "a", "avatar": b"\x89PNG\r\n\x1a\n" + bytes(100)}, "damaged"),
        ({"display_name": "a", "avatar": b"\x89PNG\r\n\x1a\n" + bytes(300 * 1024)}, "256 KiB"),
    ],
)
def test_profile_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidProfile, match=message):
        Profile(**kwargs)  # type: ignore[arg-type]


def test_avatar_too_many_pixels() -> None:
    with pytest.raises(InvalidProfile, match="at most 4096"):
        Profile(display_name="a", avatar=_image("PNG", (5000, 1)))


def test_avatar_type_must_match() -> None:
    with pytest.raises(InvalidProfile, match="not image/jpeg"):
        Profile(display_name="a", avatar=_image("PNG"), avatar_type="image/jpeg")


@given(st.binary(max_size=512))
def test_decode_profile_fuzz(data: bytes) -> None:
    try:
        decode_profile(data)
    except DecodeError:
        pass


# ------------------------------------------ with the crypto layer (issue 4 part 4)


def test_contact_code_to_sealed_olm_message_through_the_keystores(tmp_path: Path) -> None:
    """Bob scans Alice's contact code and messages her while she is offline.

    Both accounts live in their own encrypted UserDB; the Keystore is the
    SessionManager's AccountStore and the decoded bundle its DeviceBundle.
    """
    from boxless.crypto.olm_sessions import SessionManager
    from boxless.crypto.olm_sessions import migration_files as crypto_migrations
    from boxless.crypto.sealed import SealingKeyPair, open_envelope, seal
    from boxless.identity import decode_contact_code

    accounts = {}
    for name in ("alice", "bob"):
        who = Identity.from_phrase(generate_phrase())
        acc = create_account(
            tmp_path / name, "passphrase " + name, who, Profile(display_name=name), NOW, kdf=FAST
        )
        acc.db.migrate("crypto", crypto_migrations())
        manager = SessionManager(acc.db, acc.keystore, acc.db.derive_key("olm sessions v1"))
        accounts[name] = (acc, manager)
    (alice, alice_sessions), (bob, bob_sessions) = accounts["alice"], accounts["bob"]

    link = alice.contact_code(NOW).link
    code = decode_contact_code(link, NOW + 60)
    olm = bob_sessions.encrypt(code.bundle, b"hi Alice, it's Bob")
    envelope = seal(
        code.bundle.sealing_key,
        sender_identity_key=bob.identity.public_key,
        sender_device_key=bob.device.certificate.device_curve25519,
        ciphertext=olm,
    )
    opened = open_envelope(
        SealingKeyPair.from_private_bytes(alice.device.sealing_private_key()), envelope
    )
    assert opened.sender_identity_key == bob.identity.public_key
    plaintext = alice_sessions.decrypt(opened.sender_device_key, opened.ciphertext)
    assert plaintext == b"hi Alice, it's Bob"
    for acc, _ in accounts.values():
        acc.close()
