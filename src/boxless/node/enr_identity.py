"""The node's secp256k1 libp2p identity, which also signs its ENR.

Why secp256k1 for the libp2p key (and not a second key beside Ed25519): a
Waku ENR names its node by the ``secp256k1`` public key alone, and js-waku
turns that key into the peer id it dials (``@waku/enr``: ``ENR.create`` ->
``createPeerIdFromPublicKey``; peer exchange discovery stores the record's
``peerInfo`` under that id). Noise then checks that the remote's identity key
matches the dialled peer id, so a node whose ENR key differs from its libp2p
key can't be reached through its ENR. nwaku uses a secp256k1 libp2p key for
the same reason. py-libp2p's Noise works with secp256k1 identities (see
``tests/integration/test_peer_exchange.py``).

File format: ``b"BXS1"`` followed by exactly what :mod:`boxless.node.keys`
writes (its ``seal_seed``: plain with mode 0600, or scrypt + AES-256-GCM under
``BOXLESS_NODE_PASSPHRASE``), the sealed 32 bytes being the secp256k1 secret.
The type tag keeps an older Ed25519 key file from being read as a secp256k1
secret, which would silently change the node's peer id; such a file is
refused with a message saying what to do.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import coincurve
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.secp256k1 import create_new_key_pair

from boxless.errors import ConfigError
from boxless.node.keys import PASSPHRASE_ENV, open_seed, seal_seed

logger = logging.getLogger(__name__)

_TYPE_TAG = b"BXS1"
_ED25519_MAGICS = (b"BXK0", b"BXK1")


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
        if blob[:4] in _ED25519_MAGICS:
            raise ConfigError(
                f"{path} holds an Ed25519 node key from an older Boxless; Waku ENRs need a "
                "secp256k1 key. Move the file away to make a new one (the peer id will change)."
            )
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


def load_or_create_node_key_secp256k1(path: Path, passphrase: str | None = None) -> KeyPair:
    """Drop-in for :func:`boxless.node.keys.load_or_create_node_key` with a secp256k1 key.

    The node's peer id is then the one its ENR names. Sign the ENR with
    ``key_pair.private_key.to_bytes()`` (the 32-byte secret).
    """
    return create_new_key_pair(load_or_create_secp256k1_key(path, passphrase))
