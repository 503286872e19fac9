"""Sealed envelope v2 on the wire, pinned to its specification (crypto/pairwise.py's
docstring), independently of the implementation: an envelope built here from the
formulas opens with PairwiseSealer, and one PairwiseSealer sealed opens here. So a
faster implementation (issue 9: the per-message HMAC from a keyed copy) can never
change what old peers send or can read."""

from __future__ import annotations

import hmac
import secrets

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from boxless.crypto import OlmCiphertext, SealingKeyPair
from boxless.crypto.pairwise import PairwiseSealer
from boxless.crypto.sealed import content_bytes, pad, parse_content, unpad
from boxless.wire import envelope_pb2

TOPIC = "/boxless/1/chat-" + "ef" * 16 + "/proto"


def direction_key(mine: SealingKeyPair, peer: bytes, sender: bytes, recipient: bytes) -> bytes:
    shared = mine.exchange(X25519PublicKey.from_public_bytes(peer))
    info = b"boxless sealed sender v2" + sender + recipient
    return HKDF(SHA256(), 32, salt=None, info=info).derive(shared)


def test_v2_envelopes_match_the_specification_both_ways() -> None:
    alice, bob = SealingKeyPair.generate(), SealingKeyPair.generate()
    a_pub, b_pub = alice.public_bytes, bob.public_bytes
    a_ident, a_dev, b_dev = (secrets.token_bytes(32) for _ in range(3))
    aad = b"\x02" + TOPIC.encode()
    for n in range(20):
        body = secrets.token_bytes(1 + 37 * n)
        ct = OlmCiphertext(1, body, "sid")
        # by hand, as an old peer (or another implementation) seals it
        seed = secrets.token_bytes(16)
        key = hmac.digest(direction_key(alice, b_pub, a_pub, b_pub), seed, "sha256")
        sealed = ChaCha20Poly1305(key).encrypt(
            bytes(12), pad(content_bytes(a_ident, a_dev, ct)), aad
        )
        wire = envelope_pb2.SealedEnvelope(version=2, ciphertext=seed + sealed).SerializeToString()
        opened = PairwiseSealer(bob).open(a_dev, a_pub, TOPIC, wire)
        assert opened.ciphertext.body == body and opened.sender_identity_key == a_ident

        # PairwiseSealer's envelope, opened by hand
        out = PairwiseSealer(alice).seal(
            b_dev, b_pub, TOPIC, sender_identity_key=a_ident, sender_device_key=a_dev, ciphertext=ct
        )
        env = envelope_pb2.SealedEnvelope()
        env.ParseFromString(out)
        seed, sealed = env.ciphertext[:16], env.ciphertext[16:]
        key = hmac.digest(direction_key(bob, a_pub, a_pub, b_pub), seed, "sha256")
        padded = ChaCha20Poly1305(key).decrypt(bytes(12), sealed, aad)
        assert parse_content(unpad(padded)).ciphertext.body == body
