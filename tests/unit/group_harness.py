"""Clients on an in-memory Waku network under trio's MockClock, for group unit tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from boxless.client.core import Client
from boxless.client.groups import NotAMember
from boxless.client.memory_transport import MemoryNetwork
from boxless.groups.delivery import GroupTimings
from boxless.identity.account import open_account
from tests.chat_fixtures import PASS, POW, make_account

EPOCH = time.time()

FAST = GroupTimings(
    sync_check_s=1.0,
    repair_after_s=1.0,
    key_patience_s=2.0,
    retry_base_s=0.5,
    retry_max_s=5.0,
    idle_outbox_s=5.0,
    request_interval_s=2.0,
    key_request_interval_s=3.0,
)


def now() -> float:
    """Unix time on the virtual clock."""
    return EPOCH + trio.current_time()


def restart_epoch() -> None:
    """Virtual time 0 is now on the real wall clock: accounts made with the real clock
    (their device bundles are stamped with it) are never "made in the future" for the
    clients, however long after import a test runs (the suite takes over 10 minutes)."""
    global EPOCH
    EPOCH = time.time() - trio.current_time()


@asynccontextmanager
async def memory_people(
    base: Path, names: tuple[str, ...], timings: GroupTimings = FAST
) -> AsyncIterator[tuple[MemoryNetwork, list[Client]]]:
    """A running client per name, all on one MemoryNetwork with virtual time."""
    restart_epoch()
    net = MemoryNetwork(now_ns=lambda: int(now() * 1e9))
    async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
        await nursery.start(net.run)
        clients = []
        for name in names:
            make_account(base / name, name.title()).close()
            account = open_account(base / name, PASS)
            stack.callback(account.close)
            client = Client(account, net.transport(name), clock=now, pow_difficulty=POW)
            client.groups.timings = timings
            await nursery.start(client.run)
            with trio.fail_after(30):
                await client.ready.wait()
            clients.append(client)
        yield net, clients
        nursery.cancel_scope.cancel()


async def until(client: Client, pred: Callable[[], bool], timeout: float = 120) -> None:
    """Until ``pred()`` holds (virtual seconds), re-checked on each event and each second."""
    with trio.fail_after(timeout):
        async with client.events() as events:
            while not pred():
                with trio.move_on_after(1):
                    await events.receive()


def member(client: Client, gid: bytes, key: bytes) -> bool:
    """Whether ``client`` sees ``key`` as a member of ``gid`` (False before it joined)."""
    try:
        return client.groups.state(gid).is_member(key)
    except NotAMember:
        return False
