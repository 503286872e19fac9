"""Sealed envelope v2 (pairwise): roundtrip, attackers, a fuzzed decoder, and the
SessionManager steps that write through the caller's cursor."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.crypto import (
    CryptoUsageError,
    DuplicateMessage,
    OlmCiphertext,
    SealingKeyPair,
    TamperedMessage,
    open_envelope,
    seal,
)
from boxless.crypto.pairwise import (
    PAIRWISE_VERSION,
    SEED_BYTES,
    PairwiseSealer,
    is_pairwise,
    parse_pairwise,
)
from boxless.crypto.sealed import AEAD_TAG_BYTES, BUCKETS
from boxless.errors import DecodeError
from boxless.wire import envelope_pb2
from tests.crypto_fixtures import Device

TOPIC = "/boxless/1/chat-" + "ab" * 16 + "/proto"
OTHER_TOPIC = "/boxless/1/chat-" + "cd" * 16 + "/proto"


class Peer:
    """A device as the envelope sees it: keys, and its sealer."""

    def __init__(self) -> None:
        self.sealing = SealingKeyPair.generate()
        self.identity = secrets.token_bytes(32)
        self.device = secrets.token_bytes(32)
        self.sealer = PairwiseSealer(self.sealing)

    def seal_to(self, peer: Peer, body: bytes, *, topic: str = TOPIC, device: bytes = b"") -> bytes:
        return self.sealer.seal(
            peer.device,
            peer.sealing.public_bytes,
            topic,
            sender_identity_key=self.identity,
            sender_device_key=device or self.device,
            ciphertext=OlmCiphertext(1, body, "sid"),
        )

    def open_from(self, peer: Peer, data: bytes, *, topic: str = TOPIC) -> bytes:
        opened = self.sealer.open(peer.device, peer.sealing.public_bytes, topic, data)
        assert opened.sender_identity_key == peer.identity
        return opened.ciphertext.body


ALICE, BOB, CAROL = Peer(), Peer(), Peer()
VALID = ALICE.seal_to(BOB, b"\x03" + bytes(100))


def test_roundtrip_both_ways_and_the_outer_bytes() -> None:
    for size in (1, 100, 300, 5000, 70_000):
        body = secrets.token_bytes(size)
        assert BOB.open_from(ALICE, ALICE.seal_to(BOB, body)) == body
        assert ALICE.open_from(BOB, BOB.seal_to(ALICE, body)) == body
    envelope = envelope_pb2.SealedEnvelope()
    envelope.ParseFromString(VALID)
    assert envelope.version == PAIRWISE_VERSION and envelope.ephemeral_key == b""
    assert len(envelope.ciphertext) == SEED_BYTES + BUCKETS[0] + AEAD_TAG_BYTES
    assert is_pairwise(VALID) and VALID[:2] == b"\x08\x02"
    for key in (ALICE.identity, ALICE.device, ALICE.sealing.public_bytes, BOB.device):
        assert key not in VALID


def test_two_envelopes_of_one_pair_share_nothing_but_the_header() -> None:
    """No tag: beyond the (per-pair) topic, nothing links two envelopes of a pair."""
    a, b = ALICE.seal_to(BOB, b"same"), ALICE.seal_to(BOB, b"same")
    assert len(a) == len(b) and a[:4] == b[:4]  # version, field tag, length
    assert not any(a[i : i + 8] == b[i : i + 8] for i in range(4, len(a) - 8))


def test_the_recipient_rejects_what_is_not_from_its_pair() -> None:
    with pytest.raises(TamperedMessage):  # Carol's pair key with Bob is not Alice's
        BOB.open_from(ALICE, CAROL.seal_to(BOB, b"I am Alice"))
    with pytest.raises(TamperedMessage):  # sealed for Carol
        BOB.open_from(ALICE, ALICE.seal_to(CAROL, b"hi"))
    with pytest.raises(TamperedMessage):  # moved to another topic
        BOB.open_from(ALICE, ALICE.seal_to(BOB, b"hi"), topic=OTHER_TOPIC)
    with pytest.raises(TamperedMessage):  # Alice's own envelope reflected back to her
        ALICE.open_from(BOB, ALICE.seal_to(BOB, b"hi"))
    with pytest.raises(TamperedMessage):  # a genuine pair, but naming another device
        BOB.open_from(ALICE, ALICE.seal_to(BOB, b"hi", device=CAROL.device))


def test_versions_do_not_cross() -> None:
    v1 = seal(
        BOB.sealing.public_bytes,
        sender_identity_key=ALICE.identity,
        sender_device_key=ALICE.device,
        ciphertext=OlmCiphertext(1, b"hi", "sid"),
    )
    assert not is_pairwise(v1)
    with pytest.raises(DecodeError):
        BOB.sealer.open(ALICE.device, ALICE.sealing.public_bytes, TOPIC, v1)
    with pytest.raises(DecodeError):
        open_envelope(BOB.sealing, VALID)


def test_every_truncation_and_bit_flip_is_rejected() -> None:
    for cut in range(len(VALID)):
        with pytest.raises((DecodeError, TamperedMessage)):
            BOB.open_from(ALICE, VALID[:cut])
    for i in range(0, len(VALID), 7):
        flipped = bytearray(VALID)
        flipped[i] ^= 0x01
        with pytest.raises((DecodeError, TamperedMessage)):
            BOB.open_from(ALICE, bytes(flipped))


def test_framing_rules() -> None:
    sealed = envelope_pb2.SealedEnvelope()
    sealed.ParseFromString(VALID)
    with_key = envelope_pb2.SealedEnvelope(
        version=2, ephemeral_key=bytes(32), ciphertext=sealed.ciphertext
    )
    off_bucket = envelope_pb2.SealedEnvelope(version=2, ciphertext=sealed.ciphertext[:-1])
    for bad in (with_key, off_bucket):
        with pytest.raises(DecodeError):
            parse_pairwise(bad.SerializeToString())
    with pytest.raises(DecodeError):
        parse_pairwise(b"\x08\x02" + bytes(300_000))


def test_a_low_order_sealing_key_is_refused() -> None:
    with pytest.raises(CryptoUsageError):
        ALICE.sealer.seal(
            secrets.token_bytes(32),
            bytes(32),
            TOPIC,
            sender_identity_key=ALICE.identity,
            sender_device_key=ALICE.device,
            ciphertext=OlmCiphertext(1, b"x", "sid"),
        )


def test_a_contact_with_a_low_order_sealing_key_cannot_break_the_receive_pipeline() -> None:
    """Its v2 envelopes are tampered (a peer's fault), not a usage error that
    would fail the recipient's whole receive batch."""
    with pytest.raises(TamperedMessage):
        BOB.sealer.open(secrets.token_bytes(32), bytes(32), TOPIC, VALID)
    with pytest.raises(TamperedMessage):
        BOB.sealer.open(b"short", ALICE.sealing.public_bytes, TOPIC, VALID)


def test_the_pair_cache_is_bounded_and_follows_the_device_s_key() -> None:
    sealer = PairwiseSealer(SealingKeyPair.generate(), max_pairs=2)
    peers = [Peer() for _ in range(3)]
    for peer in peers:
        data = sealer.seal(
            peer.device,
            peer.sealing.public_bytes,
            TOPIC,
            sender_identity_key=ALICE.identity,
            sender_device_key=ALICE.device,
            ciphertext=OlmCiphertext(1, b"x", "sid"),
        )
        assert len(data) > 0
    assert repr(sealer) == "<PairwiseSealer pairs=2>"
    assert sealer.sealing_key_of(peers[0].device) is None  # the least recently used went
    assert sealer.sealing_key_of(peers[2].device) == peers[2].sealing.public_bytes
    sealer.forget(peers[2].device)
    assert sealer.sealing_key_of(peers[2].device) is None


def test_confirmations_are_per_device_and_topic_bounded_and_forgotten() -> None:
    sealer = PairwiseSealer(SealingKeyPair.generate(), max_pairs=2)
    assert not sealer.confirmed(BOB.device, TOPIC)
    sealer.confirm(BOB.device, TOPIC)
    assert sealer.confirmed(BOB.device, TOPIC)
    assert not sealer.confirmed(BOB.device, OTHER_TOPIC)
    assert not sealer.confirmed(CAROL.device, TOPIC)
    sealer.confirm(CAROL.device, TOPIC)
    sealer.confirm(ALICE.device, TOPIC)  # over the bound: the oldest goes
    assert not sealer.confirmed(BOB.device, TOPIC)
    sealer.forget(CAROL.device)
    assert not sealer.confirmed(CAROL.device, TOPIC)
    assert sealer.confirmed(ALICE.device, TOPIC)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzzed_bytes_raise_only_decode_or_tampered(data: bytes) -> None:
    for candidate in (data, b"\x08\x02" + data, VALID[: len(data) % len(VALID)] + data):
        try:
            BOB.open_from(ALICE, candidate)
        except (DecodeError, TamperedMessage):
            pass


@settings(max_examples=50)
@given(st.binary(min_size=1, max_size=3000), st.sampled_from([TOPIC, OTHER_TOPIC]))
def test_roundtrip_property(body: bytes, topic: str) -> None:
    data = ALICE.seal_to(BOB, body, topic=topic)
    assert BOB.open_from(ALICE, data, topic=topic) == body
    assert len(parse_pairwise(data).ciphertext) - SEED_BYTES - AEAD_TAG_BYTES in BUCKETS


# -- SessionManager in the caller's transaction (no savepoint of its own)


def test_with_real_olm_through_the_caller_s_cursor(tmp_path: Path) -> None:
    alice, bob = Device(tmp_path / "a.db"), Device(tmp_path / "b.db")
    a_sealer, b_sealer = PairwiseSealer(alice.sealing), PairwiseSealer(bob.sealing)
    a_bundle, b_bundle = alice.bundle(), bob.bundle()
    with bob.manager.transaction() as cur:  # Bob's first message: a pre-key message (v1)
        first = bob.manager.encrypt(a_bundle, b"hello", cur=cur)
    assert first.is_prekey
    assert alice.manager.decrypt(bob.curve25519, first) == b"hello"
    with alice.manager.transaction() as cur:
        reply = alice.manager.encrypt(b_bundle, b"hi Bob", cur=cur)
    assert not reply.is_prekey  # Alice's session has received from Bob: normal, v2 allowed
    data = a_sealer.seal(
        bob.curve25519,
        b_bundle.sealing_key,
        TOPIC,
        sender_identity_key=alice.identity_key,
        sender_device_key=alice.curve25519,
        ciphertext=reply,
    )
    opened = b_sealer.open(alice.curve25519, a_bundle.sealing_key, TOPIC, data)
    with bob.manager.transaction() as cur:
        assert bob.manager.decrypt(alice.curve25519, opened.ciphertext, cur=cur) == b"hi Bob"
    # A replay inside a caller's transaction that then commits: refused, nothing written.
    before = bob.manager.session_ids(alice.curve25519)
    with bob.manager.transaction() as cur:
        with pytest.raises(DuplicateMessage):
            bob.manager.decrypt(alice.curve25519, opened.ciphertext, cur=cur)
        cur.execute("SELECT pickle FROM crypto_olm_sessions")
        pickles = cur.fetchall()
    with bob.manager.transaction() as cur:
        cur.execute("SELECT pickle FROM crypto_olm_sessions")
        assert cur.fetchall() == pickles
    assert bob.manager.session_ids(alice.curve25519) == before
