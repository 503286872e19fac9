"""Sealed envelope v2 in real clients over the in-memory network: who uses it,
and what a replayer, a forging contact and a stranger get from it (nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat.topics import contact_topic
from boxless.crypto import OlmCiphertext
from boxless.crypto.pairwise import is_pairwise
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import (
    Person,
    befriend,
    memnet,
    settle,
    virtual_wall_clock,
    wait_for,
    wall_ns,
)

__all__ = ["virtual_wall_clock"]

pytestmark = pytest.mark.usefixtures("virtual_wall_clock")


async def _deliver(sender: Person, recipient: Person, text: str) -> None:
    mid = await sender.client.send_text(recipient.me, text)
    await wait_for(sender, lambda: sender.message(mid).state == "delivered")


def _forge(forger: Person, victim: Person, claimed: Person, topic: str) -> bytes:
    """A v2 envelope the forger can make: under its own pair key with the victim,
    claiming to be ``claimed``."""
    channel = forger.client.channel
    bundle = channel.contact_bundle(forger.contact(victim))  # type: ignore[arg-type]
    return channel.pairwise.seal(
        bundle.curve25519,
        bundle.sealing_key,
        topic,
        sender_identity_key=claimed.me,
        sender_device_key=claimed.client.channel.my_device_key,
        ciphertext=OlmCiphertext(1, b"\x03" + bytes(80), "sid"),
    )


async def test_v2_on_the_conversation_topic_and_attackers_get_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        await befriend(alice, bob)
        await befriend(carol, bob)
        for text in ("one", "two", "three"):
            await _deliver(alice, bob, text)
            await _deliver(bob, alice, text.upper())
        a_to_b = alice.contact(bob)
        assert a_to_b is not None
        topic = a_to_b.conversation_topic
        stored = net.stored(topic)
        v2 = [item for item in stored if is_pairwise(item.message.payload)]
        # the contact request and its answer (pre-key messages) went in v1 on the
        # shared contact-request partitions; on the conversation topic a device
        # gets v2 once it wrote there itself (it knows our device): Alice's
        # first text is v1, Bob's receipt for it already v2, then all v2
        assert 1 <= len(stored) - len(v2) <= 2 and is_pairwise(stored[-1].message.payload)
        requests = net.stored(contact_topic(bob.me)) + net.stored(contact_topic(alice.me))
        assert requests and not any(is_pairwise(i.message.payload) for i in requests)

        history = bob.texts(alice)
        attacks = [
            # a replayer: the same v2 bytes under a new Waku hash (new timestamp)
            (v2[-1].message.payload, topic),
            # Carol, Bob's contact, forges Alice on the Alice-Bob topic with her own pair key
            (_forge(carol, bob, alice, topic), topic),
            # Carol's genuine pair envelope on a topic that is no conversation of hers
            (_forge(carol, bob, carol, contact_topic(bob.me)), contact_topic(bob.me)),
            # a truncated v2 envelope
            (v2[-1].message.payload[:-5], topic),
        ]
        for payload, on_topic in attacks:
            await carol.transport.send(
                WakuMessage(payload=payload, content_topic=on_topic, timestamp=wall_ns())
            )
        await settle(60.0)
        assert bob.texts(alice) == history
        assert bob.texts(carol) == []
        # and the conversation goes on, in v2, both ways
        await _deliver(alice, bob, "four")
        await _deliver(bob, alice, "FOUR")
        assert bob.texts(alice)[-2:] == ["four", "FOUR"]
        assert is_pairwise(net.stored(topic)[-1].message.payload)
