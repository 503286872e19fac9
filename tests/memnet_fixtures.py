"""Real clients over an in-memory network on virtual time (no nodes, no sockets).

A test asks for the ``autojump_clock`` fixture (pytest-trio: trio's
``MockClock(autojump_threshold=0)``), so every timer of the client runs in
virtual time, and opens :func:`memnet`. Each :class:`Person` is a real
:class:`~boxless.client.core.Client` with a real account (SQLCipher database
in :func:`homes`, a test-speed KDF) over a
:class:`~boxless.client.memory_transport.MemoryTransport`, with the wall clock
``BASE + trio.current_time()``. While a worker thread runs (the proof of work
of a contact request) the autojump clock may run ahead to the next timer, as
a slow machine would; the tests wait for outcomes, not for instants.

The client reads only the clock it is given (since the direct channel stamps
Waku messages with it); :func:`virtual_wall_clock` is a safety net from before
that, for a client module that would read ``time`` itself.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
import types
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from boxless.chat.requests import ContactEvent
from boxless.client import store as db
from boxless.client.core import Client
from boxless.client.memory_transport import MemoryNetwork, MemoryTransport
from boxless.identity.account import LocalAccount, create_account, open_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.storage.userdb import KdfParams
from tests.orphans import dead_owners

BASE = 1_800_000_000.0
"""Unix time at virtual time 0."""
FAST_KDF = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
PASS = "correct horse battery staple"
POW = 4  # bits: the proof is checked for real, but costs ~30 µs
WAIT = 3600.0  # virtual seconds: a wait that long means nothing more will happen

# Modules that call time.time()/time.time_ns() themselves (see the module docstring).
_CLOCKED_MODULES = (
    "boxless.client.core",
    "boxless.client.groups",
    "boxless.client.channel",
    "boxless.client.conversations",
    "boxless.client.contacts",
)


def wall() -> float:
    """The virtual wall clock (Unix seconds)."""
    return BASE + trio.current_time()


def wall_ns() -> int:
    return int(wall() * 1e9)


@pytest.fixture
def virtual_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the client modules' own ``time`` module, if one imports it, at the
    virtual wall clock (none reads it since the direct channel landed)."""
    shim = types.SimpleNamespace(time=wall, time_ns=wall_ns, monotonic=time.monotonic)
    for name in _CLOCKED_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "time", None) is time:
            monkeypatch.setattr(module, "time", shim)


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[Path]:
    """Where the accounts of one test live: in RAM (``/dev/shm``) when there is
    one, else ``tmp_path``. The same SQLCipher code runs; only its fsyncs stop
    costing real time (on a busy shared disk they were half of each test).
    Durability is tested elsewhere, on real disks."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    _sweep_dead(shm)
    path = Path(tempfile.mkdtemp(prefix=f"{SHM_PREFIX}{os.getpid()}-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


SHM_PREFIX = "boxless-memnet-"


def _sweep_dead(shm: Path) -> None:
    """Remove the homes of test processes that died before their teardown (a worker
    killed by a timeout left its accounts in RAM): each name carries its pid."""
    for old in dead_owners(shm, SHM_PREFIX):
        shutil.rmtree(old, ignore_errors=True)


def make_account(home: Path, name: str) -> None:
    """A new account called ``name`` in ``home``, made at virtual time 0."""
    identity = Identity.from_phrase(generate_phrase())
    profile = Profile(display_name=name, updated_at=int(BASE))
    create_account(home, PASS, identity, profile, BASE, kdf=FAST_KDF).close()


@dataclass
class Person:
    """One running client and what it runs on."""

    name: str
    home: Path
    account: LocalAccount
    transport: MemoryTransport
    client: Client

    @property
    def me(self) -> bytes:
        return self.client.me

    def link(self) -> str:
        return self.account.contact_code(wall()).link

    def contact(self, other: Person) -> db.ContactRow | None:
        return next((c for c in self.client.contacts() if c.identity_key == other.me), None)

    def state(self, other: Person) -> str | None:
        c = self.contact(other)
        return None if c is None else c.state

    def texts(self, other: Person) -> list[str]:
        return [m.text for m in self.client.messages(other.me, limit=10_000)]

    def message(self, message_id: bytes) -> db.MessageRow:
        with self.client.db.transaction() as cur:
            row = db.get_message(cur, message_id)
        assert row is not None
        return row


@asynccontextmanager
async def running(net: MemoryNetwork, home: Path, name: str) -> AsyncIterator[Person]:
    """Open the account in ``home`` and run its client over ``net`` until the
    context ends (then the client stops, its transport leaves, the DB closes)."""
    account = open_account(home, PASS)
    transport = net.transport(name)
    try:
        async with trio.open_nursery() as nursery:
            client = Client(account, transport, clock=wall, pow_difficulty=POW)
            await nursery.start(client.run)
            with trio.fail_after(WAIT):
                await client.ready.wait()
            yield Person(name, home, account, transport, client)
            nursery.cancel_scope.cancel()
    finally:
        transport.close()
        account.close()


@asynccontextmanager
async def memnet(
    base: Path, names: tuple[str, ...], **network: object
) -> AsyncIterator[tuple[MemoryNetwork, list[Person]]]:
    """A running network and a running client for each of ``names``."""
    net = MemoryNetwork(now_ns=wall_ns, **network)  # type: ignore[arg-type]
    for name in names:
        make_account(base / name, name.title())
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        await nursery.start(net.run)
        people = [
            await stack.enter_async_context(running(net, base / name, name)) for name in names
        ]
        yield net, people
        await stack.aclose()
        nursery.cancel_scope.cancel()


async def wait_for(person: Person, pred: Callable[[], bool], timeout: float = WAIT) -> None:
    """Until ``pred()`` holds, re-checked on each of the client's events (virtual
    ``timeout``)."""
    with trio.fail_after(timeout):
        async with person.client.events() as events:
            while not pred():
                await events.receive()


async def settle(seconds: float = 1.0) -> None:
    """Let virtual time pass (every task runs until it waits on a timer)."""
    await trio.sleep(seconds)


async def befriend(a: Person, b: Person) -> None:
    """``a`` adds ``b`` by link and ``b`` accepts: accepted contacts on both sides."""
    await a.client.add_contact(b.link())
    await wait_for(b, lambda: b.state(a) == "request_received")
    await b.client.respond(a.me, ContactEvent.ACCEPT)
    await wait_for(a, lambda: a.state(b) == "accepted")
