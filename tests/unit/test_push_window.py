"""The sender's window of concurrent light pushes (issue 9): pushes that complete
out of order, and one that fails, still give the receiver its history in send order."""

from __future__ import annotations

import random
from pathlib import Path

import trio
import trio.testing

from boxless.client.conversations import PUSH_WINDOW
from boxless.client.transport import Sent
from boxless.errors import NetworkError
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import befriend, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture


async def test_pushes_completing_out_of_order_and_a_failed_one_keep_the_history_in_order(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """40 texts queued at once; each light push takes 0-50 ms (so they complete
    shuffled) and the 7th fails once. At most PUSH_WINDOW are in flight; what had
    not started when the 7th failed waits behind it (held, not pushed before its
    retry); Bob's history is the send order."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(60)  # befriending's receipts are settled
        contact = alice.contact(bob)
        assert contact is not None
        topic = contact.conversation_topic
        rng = random.Random(7)
        real_send = alice.transport.send
        calls: list[int] = []  # the burst's pushes, by start
        finished: list[int] = []
        in_flight = 0
        most = 0
        failed_at: list[int] = []  # len(calls) when the 7th failed
        failed_time: list[float] = []
        starts: list[float] = []

        async def slow_send(msg: WakuMessage) -> Sent:
            nonlocal in_flight, most
            if msg.content_topic != topic:
                return await real_send(msg)
            n = len(calls)
            calls.append(n)
            starts.append(trio.current_time())
            in_flight += 1
            most = max(most, in_flight)
            try:
                await trio.sleep(rng.uniform(0.0, 0.05))
                if n == 6:
                    failed_at.append(len(calls))
                    failed_time.append(trio.current_time())
                    raise NetworkError("the service peer hung up (test)")
                return await real_send(msg)
            finally:
                in_flight -= 1
                finished.append(n)

        alice.transport.send = slow_send  # type: ignore[method-assign]
        sent = [f"burst {i}" for i in range(40)]
        for text in sent:
            await alice.client.send_text(bob.me, text)
        await wait_for(bob, lambda: len(bob.texts(alice)) == len(sent))
        assert bob.texts(alice) == sent
        assert most == PUSH_WINDOW  # bounded, and used
        assert finished[: len(calls)] != sorted(finished[: len(calls)])  # completed shuffled
        # the failure held the rest: started after it were only those already
        # waiting for a slot (< PUSH_WINDOW), then its retry came first
        assert failed_at and failed_at[0] - 7 < PUSH_WINDOW
        assert len(calls) == len(sent) + 1  # one retry, nothing else twice
        # nothing new started until the retry's backoff (2 s, -20 %) was over
        assert starts[failed_at[0]] >= failed_time[0] + 1.6
