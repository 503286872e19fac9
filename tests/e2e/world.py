"""One small Boxless network shared by the browser tests of a pytest session.

Starting two service nodes costs seconds and every browser test needs them, so
the ``world`` fixture (tests/e2e/conftest.py) starts them once per session.
People are made on demand, each a real `boxless up` process with its own home:
``world.person("Alice")`` (a fresh account every call, so tests do not see each
other's chats), ``world.befriend(a, b)`` (crossed contact requests, waited until
both sides list the other as a contact) and ``world.group(admin, members, name)``.

A test that restarts or kills a person owns that person; nobody else has it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.nodeproc import NodeProcess
from tests.userproc import UserProcess, init_users

SERVICE = ["--store", "--filter", "--lightpush", "--blobs"]  # blobs: attachments pin here
WAIT_S = 60.0


def wait_for(what: str, check: Any, timeout: float = WAIT_S) -> Any:
    """Poll ``check()`` every 0.1 s until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class World:
    """Two linked service nodes and the people the tests create on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.s1 = NodeProcess("s1", root / "s1", SERVICE).start()
        self.s2 = NodeProcess("s2", root / "s2", [*SERVICE, "--peer", self.s1.addr]).start()
        self.people: list[UserProcess] = []
        self._n = 0

    def persons(self, *names: str, extra_args: Iterable[str] = ()) -> list[UserProcess]:
        """New accounts (one `boxless init` each, in parallel), all up and ready."""
        homes = {}
        for name in names:
            self._n += 1
            home = self.root / f"{name.lower()}-{self._n}"
            home.mkdir()
            homes[name] = home
        init_users(homes)
        users = []
        for i, (name, home) in enumerate(homes.items()):
            peers = [self.s1.addr, self.s2.addr] if i % 2 == 0 else [self.s2.addr, self.s1.addr]
            user = UserProcess(name, home, peers, extra_args=list(extra_args)).launch()
            users.append(user)
            self.people.append(user)
        for user in users:
            user.wait_ready(180)  # a start took > 90 s at load 27 on 2 cores
        return users

    def person(self, name: str, extra_args: Iterable[str] = ()) -> UserProcess:
        return self.persons(name, extra_args=extra_args)[0]

    @staticmethod
    def key(user: UserProcess) -> str:
        return str(user.call("GET", "/me")["identity_key"])

    def befriend(self, a: UserProcess, b: UserProcess) -> None:
        """Make ``a`` and ``b`` contacts (crossed requests accept each other)."""
        a.call("POST", "/contacts", {"link": b.call("GET", "/me")["link"]})
        b.call("POST", "/contacts", {"link": a.call("GET", "/me")["link"]})
        ka, kb = self.key(a), self.key(b)
        for me, other in ((a, kb), (b, ka)):
            wait_for(
                f"{me.name} to list {other[:8]} as a contact",
                lambda me=me, other=other: any(
                    c["identity_key"] == other and c["state"] == "accepted"
                    for c in me.call("GET", "/contacts")
                ),
            )

    def group(self, admin: UserProcess, members: Iterable[UserProcess], name: str) -> str:
        """A group made by ``admin`` (already a contact of each member); returns its id
        once every member has it."""
        members = list(members)
        gid = str(admin.call("POST", "/groups", {"name": name})["id"])
        for m in members:
            admin.call("POST", f"/groups/{gid}/members", {"identity_key": self.key(m)})
        for m in members:
            wait_for(
                f"{m.name} to be in group {name!r}",
                lambda m=m: any(g["id"] == gid for g in m.call("GET", "/groups")),
            )
        return gid

    def close(self) -> None:
        for user in self.people:
            user.kill()
        for node in (self.s1, self.s2):
            node.kill()

    def logs(self, people: Iterable[UserProcess] | None = None) -> str:
        return "\n".join(
            f"--- {u.name} ({u.home.name}) ---\n{u.logs(60)}"
            for u in (self.people if people is None else people)
        )
