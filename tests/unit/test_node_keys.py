"""The node key persists across restarts and is sealed when a passphrase is set."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from boxless.errors import ConfigError
from boxless.node.keys import load_or_create_node_key


def test_key_is_created_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOXLESS_NODE_PASSPHRASE", raising=False)
    path = tmp_path / "node.key"
    first = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_node_key(path)
    assert first.public_key.to_bytes() == again.public_key.to_bytes()


def test_sealed_key_needs_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = load_or_create_node_key(path, passphrase="correct horse")
    seed = first.private_key.to_bytes()[:32]
    assert seed not in path.read_bytes()
    assert load_or_create_node_key(path, "correct horse").public_key.to_bytes() == (
        first.public_key.to_bytes()
    )
    with pytest.raises(ConfigError, match="wrong"):
        load_or_create_node_key(path, "battery staple")
    with pytest.raises(ConfigError, match="encrypted"):
        load_or_create_node_key(path, None)


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"not a key")
    with pytest.raises(ConfigError, match="not a Boxless node key"):
        load_or_create_node_key(path, None)
