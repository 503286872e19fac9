"""The node's persistent libp2p identity key (secp256k1).

A node keeps its key across restarts so its peer id (and so the multiaddrs
other nodes were configured with) stays the same.

Why secp256k1: a Waku ENR names its node by the ``secp256k1`` public key
alone, and js-waku turns that key into the peer id it dials (``@waku/enr``:
``ENR.create`` -> ``createPeerIdFromPublicKey``); Noise then checks the
remote's identity key against the dialled id, so a node whose ENR key differed
from its libp2p key could not be reached through its ENR. nwaku uses a
secp256k1 libp2p key for the same reason; py-libp2p's Noise works with it
(``tests/integration/test_peer_exchange.py``).

File format: ``b"BXS1"`` then the sealed 32-byte secret: sealed with a
passphrase (scrypt + AES-256-GCM) whenever ``BOXLESS_NODE_PASSPHRASE`` is set,
otherwise readable only by its owner (mode 0600). A service node's transport
key protects no user data; user identity keys never go through this module.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.secp256k1 import create_new_key_pair

from boxless.errors import ConfigError

logger = logging.getLogger(__name__)

PASSPHRASE_ENV = "BOXLESS_NODE_PASSPHRASE"
_PLAIN_MAGIC = b"BXK0"
_SEALED_MAGIC = b"BXK1"
_SEED_LEN = 32
_SALT_LEN = 16
_NONCE_LEN = 12


def _kdf(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())


def seal_seed(seed: bytes, passphrase: str | None) -> bytes:
    """Serialise ``seed`` for disk, encrypted when a passphrase is given."""
    if passphrase is None:
        return _PLAIN_MAGIC + seed
    salt = secrets.token_bytes(_SALT_LEN)
    nonce = secrets.token_bytes(_NONCE_LEN)
    box = AESGCM(_kdf(passphrase, salt)).encrypt(nonce, seed, _SEALED_MAGIC)
    return _SEALED_MAGIC + salt + nonce + box


def open_seed(blob: bytes, passphrase: str | None, path: Path) -> bytes:
    """Inverse of :func:`seal_seed`; :class:`ConfigError` says what to fix."""
    magic, body = blob[:4], blob[4:]
    if magic == _PLAIN_MAGIC and len(body) == _SEED_LEN:
        return body
    if magic == _SEALED_MAGIC and len(body) == _SALT_LEN + _NONCE_LEN + _SEED_LEN + 16:
        if passphrase is None:
            raise ConfigError(f"{path} is encrypted: set {PASSPHRASE_ENV} to its passphrase")
        salt, nonce, box = body[:_SALT_LEN], body[_SALT_LEN : _SALT_LEN + _NONCE_LEN], body[28:]
        try:
            return AESGCM(_kdf(passphrase, salt)).decrypt(nonce, box, _SEALED_MAGIC)
        except InvalidTag:
            raise ConfigError(f"wrong {PASSPHRASE_ENV} for {path}") from None
    raise ConfigError(f"{path} is not a Boxless node key; move it away to make a new one")


_TYPE_TAG = b"BXS1"


def _new_secret() -> bytes:
    """A uniformly random valid secp256k1 secret (1 <= k < n)."""
    while True:
        secret = secrets.token_bytes(32)
        try:
            coincurve.PrivateKey(secret)
        except ValueError:  # 0 or >= the group order: probability ~2**-128
            continue
        return secret


def load_or_create_secp256k1_key(path: Path, passphrase: str | None = None) -> bytes:
    """Return the 32-byte secp256k1 secret stored at ``path``, creating it on first use.

    The passphrase defaults to ``BOXLESS_NODE_PASSPHRASE``. :class:`ConfigError`
    if the file is not such a key, is sealed without a passphrase given, or the
    passphrase is wrong. The secret is never logged.
    """
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if path.exists():
        blob = path.read_bytes()
        if blob[:4] != _TYPE_TAG:
            raise ConfigError(f"{path} is not a Boxless secp256k1 key; move it away to make one")
        secret = open_seed(blob[4:], passphrase, path)
        try:
            coincurve.PrivateKey(secret)
        except ValueError:
            raise ConfigError(f"{path} does not hold a valid secp256k1 key") from None
        return secret
    secret = _new_secret()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_TYPE_TAG + seal_seed(secret, passphrase))
    logger.info(
        "created secp256k1 node key at %s (%s)", path, "sealed" if passphrase else "mode 0600"
    )
    return secret


def load_or_create_node_key(path: Path, passphrase: str | None = None) -> KeyPair:
    """The node's libp2p key pair (secp256k1), created on first use.

    The node's peer id is then the one its ENR names. Sign the ENR with
    ``key_pair.private_key.to_bytes()`` (the 32-byte secret).
    """
    return create_new_key_pair(load_or_create_secp256k1_key(path, passphrase))
