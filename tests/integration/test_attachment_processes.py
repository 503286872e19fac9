"""Attachments end to end with real processes: two blob service nodes, Alice and
Bob running `boxless up`, `boxless send Bob --file PATH`, one service node dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chat_fixtures import init_account
from tests.nodeproc import NodeProcess
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


def test_boxless_send_file_reaches_bob_with_a_service_node_dead(tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        init_account(tmp_path / name, name.title(), PASS)
    s1 = NodeProcess("s1", tmp_path / "s1", SERVICE).start()
    s2 = NodeProcess("s2", tmp_path / "s2", [*SERVICE, "--peer", s1.addr]).start()
    alice = UserProcess("alice", tmp_path / "alice", [s2.addr, s1.addr]).launch()
    bob = UserProcess("bob", tmp_path / "bob", [s2.addr, s1.addr]).launch()
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
        s1.kill()  # one service node is gone: the other keeps the file
        data = os.urandom(3 * 1024 * 1024 + 7)
        path = tmp_path / "holiday.bin"
        path.write_bytes(data)
        cmd = [sys.executable, "-m", "boxless", "send", "Bob", "the file", "--file", str(path)]
        done = subprocess.run(
            [*cmd, "--home", str(alice.home)], env=env(), capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        mid = done.stdout.decode().split()[0]
        assert "holiday.bin" in done.stdout.decode()
        key = a_me["identity_key"]
        wait_for(
            "Bob has the message",
            lambda: any(m["id"] == mid for m in bob.call("GET", f"/contacts/{key}/messages")),
        )
        rows = wait_for(
            "Bob fetched it",
            lambda: [
                r for r in bob.call("GET", f"/messages/{mid}/attachments") if r["state"] == "ready"
            ],
        )
        assert rows[0]["name"] == "holiday.bin" and rows[0]["size"] == len(data)
        got = bob.request("GET", f"/messages/{mid}/attachments/0/content")
        assert got.status_code == 200 and got.content == data
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
