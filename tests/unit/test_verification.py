"""Safety numbers, the SAS flow (two honest devices, and a man in the middle), key changes."""

from __future__ import annotations

import secrets

import pytest

from boxless.crypto import (
    ContactTrust,
    CryptoUsageError,
    SasFlow,
    SasMismatch,
    SasParty,
    SasRole,
    SasState,
    TrustLevel,
    format_safety_number,
    mark_verified,
    observe_identity_key,
    safety_number,
)
from boxless.crypto.verification import SAS_EMOJI, _fingerprint_digits


def party() -> SasParty:
    return SasParty(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32))


# ---------------------------------------------------------------- safety numbers


def test_safety_number_matches_libsignal_vector() -> None:
    # libsignal NumericFingerprintGeneratorTest: serialized keys, phone numbers
    # as stable ids, 5200 iterations.
    alice = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
    bob = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
    a, b = _fingerprint_digits(alice, b"+14152222222"), _fingerprint_digits(bob, b"+14153333333")
    assert min(a, b) + max(a, b) == "300354477692869396892869876765458257569162576843440918079131"


def test_safety_number_is_symmetric_and_differs_per_pair() -> None:
    a, b, c = (secrets.token_bytes(32) for _ in range(3))
    ab = safety_number(a, b)
    assert ab == safety_number(b, a)
    assert len(ab) == 60 and ab.isdigit()
    assert len({ab, safety_number(a, c), safety_number(b, c)}) == 3
    groups = format_safety_number(ab).split(" ")
    assert len(groups) == 12 and all(len(g) == 5 for g in groups)
    assert "".join(groups) == ab
    with pytest.raises(CryptoUsageError):
        safety_number(a, b"short")
    with pytest.raises(CryptoUsageError):
        format_safety_number("123")


# ---------------------------------------------------------------- SAS


class Pair:
    """Two flows wired to each other in memory, like h11's ConnectionPair."""

    def __init__(self, alice: SasParty, bob: SasParty, *, alice_sees: SasParty | None = None):
        self.alice = SasFlow(alice, alice_sees or bob, role=SasRole.INITIATOR, flow_id="f1")
        self.bob = SasFlow(bob, alice, role=SasRole.RESPONDER, flow_id="f1")

    def exchange_keys(self) -> None:
        key_r = self.bob.receive_commitment(self.alice.start())
        key_i = self.alice.receive_key(key_r)
        assert key_i is not None
        assert self.bob.receive_key(key_i) is None


def test_sas_emoji_and_decimals_match_and_macs_verify() -> None:
    pair = Pair(party(), party())
    pair.exchange_keys()
    emoji = pair.alice.emoji()
    assert emoji == pair.bob.emoji()
    assert len(emoji) == 7 and all(e in SAS_EMOJI for e in emoji)
    assert pair.alice.decimals() == pair.bob.decimals()
    assert all(1000 <= d <= 9191 for d in pair.alice.decimals())

    mac_a = pair.alice.confirm()
    assert pair.bob.receive_mac(mac_a) is False  # Bob has not pressed "they match" yet
    assert pair.bob.state is SasState.THEIRS_VERIFIED
    mac_b = pair.bob.confirm()
    assert pair.bob.verified
    assert pair.alice.receive_mac(mac_b) is True
    assert pair.alice.state is SasState.VERIFIED


def test_emoji_table_is_the_matrix_one() -> None:
    assert len(SAS_EMOJI) == 64
    assert SAS_EMOJI[0] == ("\U0001f436", "Dog")
    assert SAS_EMOJI[21] == ("\u2601\ufe0f", "Cloud")
    assert SAS_EMOJI[63] == ("\U0001f4cc", "Pin")
    assert len({name for _, name in SAS_EMOJI}) == 64


def test_mitm_substituting_sas_keys_shows_different_emoji_and_fails_macs() -> None:
    alice, bob = party(), party()
    # Mallory relays between them, running a flow with each side in which she
    # claims to be the other (public keys are all she needs to claim them).
    with_alice = SasFlow(bob, alice, role=SasRole.RESPONDER, flow_id="f1")
    with_bob = SasFlow(alice, bob, role=SasRole.INITIATOR, flow_id="f1")
    a = SasFlow(alice, bob, role=SasRole.INITIATOR, flow_id="f1")
    b = SasFlow(bob, alice, role=SasRole.RESPONDER, flow_id="f1")

    key_m1 = with_alice.receive_commitment(a.start())
    key_a = a.receive_key(key_m1)
    assert key_a is not None
    with_alice.receive_key(key_a)
    key_b = b.receive_commitment(with_bob.start())
    key_m2 = with_bob.receive_key(key_b)
    assert key_m2 is not None
    b.receive_key(key_m2)

    # The people comparing see different emoji (a 2**-42 chance otherwise),
    # and the commitments stopped Mallory from grinding keys to make them match.
    assert a.emoji() != b.emoji()
    assert with_alice.emoji() == a.emoji() and with_bob.emoji() == b.emoji()
    # If both wave it through anyway, MACs relayed across do not verify.
    with pytest.raises(SasMismatch):
        b.receive_mac(a.confirm())
    assert b.state is SasState.FAILED
    with pytest.raises(CryptoUsageError):
        b.confirm()  # a failed flow stays failed


def test_mitm_substituting_the_identity_key_is_caught() -> None:
    """Alice was given Mallory's keys as "Bob's" (a forged contact link)."""
    alice, bob, mallory = party(), party(), party()
    pair = Pair(alice, bob, alice_sees=mallory)
    # The transcript each side commits to names the keys it believes in.
    with pytest.raises(SasMismatch, match="different keys"):
        pair.exchange_keys()


def test_mac_binds_the_device_keys() -> None:
    """Same SAS secret, but Bob's MAC covers keys Alice was not told about."""
    alice, bob = party(), party()
    pair = Pair(alice, bob)
    pair.exchange_keys()
    pair.bob.ours = SasParty(bob.identity_key, secrets.token_bytes(32), bob.device_ed25519)
    with pytest.raises(SasMismatch):
        pair.alice.receive_mac(pair.bob.confirm())


def test_commitment_binds_the_initiator_key() -> None:
    pair = Pair(party(), party())
    pair.bob.receive_commitment(pair.alice.start())
    with pytest.raises(SasMismatch, match="commitment"):
        pair.bob.receive_key(secrets.token_bytes(32))


def test_out_of_order_steps_are_usage_errors() -> None:
    pair = Pair(party(), party())
    with pytest.raises(CryptoUsageError):
        pair.alice.emoji()
    with pytest.raises(CryptoUsageError):
        pair.bob.start()  # the responder does not start
    with pytest.raises(CryptoUsageError):
        pair.alice.receive_key(secrets.token_bytes(32))  # before start
    pair.exchange_keys()
    with pytest.raises(CryptoUsageError):
        pair.alice.receive_key(secrets.token_bytes(32))  # twice
    pair.alice.cancel()
    with pytest.raises(CryptoUsageError):
        pair.alice.confirm()
    with pytest.raises(CryptoUsageError):
        SasFlow(party(), party(), role=SasRole.INITIATOR, flow_id="no|pipes")


def test_sas_repr_holds_no_keys() -> None:
    ours = party()
    flow = SasFlow(ours, party(), role=SasRole.INITIATOR, flow_id="f1")
    assert ours.identity_key.hex() not in repr(flow) and "identity" not in repr(ours)


# ---------------------------------------------------------------- key changes


def test_key_change_on_a_verified_contact_breaks_verification() -> None:
    key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    trust = ContactTrust(key)
    assert trust.level is TrustLevel.UNVERIFIED
    trust = mark_verified(trust)
    assert trust.level is TrustLevel.VERIFIED

    same = observe_identity_key(trust, key)
    assert (same.changed, same.verification_broken, same.trust) == (False, False, trust)

    changed = observe_identity_key(trust, new_key)
    assert changed.changed and changed.verification_broken
    assert changed.trust.level is TrustLevel.VERIFICATION_BROKEN
    assert changed.trust.identity_key == new_key

    # Still broken after another change; not flagged a second time.
    again = observe_identity_key(changed.trust, secrets.token_bytes(32))
    assert again.trust.level is TrustLevel.VERIFICATION_BROKEN and not again.verification_broken
    # Re-verifying the new key clears it.
    assert mark_verified(again.trust).level is TrustLevel.VERIFIED


def test_key_change_on_an_unverified_contact_is_only_a_change() -> None:
    result = observe_identity_key(ContactTrust(secrets.token_bytes(32)), secrets.token_bytes(32))
    assert result.changed and not result.verification_broken
    assert result.trust.level is TrustLevel.UNVERIFIED
