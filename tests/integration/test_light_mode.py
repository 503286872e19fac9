"""Light mode against real service-node processes: send by light push, receive
by filter, fail over to another service peer when one dies, lose nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from boxless.errors import NetworkError
from boxless.node.light import LightMessage, LightNode
from boxless.node.store_client import StoreQuerySpec, query_all
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic_for
from tests.nodeproc import NodeProcess, run_cli

CT = "/boxless/1/light/proto"
TOPIC = pubsub_topic_for(CT, 42)
SERVICE = ["--store", "--filter", "--lightpush"]

pytestmark = pytest.mark.slow


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    a = NodeProcess("a", tmp_path / "a", SERVICE).start()
    b = NodeProcess("b", tmp_path / "b", [*SERVICE, "--peer", a.addr]).start()
    try:
        yield [a, b]
    finally:
        for n in (a, b):
            n.kill()
            print(f"--- {n.name} log ---\n{n.logs(20)}")


def _publish_relay(node: NodeProcess, text: str, count: int = 1) -> list[str]:
    out = run_cli(
        "publish",
        "--peer",
        node.addr,
        "--content-topic",
        CT,
        "--message",
        text,
        "--count",
        str(count),
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


async def _collect(
    recv: trio.MemoryReceiveChannel[LightMessage], n: int, out: list[LightMessage]
) -> None:
    with trio.fail_after(40):
        while len(out) < n:
            out.append(await recv.receive())


async def test_light_client_sends_receives_and_fails_over(
    services: list[NodeProcess], tmp_path: Path
) -> None:
    a, b = services
    light = LightNode(tmp_path / "light", [a.addr, b.addr])
    got: list[LightMessage] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(light.run)
        async with light.messages() as recv:
            await light.subscribe([CT])
            with trio.fail_after(20):
                while light.current is None:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            first = light.current

            # 1. send by light push: accepted, relayed, archived by the *other* node
            res = await light.send(WakuMessage(b"from the phone", CT, timestamp=time.time_ns()))
            assert res.accepted and res.status == 200 and res.relay_peers >= 1
            other = b if str(first) == a.info["peer_id"] else a
            await _collect(recv, 1, got)  # our own message comes back by filter
            spec = StoreQuerySpec(pubsub_topic=TOPIC, content_topics=(CT,))
            with trio.fail_after(20):
                while True:
                    stored = {r.message_hash for r in await query_all(other.addr, spec, 10)}
                    if res.message_hash in stored:
                        break
                    await trio.sleep(0.2)

            # 2. a message published on the other node arrives by filter
            await trio.to_thread.run_sync(_publish_relay, other, "hello light")
            await _collect(recv, 2, got)
            assert got[1].message.payload == b"hello light" and got[1].via == "filter"

            # 3. the current service peer dies; messages sent meanwhile still arrive
            dead = a if str(first) == a.info["peer_id"] else b
            dead.kill()
            sent = await trio.to_thread.run_sync(_publish_relay, other, "while failing over", 5)
            await _collect(recv, 7, got)
            assert light.current is not None and light.current != first
            assert light.failovers >= 1
            hashes = [m.message_hash.hex() for m in got]
            assert len(hashes) == len(set(hashes)) == 7  # nothing twice
            assert set(sent) <= set(hashes)  # nothing lost
        nursery.cancel_scope.cancel()


async def test_light_client_finds_a_second_service_peer_by_peer_exchange(
    services: list[NodeProcess], tmp_path: Path
) -> None:
    a, b = services  # the light client is told only about A; B peers with A
    light = LightNode(tmp_path / "light", [a.addr])
    got: list[LightMessage] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(light.run)
        async with light.messages() as recv:
            await light.subscribe([CT])
            with trio.fail_after(20):
                while len(light.service_peers) < 2 or light.current is None:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            assert str(light.service_peers[1].peer_id) == b.info["peer_id"]
            a.kill()
            sent = await trio.to_thread.run_sync(_publish_relay, b, "after A died", 3)
            await _collect(recv, 3, got)
            assert str(light.current) == b.info["peer_id"]
            assert {m.message_hash.hex() for m in got} == set(sent)
        nursery.cancel_scope.cancel()


async def test_send_with_no_reachable_service_peer_says_so(tmp_path: Path) -> None:
    dead = "/ip4/127.0.0.1/tcp/9/p2p/16Uiu2HAmQbM8BRBvZaXJyQXaymYFt6sLFA7bKpPAsDsxUhPaTMRe"
    light = LightNode(tmp_path / "light", [dead])
    async with trio.open_nursery() as nursery:
        await nursery.start(light.run)
        with pytest.raises(NetworkError, match="no service peer took the message"):
            await light.send(WakuMessage(b"x", CT, timestamp=time.time_ns()))
        nursery.cancel_scope.cancel()


async def test_light_client_learns_of_a_service_peer_that_arrives_later(tmp_path: Path) -> None:
    """The peer we asked on connecting knew nobody yet; we ask again later."""
    a = NodeProcess("a", tmp_path / "a", SERVICE).start()
    b: NodeProcess | None = None
    try:
        light = LightNode(tmp_path / "light", [a.addr])
        async with trio.open_nursery() as nursery:
            await nursery.start(light.run)
            await light.subscribe([CT])
            with trio.fail_after(20):
                while light.current is None:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            assert len(light.service_peers) == 1  # A knows nobody else yet
            b = NodeProcess("b", tmp_path / "b", [*SERVICE, "--peer", a.addr]).start()
            with trio.fail_after(30):
                while len(light.service_peers) < 2:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            assert str(light.service_peers[1].peer_id) == b.info["peer_id"]
            nursery.cancel_scope.cancel()
    finally:
        for n in (a, b):
            if n is not None:
                n.kill()
