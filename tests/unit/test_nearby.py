"""People Nearby over the in-memory network: cells, hello -> contact, stop, expiry."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.client.nearby import NotSharing
from boxless.client.nearby_core import Hello, HelloKind, hello_topic, seal_hello
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import homes, memnet, settle, wait_for

__all__ = ["homes"]  # a fixture

LISBON = (38.7223, -9.1393)
LISBON_NEAR = (38.7230, -9.1400)
PORTO = (41.1579, -8.6291)


async def test_two_in_a_cell_meet_the_far_one_does_not_and_hello_makes_contacts(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (_net, (alice, bob, carol)):
        with pytest.raises(NotSharing):
            alice.client.nearby.people()
        await alice.client.nearby.start(*LISBON, name="A.")
        await bob.client.nearby.start(*LISBON_NEAR, name="B.", status="coffee?")
        await carol.client.nearby.start(*PORTO, name="C.")
        # Bob started later: he read Alice's card from store history; Alice gets his live
        await wait_for(alice, lambda: len(alice.client.nearby.people()) == 1)
        seen = alice.client.nearby.people()[0]
        assert (seen.name, seen.status, seen.distance) == ("B.", "coffee?", "< 1 km")
        assert [p.name for p in bob.client.nearby.people()] == ["A."]
        await settle(120)  # re-published twice: still one card each, Carol sees nobody
        assert len(alice.client.nearby.people()) == 1 and carol.client.nearby.people() == []

        await alice.client.nearby.say_hello(bytes.fromhex(seen.id), "hi from the cafe")
        await wait_for(bob, lambda: len(bob.client.nearby.received_hellos()) == 1)
        hello = bob.client.nearby.received_hellos()[0]
        assert (hello.name, hello.text) == ("A.", "hi from the cafe")
        assert bob.client.contacts() == []  # nothing before Bob decides
        await bob.client.nearby.accept(bytes.fromhex(hello.id))
        await wait_for(alice, lambda: alice.state(bob) == "accepted")
        await wait_for(bob, lambda: bob.state(alice) == "accepted")
        assert alice.state(carol) is None and carol.client.contacts() == []

        # stop sharing: Alice's card is withdrawn at once for Bob
        await alice.client.nearby.stop()
        await wait_for(bob, lambda: bob.client.nearby.people() == [])
        # Carol's card expires by itself for anyone who stops hearing her
        with pytest.raises(NotSharing):
            alice.client.nearby.people()


async def test_a_card_expires_when_its_sender_goes_quiet(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await alice.client.nearby.start(*LISBON)
        await bob.client.nearby.start(*LISBON_NEAR)
        await wait_for(alice, lambda: len(alice.client.nearby.people()) == 1)
        bob.client.nearby.session = None  # Bob's node goes quiet without withdrawing
        await settle(5 * 60 + 61)
        assert alice.client.nearby.people() == []


async def test_an_answer_to_no_hello_of_ours_makes_no_contact(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "mallory")) as (_net, (alice, mallory)):
        await alice.client.nearby.start(*LISBON)
        await mallory.client.nearby.start(*LISBON_NEAR)
        await wait_for(mallory, lambda: len(mallory.client.nearby.people()) == 1)
        card = mallory.client.nearby.table.cards(int(mallory.client.clock() * 1000))[0]
        m = mallory.client.nearby.session
        assert m is not None
        forged = Hello(HelloKind.ACCEPTED, m.card_key, m.box_key, mallory.link(), "", b"x" * 16, "")
        payload = seal_hello(
            forged, card.card_key, card.box_key, None, mallory.account.identity.sign
        )
        await mallory.transport.send(
            WakuMessage(payload=payload, content_topic=hello_topic(card.card_key))
        )
        await settle(30)
        assert alice.client.nearby.drops().get("unexpected") == 1
        assert alice.client.contacts() == [] and mallory.client.contacts() == []


def test_a_big_picture_is_made_small_for_the_card() -> None:
    import io

    from PIL import Image

    from boxless.client.nearby import _card_picture
    from boxless.client.nearby_core import MAX_AVATAR_BYTES

    noisy = Image.effect_noise((256, 256), 80).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "JPEG", quality=95)
    assert len(out.getvalue()) > MAX_AVATAR_BYTES
    small = _card_picture(out.getvalue())
    assert 0 < len(small) <= MAX_AVATAR_BYTES and small.startswith(b"\xff\xd8\xff")
    assert _card_picture(b"\x00" * (MAX_AVATAR_BYTES + 1)) == b""


async def test_someone_across_a_cell_border_is_seen(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    across = (38.7262, -9.1441)  # cell eyckr, a neighbour of Lisbon's eycs2, ~600 m away
    async with memnet(homes, ("alice", "bob")) as (_net, (alice, bob)):
        await alice.client.nearby.start(*LISBON)
        await bob.client.nearby.start(*across)
        assert alice.client.nearby.session is not None and bob.client.nearby.session is not None
        assert alice.client.nearby.session.cell != bob.client.nearby.session.cell
        await wait_for(alice, lambda: len(alice.client.nearby.people()) == 1)
        assert alice.client.nearby.people()[0].distance in ("< 1 km", "< 5 km")
        assert len(bob.client.nearby.people()) == 1
