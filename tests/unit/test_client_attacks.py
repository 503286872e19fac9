"""A modified client attacks a contact over the in-memory network (issue 10, findings 2, 5, 7).

Each test plays the attack a modified client could send on main before the
direct channel and :func:`boxless.client.conversations.authorise`; each
failed there.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.chat.pow import solve
from boxless.chat.topics import contact_topic
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.channel import MAX_CLOCK_SKEW_NS
from boxless.crypto.sealed import seal
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import (
    POW,
    befriend,
    memnet,
    settle,
    virtual_wall_clock,
    wait_for,
    wall,
    wall_ns,
)

__all__ = ["virtual_wall_clock"]

pytestmark = pytest.mark.usefixtures("virtual_wall_clock")

TEN_YEARS_S = 10 * 365 * 86_400


async def test_a_contact_cannot_edit_or_delete_my_messages(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Bob's modified client sends an Edit, then a Delete, of Alice's own message:
    on main Alice's history read "I owe Bob 10000 euros", marked edited."""
    async with memnet(tmp_path, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        mid = await alice.client.send_text(bob.me, "I can lend you 10 euros")
        await wait_for(alice, lambda: alice.message(mid).state == "delivered")
        to_alice = bob.contact(alice)
        assert to_alice is not None
        edit = bob.client.conversations.queue(to_alice, env.Edit(mid, "I owe Bob 10000 euros"))
        delete = bob.client.conversations.queue(to_alice, env.Delete(mid))
        await settle(120.0)  # virtual: sent, and re-sent if lost, long before
        assert not {edit, delete} & _outbox(bob)  # Alice acknowledged both
        mine = alice.message(mid)
        assert (mine.text, mine.edited, mine.deleted) == ("I can lend you 10 euros", False, False)
        # Bob may still edit his own message, and react to Alice's
        his = await bob.client.send_text(alice.me, "thanks")
        await wait_for(alice, lambda: "thanks" in alice.texts(bob))
        await bob.client.edit(his, "thanks a lot")
        await bob.client.react(mid, "👍")
        await wait_for(alice, lambda: alice.message(his).text == "thanks a lot")
        await wait_for(alice, lambda: alice.message(mid).reactions == {"👍": ["them"]})


async def test_a_receipt_counts_only_from_the_messages_recipient(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Carol, also Alice's contact, sends READ receipts for a message Alice sent
    to Bob: on main it showed as read (and left the outbox) though Bob never got it."""
    async with memnet(tmp_path, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        await befriend(alice, bob)
        await befriend(alice, carol)
        bob.transport.set_online(False, catch_up=False)  # Bob receives nothing: the message stays "sent"
        mid = await alice.client.send_text(bob.me, "for Bob only")
        await wait_for(alice, lambda: alice.message(mid).state == "sent")
        to_alice = carol.contact(alice)
        assert to_alice is not None
        forged = carol.client.conversations.queue(
            to_alice, env.Receipt((mid,), env.ReceiptKind.READ)
        )
        del forged  # receipts are not acknowledged: it stays in Carol's outbox
        await settle(60.0)  # sent and re-sent by now
        assert alice.message(mid).state == "sent"
        assert mid in _outbox(alice)  # still re-sent to Bob
        bob.transport.set_online(True)
        await wait_for(alice, lambda: alice.message(mid).state == "delivered")


async def test_a_far_future_timestamp_does_not_blind_catch_up(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A message dated +10 years, authenticated (from a contact) or junk: on main the
    topic's sync point jumped there and later catch-ups asked for nothing."""
    # a network whose nodes don't check timestamps (ours refuse > 20 s ahead; others may not)
    async with memnet(tmp_path, ("alice", "bob"), max_drift_ns=None) as (net, (alice, bob)):
        await befriend(alice, bob)
        conversation = alice.contact(bob)
        assert conversation is not None
        topic = conversation.conversation_topic
        # junk on Alice's partition topic, dated +10 years
        junk = WakuMessage(
            payload=b"\x00" * 64,
            content_topic=contact_topic(alice.me),
            timestamp=wall_ns() + TEN_YEARS_S * 10**9,
        )
        await bob.transport.send(junk)
        # a real message from Bob's client, its clock 10 years ahead
        real_clock = bob.client.channel.clock
        bob.client.channel.clock = lambda: real_clock() + TEN_YEARS_S
        mid = await bob.client.send_text(alice.me, "from the future")
        await wait_for(alice, lambda: "from the future" in alice.texts(bob))
        bob.client.channel.clock = real_clock
        del mid
        await settle()
        with alice.client.db.transaction() as cur:
            partition = db.get_sync(cur, contact_topic(alice.me))
            chat = db.get_sync(cur, topic)
        limit = wall_ns() + MAX_CLOCK_SKEW_NS
        assert partition is None or partition <= limit
        assert chat is not None and chat <= limit


async def test_a_forger_cannot_spend_someone_elses_request_allowance(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Mallory sends Bob contact requests that claim to be Carol's (her public card,
    fresh proofs for her key) from his own device. On main the gate spent Carol's
    per-sender allowance before the card was checked, so her real request was
    then dropped as rate limited."""
    async with memnet(tmp_path, ("bob", "carol", "mallory")) as (net, (bob, carol, mallory)):
        carol_card = carol.account.contact_code(wall()).to_bytes()
        bob_bundle = bob.account.device.bundle(wall())
        for i in range(6):
            now_ms = int(wall() * 1000) - i  # a fresh proof each time
            proof = solve(bob.me, carol.me, now_ms, difficulty=POW)
            assert proof is not None
            body = env.ContactRequest("it's Carol", proof, carol_card, secrets.token_bytes(32))
            plaintext = env.encode(env.new_message(body, lamport=1, sent_at_ms=now_ms))
            channel = mallory.client.channel
            with channel.sessions.transaction():
                olm = channel.sessions.encrypt(bob_bundle, plaintext)
            forged = seal(
                bob_bundle.sealing_key,
                sender_identity_key=carol.me,  # claimed
                sender_device_key=channel.my_device_key,  # proved by Olm: Mallory's
                ciphertext=olm,
            )
            await mallory.transport.send(
                WakuMessage(payload=forged, content_topic=contact_topic(bob.me), timestamp=wall_ns())
            )
        await settle(5.0)
        assert bob.contact(carol) is None  # none of the forgeries made a contact
        await carol.client.add_contact(bob.link(), intro="the real Carol")
        # at once, not after her bucket refilled (one token per 10 min) and she re-sent
        await wait_for(bob, lambda: bob.state(carol) == "request_received", timeout=60)
        row = bob.contact(carol)
        assert row is not None and row.intro == "the real Carol"


async def test_replayed_messages_cannot_pile_up_re_send_requests(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Whoever replays a contact's old Olm messages (a store node, say) makes us ask
    that contact to re-send; with the contact offline, every replay used to queue
    one more reliable request. At most one waits unacknowledged."""
    async with memnet(tmp_path, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        bob.transport.set_online(False, catch_up=False)
        for _ in range(50):
            await alice.client.conversations.ask_resend(bob.me)
            await settle(3.0)
        asks = [
            e
            for e in alice.client.conversations.outbox.entries()
            if isinstance(env.decode(e.payload).body, env.SessionReset)
        ]
        assert len(asks) == 1


async def test_a_contacts_name_is_validated_like_our_own(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A ProfileUpdate's name skipped validate_display_name on main (control
    characters and any length reached the contact list)."""
    async with memnet(tmp_path, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        to_alice = bob.contact(alice)
        assert to_alice is not None
        bad = "\x1b[2J\x1b]0;pwned\x07" + "B" * 10
        sent = bob.client.conversations.queue(to_alice, env.ProfileUpdate(bad, b""))
        await settle(120.0)
        assert sent not in _outbox(bob)
        row = alice.contact(bob)
        assert row is not None and row.display_name == "Bob"


async def test_every_emitted_event_matches_the_published_schema(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Events of a short session, as the API sends them, against the schema it publishes."""
    schema = {v["title"]: v for v in ev.json_schema()["oneOf"]}
    seen: list[ev.Event] = []
    async with memnet(tmp_path, ("alice", "bob")) as (net, (alice, bob)):
        async with bob.client.events() as events:
            await befriend(alice, bob)
            mid = await alice.client.send_text(bob.me, "hello")
            await wait_for(bob, lambda: "hello" in bob.texts(alice))
            await bob.client.typing(alice.me, True)
            await alice.client.react(mid, "🎉")
            await bob.client.set_display_name("Robert")
            await settle()
            while True:
                try:
                    seen.append(events.receive_nowait())
                except trio.WouldBlock:
                    break
    kinds = {e.type for e in seen}
    assert {"contact_request", "contact", "message", "profile"} <= kinds
    for event in seen:
        data = json.loads(json.dumps(ev.to_json(event)))
        variant = schema[data["type"]]
        assert set(variant["required"]) <= set(data) <= set(variant["properties"])
        assert ev.from_json(data) == event


def test_the_web_ui_handles_every_event_kind() -> None:
    app = Path(__file__).parents[2] / "src" / "boxless" / "web" / "app.js"
    source = app.read_text()
    missing = [t for t in sorted(ev.EVENT_TYPES) if f'case "{t}"' not in source]
    assert not missing, f"web/app.js does not handle {missing}"


def _outbox(person: object) -> set[bytes]:
    client = person.client  # type: ignore[attr-defined]
    return {e.message_id for e in client.conversations.outbox.entries()}


_ = wall
