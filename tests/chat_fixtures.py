"""Helpers for client-level tests: accounts, service nodes, running clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

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
