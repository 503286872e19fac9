"""Filter push vs. subscribe answer ordering, deterministically (issue 10).

A service applies a subscription before it answers, so a matching message can
be pushed before the answer reaches the client. Real py-libp2p hosts on
127.0.0.1; the service here is a host that does exactly that on purpose: on
SUBSCRIBE it pushes first and answers only once the client has finished with
the push stream.
"""

from __future__ import annotations

import time

import multiaddr
import pytest
import trio
from libp2p.abc import INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.peerinfo import PeerInfo

from boxless.node.filter import FilterClient, FilterRequestError
from boxless.node.host import build_host
from boxless.node.streams import close_quietly, read_frame, write_frame
from boxless.waku import filter as fc
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic_for

LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
CT = "/boxless/1/ordering/proto"
TOPIC = pubsub_topic_for(CT, 42)


async def test_a_push_that_overtakes_the_subscribe_answer_is_kept() -> None:
    """Before, FilterClient recorded what it subscribed to only after the
    answer arrived, so a push that came first was rejected as unasked-for and
    the message lost (js-waku has the same window for a topic's first
    subscription). Now the topics count as asked for while the request is out."""
    service = build_host(create_new_key_pair(), LOOPBACK)
    client_host = build_host(create_new_key_pair(), LOOPBACK)
    first = WakuMessage(b"pushed before the answer", CT, timestamp=time.time_ns())

    async def eager(stream: INetStream) -> None:
        req = fc.parse_request(await read_frame(stream, 4096))
        assert isinstance(req, fc.FilterRequest)
        peer = stream.muxed_conn.peer_id
        push = await service.new_stream(peer, [TProtocol(fc.FILTER_PUSH_PROTOCOL)])
        await write_frame(push, fc.encode_push(TOPIC, first))
        await close_quietly(push)
        try:  # the client closes its side once it has taken the push
            while await push.read(1024):
                pass
        except StreamEOF:
            pass
        await write_frame(stream, fc.build_response(req.request_id, fc.FilterStatus.OK))
        await close_quietly(stream)

    service.set_stream_handler(TProtocol(fc.FILTER_SUBSCRIBE_PROTOCOL), eager)
    async with service.run(LOOPBACK), client_host.run([]):
        await client_host.connect(PeerInfo(service.get_id(), service.get_addrs()))
        client = FilterClient(client_host, service.get_id())
        client.register()
        with trio.fail_after(15):
            await client.subscribe(TOPIC, [CT])
            assert await client.messages.receive() == (TOPIC, first)
        assert client.rejected == 0


async def test_a_refused_subscribe_takes_back_what_it_added() -> None:
    """The flip side: topics counted as asked for during a refused request
    must not stay, or a stranger's pushes for them would be accepted."""
    service = build_host(create_new_key_pair(), LOOPBACK)
    client_host = build_host(create_new_key_pair(), LOOPBACK)

    async def refuse(stream: INetStream) -> None:
        req = fc.parse_request(await read_frame(stream, 4096))
        assert isinstance(req, fc.FilterRequest)
        answer = fc.build_response(req.request_id, fc.FilterStatus.SERVICE_UNAVAILABLE, "full")
        await write_frame(stream, answer)
        await close_quietly(stream)

    service.set_stream_handler(TProtocol(fc.FILTER_SUBSCRIBE_PROTOCOL), refuse)
    async with service.run(LOOPBACK), client_host.run([]):
        await client_host.connect(PeerInfo(service.get_id(), service.get_addrs()))
        client = FilterClient(client_host, service.get_id())
        client.register()
        client.subscribed.add(TOPIC, ["/boxless/1/kept/proto"])
        with trio.fail_after(15), pytest.raises(FilterRequestError):
            await client.subscribe(TOPIC, [CT, "/boxless/1/kept/proto"])
        assert not client.subscribed.matches(TOPIC, CT)
        assert client.subscribed.matches(TOPIC, "/boxless/1/kept/proto")
