"""TURN on a service node: coturn REST-API credentials and the config we write."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from boxless.errors import ConfigError
from boxless.node.turn import TurnConfig, load_secret, turn_credentials, write_turn_config


def test_credentials_follow_coturn_rest_api() -> None:
    user, password = turn_credentials(b"s" * 64, "ab12", now=1_000_000, ttl=3600)
    assert user == "1003600:ab12"
    expected = base64.b64encode(hmac.new(b"s" * 64, user.encode(), hashlib.sha1).digest())
    assert password == expected.decode()
    assert turn_credentials(b"t" * 64, "ab12", now=1_000_000, ttl=3600)[1] != password


def test_secret_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "turn_secret"
    first = load_secret(path)
    assert len(first) == 64 and load_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        load_secret(path)


def test_config_denies_private_peers_and_bounds_ports(tmp_path: Path) -> None:
    conf = write_turn_config(TurnConfig(tmp_path, host="192.0.2.1", port=3478))
    text = conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # it holds the secret
    assert "use-auth-secret" in text and "static-auth-secret=" in text
    assert "denied-peer-ip=127.0.0.0-127.255.255.255" in text
    assert "denied-peer-ip=10.0.0.0-10.255.255.255" in text
    assert "allow-loopback-peers" not in text and "no-cli" in text
    assert "min-port=49152" in text and "max-port=49407" in text
    loop = write_turn_config(TurnConfig(tmp_path, host="127.0.0.1", allow_loopback=True))
    assert "allow-loopback-peers" in loop.read_text()
    assert TurnConfig(tmp_path, host="0.0.0.0", port=3478).url == "turn:127.0.0.1:3478"
    assert TurnConfig(tmp_path, public_host="turn.example.org").url == "turn:turn.example.org:3478"
    with pytest.raises(ConfigError):
        TurnConfig(tmp_path, min_port=1000, max_port=2000)
    with pytest.raises(ConfigError):
        TurnConfig(tmp_path, min_port=20000, max_port=60000)
