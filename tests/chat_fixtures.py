"""Helpers for client-level tests: accounts, service nodes, running clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from boxless.chat.requests import ContactEvent
from boxless.client.core import Client
from boxless.client.transport import LightTransport
from boxless.identity.account import LocalAccount, create_account, open_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.node.config import NodeConfig
from boxless.node.light import LightNode
from boxless.node.service import WakuNode
from boxless.storage.userdb import KdfParams

FAST_KDF = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
PASS = "correct horse battery staple"
POW = 8  # bits: fast in tests; production uses 20


def make_account(home: Path, name: str) -> LocalAccount:
    identity = Identity.from_phrase(generate_phrase())
    return create_account(
        home, PASS, identity, Profile(display_name=name), time.time(), kdf=FAST_KDF
    )


def init_account(home: Path, name: str, passphrase: str = PASS) -> None:
    """The account `boxless init --home HOME --name NAME --yes` makes (a new
    identity, the production KDF), made in this process: for tests that run
    `boxless up` on it, without an interpreter start-up (~1.5 s) per account. The
    command itself is tested by test_identity_cli.py and test_api.py."""
    now = time.time()
    identity = Identity.from_phrase(generate_phrase())
    profile = Profile(display_name=name, updated_at=int(now))
    create_account(home, passphrase, identity, profile, now).close()


async def start_service(
    nursery: trio.Nursery, base: Path, name: str, peers: tuple[str, ...] = ()
) -> WakuNode:
    config = NodeConfig(
        base / name,
        ("/ip4/127.0.0.1/tcp/0",),
        peers=peers,
        store=True,
        filter=True,
        lightpush=True,
        store_resume=bool(peers),
    )
    node: WakuNode = await nursery.start(WakuNode(config).run)
    return node


@asynccontextmanager
async def running_client(
    home: Path, service_addrs: list[str], light_node: type[LightNode] = LightNode
) -> AsyncIterator[Client]:
    """Open the account in ``home`` and run its client over a light node."""
    account = open_account(home, PASS)
    try:
        async with trio.open_nursery() as nursery:
            light = light_node(home / "light", service_addrs)
            await nursery.start(light.run)
            client = Client(account, LightTransport(light), pow_difficulty=POW)
            await nursery.start(client.run)
            with trio.fail_after(30):
                await client.ready.wait()
            yield client
            nursery.cancel_scope.cancel()
    finally:
        account.close()


async def wait_for(client: Client, pred: Callable[[], bool], timeout: float = 60) -> None:
    """Until ``pred()`` holds, re-checked on each of the client's events."""
    with trio.fail_after(timeout):
        async with client.events() as events:
            while not pred():
                await events.receive()


async def befriend(a: Client, b: Client) -> None:
    """``a`` adds ``b`` by link and ``b`` accepts: accepted contacts on both sides."""
    await a.add_contact(b.account.contact_code(time.time()).link)
    await wait_for(b, lambda: any(c.identity_key == a.me for c in b.contacts()))
    await b.respond(a.me, ContactEvent.ACCEPT)
    await wait_for(
        a, lambda: any(c.identity_key == b.me and c.state == "accepted" for c in a.contacts())
    )


@asynccontextmanager
async def people(
    base: Path, names: tuple[str, ...], light_nodes: dict[str, type[LightNode]] | None = None
) -> AsyncIterator[list[Client]]:
    """Accounts named ``names`` (title-cased display names), two peered in-process
    service nodes, and a running client each, alternating which node it prefers."""
    for name in names:
        make_account(base / name, name.title()).close()
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        s1 = await start_service(nursery, base, "s1")
        s2 = await start_service(nursery, base, "s2", peers=(s1.addrs()[0],))
        a1, a2 = s1.addrs()[0], s2.addrs()[0]
        clients = []
        for i, name in enumerate(names):
            addrs = [a1, a2] if i % 2 == 0 else [a2, a1]
            light = (light_nodes or {}).get(name, LightNode)
            clients.append(
                await stack.enter_async_context(running_client(base / name, addrs, light))
            )
        yield clients
        nursery.cancel_scope.cancel()
