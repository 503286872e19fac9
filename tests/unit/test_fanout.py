"""The fan-out that hands client events and received messages to local listeners."""

from __future__ import annotations

import logging

import trio
import trio.lowlevel

from boxless.fanout import Fanout

log = logging.getLogger(__name__)


async def test_every_listener_gets_every_item_in_order() -> None:
    fan: Fanout[int] = Fanout(log)
    async with fan.listen() as a, fan.listen() as b:
        for i in range(5):
            fan.publish(i)
        assert [a.receive_nowait() for _ in range(5)] == list(range(5))
        assert [b.receive_nowait() for _ in range(5)] == list(range(5))
    assert len(fan) == 0


async def test_an_item_published_while_a_listener_closes_does_not_crash_the_producer() -> None:
    # The CI failure this reproduces: closing a trio receive channel checkpoints, and
    # a producer that ran in that window used to hit BrokenResourceError.
    fan: Fanout[int] = Fanout(log)
    published = trio.Event()

    async def producer() -> None:
        for i in range(50):
            fan.publish(i)
            await trio.lowlevel.checkpoint()
        published.set()

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            async with fan.listen():
                nursery.start_soon(producer)
                await trio.lowlevel.checkpoint()
        await published.wait()
    assert len(fan) == 0


async def test_a_full_listener_misses_items_without_blocking_others(caplog) -> None:  # type: ignore[no-untyped-def]
    fan: Fanout[int] = Fanout(log, "thing")
    async with fan.listen(buffer=1) as slow, fan.listen(buffer=10) as fast:
        with caplog.at_level(logging.WARNING):
            for i in range(3):
                fan.publish(i)
        assert slow.receive_nowait() == 0
        assert [fast.receive_nowait() for _ in range(3)] == [0, 1, 2]
    assert "missed one thing" in caplog.text


async def test_a_closed_listener_is_dropped() -> None:
    fan: Fanout[int] = Fanout(log)
    async with fan.listen() as recv:
        recv.close()
        fan.publish(1)
        assert len(fan) == 0
