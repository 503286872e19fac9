"""The node's persistent libp2p identity key.

A node keeps its Ed25519 key across restarts so its peer id (and so the
multiaddrs other nodes were configured with) stays the same. The key file holds
the 32-byte seed, either sealed with a passphrase (scrypt + AES-256-GCM, used
whenever ``BOXLESS_NODE_PASSPHRASE`` is set) or, for unattended service nodes
without one, readable only by the owner (mode 0600). A service node's transport
key protects no user data; user identity keys never go through this module.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair

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


def load_or_create_node_key(path: Path, passphrase: str | None = None) -> KeyPair:
    """Return the node key stored at ``path``, creating it (0600) on first use."""
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if path.exists():
        seed = open_seed(path.read_bytes(), passphrase, path)
    else:
        seed = secrets.token_bytes(_SEED_LEN)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(seal_seed(seed, passphrase))
        logger.info("created node key at %s (%s)", path, "sealed" if passphrase else "mode 0600")
    return create_new_key_pair(seed)
