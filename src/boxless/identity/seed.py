"""The recovery phrase: 24 BIP-39 English words that deterministically give the identity key.

Derivation (version 1; changing any step changes every identity, so don't):

1. ``entropy``  = 32 random bytes (256 bits) from the OS CSPRNG.
2. ``phrase``   = BIP-39 mnemonic of ``entropy``: 24 words of the English list,
   the last carrying an 8-bit SHA-256 checksum.
3. ``seed``     = BIP-39 seed of ``phrase`` with an empty BIP-39 passphrase:
   PBKDF2-HMAC-SHA512(NFKD(phrase), "mnemonic", 2048 rounds) -> 64 bytes.
4. ``identity`` = HKDF-SHA256(ikm=seed, salt=none, info="boxless identity v1")
   -> 32 bytes, used as an Ed25519 private key (RFC 8032 seed).

Other keys derived from the same seed in the future get their own HKDF
``info`` string, so they are independent of the identity key.
"""

from __future__ import annotations

import secrets
import unicodedata

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from mnemonic import Mnemonic

from boxless.errors import UsageError

WORD_COUNT = 24
ENTROPY_BYTES = 32
IDENTITY_INFO = b"boxless identity v1"

_MNEMONIC = Mnemonic("english")
_WORDS = frozenset(_MNEMONIC.wordlist)


class InvalidPhrase(UsageError):
    """A recovery phrase is not 24 valid BIP-39 English words with a good checksum."""


def generate_phrase() -> str:
    """A new random 24-word recovery phrase (256 bits of entropy)."""
    return phrase_from_entropy(secrets.token_bytes(ENTROPY_BYTES))


def phrase_from_entropy(entropy: bytes) -> str:
    """The 24-word phrase encoding 32 bytes of ``entropy`` (for tests and vectors)."""
    if len(entropy) != ENTROPY_BYTES:
        raise UsageError(f"entropy must be {ENTROPY_BYTES} bytes, not {len(entropy)}")
    return str(_MNEMONIC.to_mnemonic(entropy))


def normalize_phrase(phrase: str) -> str:
    """Lower-case, NFKD-normalised words separated by single spaces."""
    return " ".join(unicodedata.normalize("NFKD", phrase).lower().split())


def validate_phrase(phrase: str) -> str:
    """Return the normalised phrase, or raise InvalidPhrase saying what is wrong.

    The messages name word positions, never the words: a typo is still most
    of a secret.
    """
    words = normalize_phrase(phrase).split(" ") if phrase.strip() else []
    if len(words) != WORD_COUNT:
        raise InvalidPhrase(
            f"a recovery phrase has {WORD_COUNT} words; this one has {len(words)}. "
            "Enter all of them, in order, separated by spaces"
        )
    unknown = [str(i) for i, word in enumerate(words, start=1) if word not in _WORDS]
    if unknown:
        which = "word " + unknown[0] if len(unknown) == 1 else "words " + ", ".join(unknown)
        raise InvalidPhrase(
            f"{which} of the recovery phrase {'is' if len(unknown) == 1 else 'are'} not in "
            "the BIP-39 English word list; check the spelling"
        )
    normalized = " ".join(words)
    if not _MNEMONIC.check(normalized):
        raise InvalidPhrase(
            "the recovery phrase's checksum does not match: every word is valid, but at "
            "least one is wrong or out of order"
        )
    return normalized


def phrase_to_seed(phrase: str) -> bytes:
    """The 64-byte BIP-39 seed of a valid phrase (raises InvalidPhrase otherwise)."""
    return bytes(Mnemonic.to_seed(validate_phrase(phrase), passphrase=""))


def identity_private_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 private key of the identity: HKDF-SHA256(seed, info)."""
    if len(seed) != 64:
        raise UsageError(f"a BIP-39 seed has 64 bytes, not {len(seed)}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=IDENTITY_INFO)
    return hkdf.derive(seed)
