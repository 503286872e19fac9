"""`boxless up` keeps its API port across restarts (the web session cookie is per origin)."""

from __future__ import annotations

import socket
from pathlib import Path

from boxless.cli.user_commands import API_PORT_FILE, _api_port


def test_the_port_is_reused_while_free_and_replaced_when_taken(tmp_path: Path) -> None:
    first = _api_port(tmp_path, "127.0.0.1")
    assert (tmp_path / API_PORT_FILE).read_text().strip() == str(first)
    assert _api_port(tmp_path, "127.0.0.1") == first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        other = _api_port(tmp_path, "127.0.0.1")
    assert other != first
    assert (tmp_path / API_PORT_FILE).read_text().strip() == str(other)


def test_a_damaged_port_file_means_any_free_port(tmp_path: Path) -> None:
    (tmp_path / API_PORT_FILE).write_text("not a port")
    port = _api_port(tmp_path, "localhost")
    assert 0 < port < 65536
    assert (tmp_path / API_PORT_FILE).read_text().strip() == str(port)
