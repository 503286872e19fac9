"""Attachments end to end with real processes: two blob service nodes, Alice and
Bob running `boxless up`, `boxless send Bob --file PATH` (and an album), a service
node killed mid-upload and re-pinned later, Bob offline during the send."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chat_fixtures import init_account
from tests.nodeproc import NodeProcess, free_port
from tests.userproc import PASS, UserProcess, env

SERVICE = ["--store", "--filter", "--lightpush", "--blobs"]
pytestmark = pytest.mark.slow


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


def _blocks(node: NodeProcess) -> int:
    root = node.data_dir / "blobs" / "blocks"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((400, 300), 30 + seed).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


def test_send_survives_a_service_node_dying_mid_upload_and_bob_offline(tmp_path: Path) -> None:
    """A node killed while it pins: the send completes through the other; the descriptor
    names only it; Alice re-pins on the node when it is back; Bob, offline during the
    send, gets the messages, then fetches from the re-pinned node once the first is gone."""
    for name in ("alice", "bob"):
        init_account(tmp_path / name, name.title(), PASS)
    port = free_port()
    s1 = NodeProcess("s1", tmp_path / "s1", [*SERVICE, "--listen", f"/ip4/127.0.0.1/tcp/{port}"])
    s1.start()
    s1_addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{s1.info['peer_id']}"
    s2 = NodeProcess("s2", tmp_path / "s2", [*SERVICE, "--peer", s1_addr]).start()
    peers = [s1_addr, s2.addr]
    alice = UserProcess("alice", tmp_path / "alice", peers).launch()
    bob = UserProcess("bob", tmp_path / "bob", peers).launch()
    try:
        for p in (alice, bob):
            p.wait_ready()
        a_me, b_me = alice.call("GET", "/me"), bob.call("GET", "/me")
        alice.call("POST", "/contacts", {"link": b_me["link"]})
        bob.call("POST", "/contacts", {"link": a_me["link"]})
        wait_for(
            "both accepted",
            lambda: (
                alice.call("GET", "/contacts")[0]["state"] == "accepted"
                and bob.call("GET", "/contacts")[0]["state"] == "accepted"
            ),
        )
        bob.call("PUT", "/attachments/settings", {"auto_download_bytes": 0})
        bob.stop()  # offline during the send

        data = os.urandom(16 * 1024 * 1024 + 7)
        path = tmp_path / "holiday.bin"
        path.write_bytes(data)
        cmd = [sys.executable, "-m", "boxless", "send", "Bob", "the file", "--file", str(path)]
        sending = subprocess.Popen(
            [*cmd, "--home", str(alice.home)],
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for("s1 pinning (fetching blocks)", lambda: _blocks(s1) > 4, 120)
        s1.kill()  # dies in the middle of the pin
        out, err = sending.communicate(timeout=120)
        assert sending.returncode == 0, err.decode(errors="replace")
        mid = out.decode().split()[0]
        assert "holiday.bin" in out.decode()
        sent = alice.call("GET", f"/messages/{mid}/attachments")
        assert sent[0]["state"] == "ready"
        # an album through the CLI while s1 is still down
        for i in range(2):
            (tmp_path / f"p{i}.jpg").write_bytes(_jpeg(i))
        album = subprocess.run(
            [*cmd[:5], "two photos", "--file", str(tmp_path / "p0.jpg"),
             "--file", str(tmp_path / "p1.jpg"), "--home", str(alice.home)],
            env=env(), capture_output=True, timeout=120,
        )  # fmt: skip
        assert album.returncode == 0, album.stderr.decode(errors="replace")
        album_id = album.stdout.decode().split()[0]
        assert "p0.jpg, p1.jpg" in album.stdout.decode()

        bob.start()
        key = a_me["identity_key"]
        for m in (mid, album_id):
            wait_for(
                "Bob has the message",
                lambda m=m: any(x["id"] == m for x in bob.call("GET", f"/contacts/{key}/messages")),
            )
        s1.start()  # back (same key, same port): Alice re-pins both messages' files there
        wait_for(
            "Alice re-pinned on s1",
            lambda: alice.logs(400).count("re-pinned a sent file") >= 3,
            90,
        )
        rows = bob.call("GET", f"/messages/{mid}/attachments")
        assert rows[0]["state"] == "remote" and rows[0]["size"] == len(data)
        s2.kill()  # the only node the descriptor names is gone now
        got = bob.request("GET", f"/messages/{mid}/attachments/0/content")
        assert got.status_code == 200 and got.content == data
        rows = bob.call("GET", f"/messages/{album_id}/attachments")
        assert [r["name"] for r in rows] == ["p0.jpg", "p1.jpg"]
        assert rows[1]["kind"] == "image" and rows[1]["blurhash"]
        got = bob.request("GET", f"/messages/{album_id}/attachments/1/content")
        assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"
        # a missing file is a clear error
        bad = subprocess.run(
            [*cmd[:-1], str(tmp_path / "nope"), "--home", str(alice.home)],
            env=env(),
            capture_output=True,
            timeout=60,
        )
        assert bad.returncode != 0 and b"cannot read" in bad.stderr + bad.stdout
    finally:
        for p in (alice, bob):
            p.kill()
            print(f"--- {p.name} ---\n{p.logs()}")
        for n in (s1, s2):
            n.kill()
