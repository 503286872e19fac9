"""Issue 15's "Show" with real processes: Alice on two devices (A1, A2), Bob, Carol.

All `boxless up` light clients of the session's world; A2 (and later A3) is made
by `boxless link` and linked through A1's API. A2, linked mid-conversation, gets
the history and the group; Bob's 1:1 and group messages arrive on both of
Alice's devices in the same order; Alice's text sent on A1 shows on A2 as hers;
read on A2 clears unread on A1 (and a pin, a mute and a group read made on A2
reach A1); revoked, A2 wipes its keys and stops; A3 linked after that works.
15 + 15 messages in the suite; the issue's 200 + 200 with
BOXLESS_DEVICE_TEST_MESSAGES=200 (run by hand: docs/devices.md has the figure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.e2e.world import wait_for
from tests.userproc import UserProcess, env

pytestmark = pytest.mark.slow
# of each: Bob's 1:1 messages and his group messages
N = int(os.environ.get("BOXLESS_DEVICE_TEST_MESSAGES", "15"))


def _link(world: Any, alice: UserProcess, name: str) -> UserProcess:
    home = world.root / f"{name.lower()}-{time.monotonic_ns()}"
    home.mkdir()
    cmd = [sys.executable, "-m", "boxless", "link", "--home", str(home), "--name", name]
    for addr in (world.s1.addr, world.s2.addr):
        cmd += ["--service-peer", addr]
    proc = subprocess.Popen(
        cmd, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    link = ""
    for line in proc.stdout:
        if line.startswith("Link:"):
            link = line.split(":", 1)[1].strip()
            break
    try:
        assert link, "boxless link printed no link"
        assert alice.request("POST", "/devices/link", {"link": link}).status_code == 201
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
    user = UserProcess(name, home, [world.s2.addr, world.s1.addr]).launch()
    world.people.append(user)
    return user.wait_ready(180)


def _texts(user: UserProcess, path: str) -> list[str]:
    return [m["text"] for m in user.call("GET", path + "?limit=500")]


def test_alice_on_two_devices_bob_carol_and_a_group(world: Any) -> None:
    alice, bob, carol = world.persons("Alice", "Bob", "Carol")
    world.befriend(alice, bob)
    world.befriend(alice, carol)
    gid = world.group(alice, [bob, carol], "Three")
    ka, kb = world.key(alice), world.key(bob)
    with_bob, group = f"/contacts/{kb}/messages", f"/groups/{gid}/messages"
    bob.call("POST", f"/contacts/{ka}/messages", {"text": "before the link"})
    bob.call("POST", group, {"text": "group before the link"})
    wait_for(
        "Alice to have both",
        lambda: (
            "before the link" in _texts(alice, with_bob)
            and "group before the link" in _texts(alice, group)
        ),
    )

    a2 = _link(world, alice, "A2")
    assert world.key(a2) == ka
    wait_for(
        "A2 to have the history and the group",
        lambda: (
            "before the link" in _texts(a2, with_bob)
            and "group before the link" in _texts(a2, group)
        ),
    )
    # A2 says hello: Bob reads it as Alice's, and learns her second device
    a2.call("POST", f"/contacts/{kb}/messages", {"text": "hi from A2"})
    wait_for("Bob to read A2", lambda: "hi from A2" in _texts(bob, f"/contacts/{ka}/messages"))

    sent = [f"bob {i}" for i in range(N)]
    for text in sent:
        bob.call("POST", f"/contacts/{ka}/messages", {"text": text})
        bob.call("POST", group, {"text": "g " + text})
    for device in (alice, a2):
        wait_for(  # all of them: the last one in does not mean every earlier one is
            "Bob's messages on both devices",
            lambda d=device: (
                set(sent) <= set(_texts(d, with_bob))
                and {"g " + t for t in sent} <= set(_texts(d, group))
            ),
        )
        assert [t for t in _texts(device, with_bob) if t.startswith("bob ")] == sent
        assert [t for t in _texts(device, group) if t.startswith("g bob ")] == [
            "g " + t for t in sent
        ]

    # Alice's text sent on A1 shows on A2 as sent by her
    alice.call("POST", with_bob, {"text": "from A1"})
    wait_for(
        "A1's text on A2",
        lambda: any(m["text"] == "from A1" and m["outgoing"] for m in a2.call("GET", with_bob)),
    )

    # read on A2 clears unread on A1
    def unread_on_a1() -> int:
        return sum(
            1
            for m in alice.call("GET", with_bob + "?limit=500")
            if not m["outgoing"] and m["state"] != "read"
        )

    assert unread_on_a1() > 0
    a2.call("POST", f"/contacts/{kb}/read")
    wait_for("unread cleared on A1", lambda: unread_on_a1() == 0)

    # own-device sync (client/ownsync.py): a chat pinned and muted on A2 is on A1; the
    # group read on A2 clears the group's unread count on A1
    a2.call("PUT", f"/chats/contact:{kb}/settings", {"pinned": True, "muted": True})
    wait_for(
        "A2's pin and mute on A1",
        lambda: (
            {"pinned": True, "muted": True}.items()
            <= alice.call("GET", "/chats/settings").get(f"contact:{kb}", {}).items()
        ),
    )
    assert alice.call("GET", f"/groups/{gid}")["unread"] > 0
    newest = max(m["seq"] for m in a2.call("GET", group + "?limit=500"))
    a2.call("POST", f"/groups/{gid}/read", {"seq": newest})
    wait_for("the group read on A1", lambda: alice.call("GET", f"/groups/{gid}")["unread"] == 0)

    # revoke A2: it wipes its keys and stops
    a2_key = next(
        d["device"] for d in alice.call("GET", "/devices")["devices"] if d["name"] == "A2"
    )
    alice.call("DELETE", f"/devices/{a2_key}")
    assert a2.proc is not None
    wait_for("the revoked A2 to stop", lambda: a2.proc.poll() is not None)  # type: ignore[union-attr]

    # a new device A3 linked after that works
    a3 = _link(world, alice, "A3")
    wait_for("A3 to have the history", lambda: "bob 0" in _texts(a3, with_bob))
    a3.call("POST", f"/contacts/{kb}/messages", {"text": "hi from A3"})
    wait_for("Bob to read A3", lambda: "hi from A3" in _texts(bob, f"/contacts/{ka}/messages"))
    bob.call("POST", f"/contacts/{ka}/messages", {"text": "hello A3"})
    wait_for("A3 to get Bob's next message", lambda: "hello A3" in _texts(a3, with_bob))
