"""Waku relay over real py-libp2p hosts (Noise, yamux/mplex) on loopback TCP.

Waits are bounded with ``trio.fail_after``. Mesh formation has no event in
py-libp2p for "has any mesh peer", so ``wait_until`` polls with a deadline.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import multiaddr
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.io.exceptions import MessageTooLarge
from libp2p.peer.peerinfo import PeerInfo
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes

from boxless.node.host import build_host
from boxless.node.relay import WAKU_RELAY_PROTOCOL, RelayMessage, WakuRelay
from boxless.node.relay_gossipsub import FrameDecoder

TOPIC = "/waku/2/rs/1/0"
LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Bounded polling, for state py-libp2p offers no event for."""
    with trio.fail_after(timeout):
        while not cond():  # noqa: ASYNC110 - no event to wait on; deadline-bounded
            await trio.sleep(0.02)


@asynccontextmanager
async def running_host() -> AsyncIterator[IHost]:
    host = build_host(create_new_key_pair(), LOOPBACK)
    async with host.run(LOOPBACK):
        yield host


@asynccontextmanager
async def relays(n: int, **opts: Any) -> AsyncIterator[list[WakuRelay]]:
    async with AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        out = []
        for _ in range(n):
            host = await stack.enter_async_context(running_host())
            relay = WakuRelay(host, heartbeat_interval=0.2, **opts)
            await nursery.start(relay.run)
            out.append(relay)
        yield out


async def connect(a: WakuRelay | IHost, b: WakuRelay | IHost) -> None:
    ha = a.host if isinstance(a, WakuRelay) else a
    hb = b.host if isinstance(b, WakuRelay) else b
    await ha.connect(PeerInfo(hb.get_id(), hb.get_addrs()))


async def receive(
    ch: trio.MemoryReceiveChannel[RelayMessage], timeout: float = 5.0
) -> RelayMessage:
    with trio.fail_after(timeout):
        return await ch.receive()


async def line(nodes: list[WakuRelay]) -> list[trio.MemoryReceiveChannel[RelayMessage]]:
    subs = [await r.subscribe(TOPIC) for r in nodes]
    for a, b in zip(nodes, nodes[1:], strict=False):
        await connect(a, b)
    for i, r in enumerate(nodes):
        want = 2 if 0 < i < len(nodes) - 1 else 1
        await wait_until(lambda r=r, want=want: len(r.mesh_peers(TOPIC)) >= want)
    return subs


class RawPeer:
    """A hand-driven relay peer: sees raw RPCs and sends whatever it is told to."""

    def __init__(self, host: IHost) -> None:
        self.host = host
        self.received: list[rpc_pb2.Message] = []
        host.set_stream_handler(WAKU_RELAY_PROTOCOL, self._read)

    async def _read(self, stream: INetStream) -> None:
        while True:
            rpc = rpc_pb2.RPC.FromString(await read_varint_prefixed_bytes(stream))
            self.received.extend(rpc.publish)

    async def open(self, relay: WakuRelay) -> INetStream:
        stream = await self.host.new_stream(relay.host.get_id(), [WAKU_RELAY_PROTOCOL])
        hello = rpc_pb2.RPC(subscriptions=[rpc_pb2.RPC.SubOpts(subscribe=True, topicid=TOPIC)])
        await stream.write(encode_varint_prefixed(hello.SerializeToString()))
        return stream


async def test_two_peers_exchange_unsigned_messages() -> None:
    async with relays(2) as (a, b), running_host() as raw_host:
        sub_a, sub_b = await line([a, b])
        assert await a.publish(TOPIC, b"hello") == 1
        got = await receive(sub_b)
        assert got == RelayMessage(
            TOPIC, b"hello", hashlib.sha256(b"hello").digest(), a.host.get_id()
        )
        assert (await receive(sub_a)).data == b"hello"  # own subscribers see it too
        # Inspect what is on the wire: a raw peer joins a's mesh and reads RPCs.
        raw = RawPeer(raw_host)
        await connect(raw_host, a)
        await raw.open(a)
        await wait_until(lambda: raw_host.get_id() in a.mesh_peers(TOPIC))
        await a.publish(TOPIC, b"inspect me")
        await wait_until(lambda: b"inspect me" in [m.data for m in raw.received])
        for msg in raw.received:  # (py-libp2p also replays recent ones to a new peer)
            assert list(msg.topicIDs) == [TOPIC]
            for field in ("from_id", "seqno", "signature", "key"):
                assert not msg.HasField(field), field


async def test_signed_message_from_noncompliant_peer_is_rejected() -> None:
    async with relays(1) as (a,), running_host() as raw_host:
        sub = await a.subscribe(TOPIC)
        raw = RawPeer(raw_host)
        await connect(raw_host, a)
        stream = await raw.open(a)
        await wait_until(lambda: raw_host.get_id() in a.topic_peers(TOPIC))
        signed = rpc_pb2.Message(
            data=b"signed", topicIDs=[TOPIC], from_id=raw_host.get_id().to_bytes(),
            seqno=(1).to_bytes(8, "big"), signature=b"\x01" * 64, key=b"\x02" * 36,
        )  # fmt: skip
        seqno_only = rpc_pb2.Message(data=b"seqno", topicIDs=[TOPIC], seqno=b"\x00" * 8)
        plain = rpc_pb2.Message(data=b"plain", topicIDs=[TOPIC])
        rpc = rpc_pb2.RPC(publish=[signed, seqno_only, plain])
        await stream.write(encode_varint_prefixed(rpc.SerializeToString()))
        assert (await receive(sub)).data == b"plain"  # processed in order: rejects came first
        assert a.metrics.rejected_signed == 2
        assert a.score(raw_host.get_id(), TOPIC) < 0


async def test_five_peer_line_forms_mesh_and_delivers_end_to_end() -> None:
    async with relays(5) as nodes:
        subs = await line(nodes)
        assert all(r.mesh_peers(TOPIC) for r in nodes)
        await nodes[0].publish(TOPIC, b"across the line")
        for sub in subs:
            assert (await receive(sub)).data == b"across the line"


async def test_burst_of_1000_reaches_far_end_and_dedup_is_content_addressed() -> None:
    async with relays(3) as nodes:
        subs = await line(nodes)
        n = 1000
        got: list[set[bytes]] = [set(), set(), set()]

        async def drain(i: int) -> None:
            async for m in subs[i]:
                got[i].add(m.data)
                if len(got[i]) == n:
                    return

        with trio.fail_after(30):
            async with trio.open_nursery() as drains:
                for i in range(3):
                    drains.start_soon(drain, i)
                for i in range(n):
                    await nodes[0].publish(TOPIC, b"burst %d " % i + bytes(1000))
        assert [len(g) for g in got] == [n, n, n]
        assert all(r.metrics.dropped_outbound == r.metrics.dropped_delivery == 0 for r in nodes)
        # Same payload twice: one id, delivered once. Different payloads (both with
        # empty from+seqno): two ids, both delivered.
        assert await nodes[0].publish(TOPIC, b"twin") == 1
        assert await nodes[0].publish(TOPIC, b"twin") == 0
        assert await nodes[0].publish(TOPIC, b"other") == 1
        assert (await receive(subs[2])).data == b"twin"
        assert (await receive(subs[2])).data == b"other"


async def test_peer_outside_mesh_recovers_message_by_gossip() -> None:
    # D = 0 on both sides: they are subscribed and connected but never mesh, so
    # the only way b can get the message is IHAVE (a's heartbeat) -> IWANT.
    async with relays(2, degree=0, degree_low=0, degree_high=0) as (a, b):
        await a.subscribe(TOPIC)
        sub_b = await b.subscribe(TOPIC)
        await connect(a, b)
        await wait_until(lambda: b.host.get_id() in a.topic_peers(TOPIC))
        assert await a.publish(TOPIC, b"gossiped") == 0  # no direct push
        assert not a.mesh_peers(TOPIC) and not b.mesh_peers(TOPIC)
        assert (await receive(sub_b, timeout=5)).data == b"gossiped"


async def test_validator_rejection_stops_delivery_and_forwarding() -> None:
    async with relays(3) as (a, b, c):
        sub_a, sub_b, sub_c = await line([a, b, c])
        b.add_validator(TOPIC, lambda topic, data, peer: not data.startswith(b"bad"))

        async def slow_ok(topic: str, data: bytes, peer: object) -> bool:
            await trio.lowlevel.checkpoint()
            return True

        b.add_validator(None, slow_ok)
        for payload in (b"bad 1", b"good 1"):
            await a.publish(TOPIC, payload)
        assert (await receive(sub_b)).data == b"good 1"
        assert (await receive(sub_c)).data == b"good 1"  # "bad 1" went nowhere past b
        assert b.metrics.rejected_invalid == 1
        assert b.score(a.host.get_id(), TOPIC) < 0


async def test_usage_before_run_is_a_usage_error() -> None:
    from boxless.errors import UsageError

    async with running_host() as host:
        with pytest.raises(UsageError):
            await WakuRelay(host).publish(TOPIC, b"x")


@given(st.lists(st.binary(max_size=300), max_size=20), st.lists(st.integers(1, 50), min_size=1))
def test_frame_decoder_splits_any_chunking(frames: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_varint_prefixed(f) for f in frames)
    decoder, out, pos, i = FrameDecoder(300), [], 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        decoder.feed(wire[pos : pos + step])
        pos, i = pos + step, i + 1
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    assert out == frames
    assert decoder.next_frame() is None


@given(st.binary(max_size=40))
def test_frame_decoder_rejects_oversize_and_never_crashes_on_garbage(data: bytes) -> None:
    decoder = FrameDecoder(16)
    decoder.feed(data)
    try:
        while (frame := decoder.next_frame()) is not None:
            assert len(frame) <= 16
    except MessageTooLarge:
        pass


def test_frame_decoder_oversize_length_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(1000)
    decoder.feed(encode_varint_prefixed(bytes(1001))[:3])
    with pytest.raises(MessageTooLarge):
        decoder.next_frame()
