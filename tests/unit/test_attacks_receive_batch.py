"""A receive batch played as the attacker (W7, issue 9's per-batch answers): Mallory,
Bob's contact, forges messages that claim to be Alice's (her identity, Mallory's own
device proved by Olm, a Lamport time far ahead) and interleaves them with Alice's
real ones in the store, so Bob takes them in one batch.

The per-batch device-check memo is keyed by (sender, device), and the per-batch
Lamport clock only sees messages that passed the device check, so the forgeries
are dropped, Alice's real texts are hers and in order, and neither Alice's nor
Mallory's clock moves to the forged time. (Refused before this session's review
too: this test shows it.)
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.client import store as db
from boxless.crypto.sealed import seal
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import Person, befriend, homes, memnet, settle, wall, wall_ns
from tests.unit.test_receive_batch import lamport_of

__all__ = ["homes", "send_forged"]  # a fixture; a helper

FORGED_LAMPORT = 10**12


async def send_forged(
    forger: Person, to: Person, claimed: Person, body: env.Body, topic: str, lamport: int = 0
) -> None:
    """What a modified client sends: ``body`` sealed to ``to`` claiming ``claimed``'s
    identity, Olm-encrypted from the forger's own device (which Olm proves), on ``topic``."""
    msg = env.new_message(body, lamport=lamport, sent_at_ms=int(wall() * 1000))
    plaintext = env.encode(msg)
    bundle = to.account.device.bundle(wall())
    channel = forger.client.channel
    with channel.sessions.transaction():
        olm = channel.sessions.encrypt(bundle, plaintext)
    forged = seal(
        bundle.sealing_key,
        sender_identity_key=claimed.me,  # claimed
        sender_device_key=channel.my_device_key,  # proved by Olm: the forger's
        ciphertext=olm,
    )
    await forger.transport.send(
        WakuMessage(payload=forged, content_topic=topic, timestamp=wall_ns())
    )


async def _forge_as(mallory: Person, victim: Person, bob: Person, text: str) -> None:
    """A Text claiming ``victim``'s identity on the victim's conversation topic with Bob
    (where Bob's store catch-up reads it), dated far ahead in Lamport time."""
    contact = bob.contact(victim)
    assert contact is not None
    await send_forged(
        mallory, bob, victim, env.Text(text), contact.conversation_topic, FORGED_LAMPORT
    )


async def test_forged_and_real_messages_in_one_batch(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "mallory")) as (net, (alice, bob, mallory)):
        await befriend(alice, bob)
        await befriend(mallory, bob)
        await trio.sleep(5)
        topic = bob.contact(alice).conversation_topic  # type: ignore[union-attr]
        before_alice, before_mallory = lamport_of(bob, alice), lamport_of(bob, mallory)
        bob.transport.set_online(False)
        start = len(net.stored(topic))
        for i in range(3):  # forged, real, forged, real, forged, real
            await _forge_as(mallory, alice, bob, f"forged {i}")
            await trio.sleep(0.01)
            await alice.client.send_text(bob.me, f"real {i}")
            await trio.sleep(0.01)
        await trio.sleep(1)
        batch = net.stored(topic)[start:]
        assert len(batch) == 6
        await bob.client.channel.receive_batch(batch)
        await settle(30)  # an unknown device's bundle is looked up outside the batch

        assert bob.texts(alice)[-3:] == ["real 0", "real 1", "real 2"]
        assert not any("forged" in t for t in bob.texts(alice) + bob.texts(mallory))
        with bob.client.db.transaction() as cur:
            real = [m.lamport for m in db.list_messages(cur, alice.me, 100)]
        # Bob's own receipts to Alice tick it a little past her highest real one
        assert max(real) <= lamport_of(bob, alice) <= max(real) + 5
        assert before_alice < max(real)
        assert lamport_of(bob, mallory) == before_mallory
        # and the same batch again (a store replay) changes nothing
        await bob.client.channel.receive_batch(batch)
        await settle(5)
        assert bob.texts(alice)[-3:] == ["real 0", "real 1", "real 2"]
        assert lamport_of(bob, alice) <= max(real) + 5
