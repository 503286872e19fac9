"""Issue 4, end to end with real processes: two service nodes, Alice and Bob
(light clients running `boxless up`), talking through the local API.

Their accounts are made in this process, as `boxless init` makes them (that
command has its own tests): a process each would only add start-up time."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chat_fixtures import init_account
from tests.nodeproc import NodeProcess
from tests.userproc import PASS, UserProcess

SERVICE = ["--store", "--filter", "--lightpush"]
pytestmark = pytest.mark.slow


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    for name in ("alice", "bob"):
        init_account(tmp_path / name, name.title(), PASS)
    s1 = NodeProcess("s1", tmp_path / "s1", SERVICE).start()
    s2 = NodeProcess("s2", tmp_path / "s2", [*SERVICE, "--peer", s1.addr]).start()
    alice = UserProcess("alice", tmp_path / "alice", [s1.addr, s2.addr]).launch()
    bob = UserProcess("bob", tmp_path / "bob", [s2.addr, s1.addr]).launch()
    for p in (alice, bob):
        p.wait_ready()
    try:
        yield {"s1": s1, "s2": s2, "alice": alice, "bob": bob}
    finally:
        for p in (alice, bob):
            p.kill()
            print(f"--- {p.name} ---\n{p.logs()}")
        for n in (s1, s2):
            n.kill()


def messages(user: UserProcess, key: str) -> list[dict[str, Any]]:
    return list(user.call("GET", f"/contacts/{key}/messages?limit=500"))


def test_chat_survives_offline_recipient_and_a_dead_service_node(world: dict[str, Any]) -> None:
    alice: UserProcess = world["alice"]
    bob: UserProcess = world["bob"]
    a_me, b_me = alice.call("GET", "/me"), bob.call("GET", "/me")
    # They add each other by link: crossed requests accept each other.
    alice.call("POST", "/contacts", {"link": b_me["link"], "intro": "hi Bob"})
    bob.call("POST", "/contacts", {"link": a_me["link"], "intro": "hi Alice"})
    wait_for(
        "both accepted",
        lambda: (
            alice.call("GET", "/contacts")[0]["state"] == "accepted"
            and bob.call("GET", "/contacts")[0]["state"] == "accepted"
        ),
    )
    bk, ak = b_me["identity_key"], a_me["identity_key"]

    # 200 messages, both ways
    for i in range(100):
        alice.call("POST", f"/contacts/{bk}/messages", {"text": f"a{i}"})
        bob.call("POST", f"/contacts/{ak}/messages", {"text": f"b{i}"})
    wait_for(
        "all 200 delivered",
        lambda: (
            all(
                m["state"] in ("delivered", "read")
                for u, k in ((alice, bk), (bob, ak))
                for m in messages(u, k)
                if m["outgoing"]
            )
            and len(messages(bob, ak)) == 200
        ),
        120,
    )

    # Bob goes offline; Alice sends 50; a service node dies along the way.
    bob.stop()
    for i in range(25):
        alice.call("POST", f"/contacts/{bk}/messages", {"text": f"offline {i}"})
    world["s1"].kill()
    for i in range(25, 50):
        alice.call("POST", f"/contacts/{bk}/messages", {"text": f"offline {i}"})
    wait_for(
        "Alice's 50 accepted by the network",
        lambda: all(m["state"] != "queued" for m in messages(alice, bk) if m["outgoing"]),
        120,
    )
    bob.start()
    offline = [f"offline {i}" for i in range(50)]
    wait_for(
        "Bob caught up",
        lambda: (
            [m["text"] for m in messages(bob, ak) if m["text"].startswith("offline")] == offline
        ),
        120,
    )
    got = [m["text"] for m in messages(bob, ak) if not m["outgoing"]]
    assert len(got) == len(set(got)) == 150  # no duplicates, nothing lost
    wait_for(
        "Alice sees them delivered",
        lambda: all(
            m["state"] in ("delivered", "read") for m in messages(alice, bk) if m["outgoing"]
        ),
        120,
    )

    # What the service nodes archived: no plaintext, no identities, no names.
    archive = world["s2"].data_dir / "archive.db"
    blob = b"".join(
        bytes(r[0]) for r in sqlite3.connect(archive).execute("SELECT message FROM messages")
    )
    assert blob, "the archive should hold the (encrypted) traffic"
    # Short strings are looked for as protobuf would carry them (length-prefixed):
    # any 3 given bytes turn up in random ciphertext once per ~16 MB (this flaked).
    for secret in (
        b"offline 7",
        b"\x03a42",
        b"hi Bob",
        b"Alice",
        b"\x03Bob",
        bytes.fromhex(ak),
        bytes.fromhex(bk),
    ):
        assert secret not in blob
