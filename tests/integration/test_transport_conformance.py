"""One conformance suite for every Transport: the in-memory network must behave as
a light client over a real service node (relay + store + filter + light push,
in this process) does, wherever the client can tell."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from boxless.client.memory_transport import MemoryNetwork
from boxless.client.transport import Incoming, LightTransport, Transport
from boxless.node.light import LightNode
from boxless.waku.message import WakuMessage, message_hash
from boxless.waku.sharding import pubsub_topic_for
from tests.chat_fixtures import start_service

CT = "/boxless/1/conformance/proto"
NAMES = ("alice", "bob", "carol", "dave", "erin")


@asynccontextmanager
async def memory_transports(_: Path) -> AsyncIterator[dict[str, Transport]]:
    net = MemoryNetwork()
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        yield {name: net.transport(name) for name in NAMES}
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def light_transports(base: Path) -> AsyncIterator[dict[str, Transport]]:
    async with trio.open_nursery() as nursery, AsyncExitStack():
        service = await start_service(nursery, base, "service")
        lights = {name: LightNode(base / name, [service.addrs()[0]]) for name in NAMES}
        for light in lights.values():
            await nursery.start(light.run)
        with trio.fail_after(20):
            for light in lights.values():
                while light.current is None:  # noqa: ASYNC110  (no event for "connected")
                    await trio.sleep(0.05)
        yield {name: LightTransport(light) for name, light in lights.items()}
        nursery.cancel_scope.cancel()


async def _next(recv: trio.MemoryReceiveChannel[Incoming]) -> Incoming:
    with trio.fail_after(10):
        return await recv.receive()


@pytest.mark.parametrize("make", [memory_transports, light_transports], ids=["memory", "light"])
async def test_transport_semantics(
    make: Callable[[Path], AbstractAsyncContextManager[dict[str, Transport]]], tmp_path: Path
) -> None:
    async with make(tmp_path) as t:
        alice, bob, carol, dave, erin = (t[n] for n in NAMES)
        await alice.subscribe([CT])
        await bob.subscribe([CT])
        async with alice.incoming() as alice_in, bob.incoming() as bob_in:
            now = time.time_ns()
            m1 = WakuMessage(b"one", CT, timestamp=now)
            sent = await alice.send(m1)
            assert sent.accepted
            assert sent.message_hash == message_hash(pubsub_topic_for(CT), m1)
            assert (await _next(bob_in)).message_hash == sent.message_hash
            # the sender, subscribed to the topic, gets its own message back
            assert (await _next(alice_in)).message_hash == sent.message_hash

            m0 = WakuMessage(b"older", CT, timestamp=now - 5 * 10**9)
            m_eph = WakuMessage(b"typing", CT, timestamp=now + 1, ephemeral=True)
            h0 = (await alice.send(m0)).message_hash
            await alice.send(m_eph)
            got = {(await _next(bob_in)).message.payload for _ in range(2)}
            assert got == {b"older", b"typing"}
            await alice.send(m1)  # the same message again: bob gets it once
            # a store's history: not the ephemeral one, by timestamp
            archived: list[Incoming] = []
            with trio.fail_after(10):
                while len(archived) < 2:  # noqa: ASYNC110  (the service archives in the background)
                    archived += [i async for i in erin.history([CT], None)]
                    await trio.sleep(0.1)
            history = [i async for i in carol.history([CT], None)]
            assert [i.message.payload for i in history] == [b"older", b"one"]
            assert [i async for i in carol.history([CT], None)] == []  # seen already
            assert [i async for i in bob.history([CT], now - 10**9)] == []  # received live
            fetched = [i async for i in dave.fetch(CT, [sent.message_hash, b"\x00" * 32])]
            assert [i.message_hash for i in fetched] == [sent.message_hash]
            with trio.move_on_after(1):
                extra = await bob_in.receive()
                pytest.fail(f"bob got one more message: {extra.message.payload!r}")
            assert h0 in {i.message_hash for i in history}
