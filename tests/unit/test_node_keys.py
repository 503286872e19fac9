"""The secp256k1 node key: persisted, sealed, and the peer id its ENR names."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from libp2p.peer.id import ID

from boxless.errors import ConfigError
from boxless.node.keys import load_or_create_node_key, load_or_create_secp256k1_key
from boxless.waku.enr import Enr


def test_key_is_created_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOXLESS_NODE_PASSPHRASE", raising=False)
    path = tmp_path / "node.key"
    secret = load_or_create_secp256k1_key(path)
    assert len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secp256k1_key(path) == secret


def test_sealed_key_needs_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    secret = load_or_create_secp256k1_key(path, "correct horse")
    assert secret not in path.read_bytes()
    assert load_or_create_secp256k1_key(path, "correct horse") == secret
    with pytest.raises(ConfigError, match="wrong"):
        load_or_create_secp256k1_key(path, "battery staple")
    with pytest.raises(ConfigError, match="encrypted"):
        load_or_create_secp256k1_key(path, None)


def test_foreign_key_file_is_refused_not_reinterpreted(tmp_path: Path) -> None:
    (tmp_path / "other").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a Boxless secp256k1 key"):
        load_or_create_secp256k1_key(tmp_path / "other", None)


def test_node_key_peer_id_is_the_enr_peer_id(tmp_path: Path) -> None:
    key_pair = load_or_create_node_key(tmp_path / "node.key", passphrase=None)
    enr = Enr.build(key_pair.private_key.to_bytes(), 1, ip="127.0.0.1", tcp=60000)
    assert enr.peer_id() == ID.from_pubkey(key_pair.public_key)
    assert str(enr.peer_id()).startswith("16Uiu2")
