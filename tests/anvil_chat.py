"""Helpers of the payment and red-envelope tests against a real anvil: a raw JSON-RPC
call (cheat codes such as ``evm_mine``, ``anvil_setBalance``) and running people on
one in-memory network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx

from boxless.client.memory_transport import MemoryNetwork
from boxless.payments.devnet import Anvil
from tests.memnet_fixtures import Person, running

READ_TRIES = 5


def anvil_rpc(chain: Anvil, method: str, params: list[object]) -> object:
    """The result of one JSON-RPC call; a "latest" read that raced a new block
    (anvil --prune-history: BlockOutOfRange) is asked again, as the app's reads are."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    for _ in range(READ_TRIES):
        answer = httpx.post(chain.url, json=body, timeout=5).json()
        if "BlockOutOfRange" not in str(answer.get("error", "")):
            return answer["result"]
    raise AssertionError(f"{method}: {answer}")


@asynccontextmanager
async def running_people(
    net: MemoryNetwork, base: Path, names: tuple[str, ...]
) -> AsyncIterator[list[Person]]:
    """A running client per name (accounts made already under ``base``)."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running(net, base / n, n)) for n in names]
