""" "Ask again" in a group, between two members who are not contacts: the service
node lost blocks of Alice's file behind its back, Bob's fetch fails, his ask reaches
Alice over the group's direct path, her client re-pins (the node repairs the pin
it still records) and tells Bob where; the file arrives. Attackers: a contact of
Alice who is not in the group, a member naming a file Alice never sent there, a
flood of asks, and a device that is not the member's. Messages over the in-memory
Waku network, files over real py-libp2p hosts with a real service node."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from boxless.blobs import PinPolicy
from boxless.blobs.cid import Cid
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentAsk
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.channel import Received
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node
from tests.memnet_fixtures import Person, befriend, memnet, wait_for

pytestmark = pytest.mark.trio


def _in_group(p: Person, gid: bytes) -> Callable[[], bool]:
    return lambda: any(g.group_id == gid for g in p.client.groups.groups())


def _ask_from(p: Person, to: Person, mid: str, idx: int, gid: bytes) -> None:
    """``p`` sends an ask over the group's direct path (as the client's own ask does)."""
    note = env.Attachments((), ask=AttachmentAsk(bytes.fromhex(mid), idx, gid))
    with p.account.db.transaction() as cur:
        p.client.groups.core.queue_direct(cur, to.me, note)


async def _until(pred: Callable[[], bool], timeout: float = 30) -> None:
    """Poll ``pred`` (a counter no event announces) until it holds, with a deadline."""
    with trio.fail_after(timeout):
        while not pred():  # noqa: ASYNC110 -- no event announces a dropped note
            await trio.sleep(0.05)


async def test_a_member_asks_the_sender_again_in_a_group(tmp_path: Path) -> None:
    data = os.urandom(600_000)
    async with (
        memnet(tmp_path, ("alice", "bob", "carol", "eve")) as (_net, (alice, bob, carol, eve)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ablobs") as ablobs,
        blob_node(tmp_path / "bblobs") as bblobs,
    ):
        # Alice and Bob are members but not contacts: Carol (an admin) brought Bob in
        await befriend(alice, carol)
        await befriend(carol, bob)
        await befriend(alice, eve)
        gid = (await alice.client.groups.create("Files")).group_id
        await alice.client.groups.invite(gid, carol.me)
        await alice.client.groups.set_role(gid, carol.me, True)
        await wait_for(carol, _in_group(carol, gid))
        await wait_for(carol, lambda: carol.client.groups.state(gid).is_admin(carol.me))
        await carol.client.groups.invite(gid, bob.me)
        await wait_for(bob, _in_group(bob, gid))
        await wait_for(alice, lambda: alice.client.groups.state(gid).is_member(bob.me))
        assert bob.contact(alice) is None and alice.contact(bob) is None

        service = [addr_of(svc)]
        alice.client.attachments.use_transfer(AttachmentTransfer(ablobs.client, service))
        bob.client.attachments.use_transfer(AttachmentTransfer(bblobs.client, service))
        bob.client.attachments.set_auto_download_bytes(0)
        mid = await alice.client.attachments.send_group(
            gid, [(aiter_chunks(data), FileInfo("plan.bin"))]
        )
        key = mid.encode()
        with trio.fail_after(60):
            await wait_for(bob, lambda: bool(bob.client.attachments.attachments(key)), 60)

        # the service node loses blocks behind its back (its pin record stays)
        (root,) = {r for _p, r, *_ in svc.store.pins()}
        names = [n for n, _ in svc.store.pin_blocks_of(Cid.parse(root), 100)]
        for name in names[:2]:
            (svc.store.root / "blocks" / name[-2:] / name).unlink()
        with trio.fail_after(60):
            row = await bob.client.attachments.download(key, 0)
        assert row.state == "failed" and row.error is not None
        assert row.error.startswith("the file is no longer on the network")

        # Bob asks; Alice's client re-pins (the node repairs) and tells him; it arrives
        asks = alice.client.group_file_asks
        assert await bob.client.group_file_asks.ask(key, 0) == "Alice"
        assert bob.client.attachments.attachment(key, 0).error == "asked Alice to send it again"
        with trio.fail_after(60):
            await wait_for(
                bob, lambda: bob.client.attachments.attachment(key, 0).state == "ready", 60
            )
        got = b"".join([c async for c in bob.client.attachments.open(key, 0)])
        assert got == data and len(svc.store.pins()) == 1
        assert svc.store.lost_names(svc.store.pin_blocks_of(Cid.parse(root), 100)) == []
        assert sum(asks.dropped.values()) == 0

        # attackers: Eve (Alice's contact, not in the group) asks about the file
        _ask_from(eve, alice, mid, 0, gid)
        await _until(lambda: asks.dropped["the asker is not a member of that group"] == 1)
        # Bob names a file Alice never sent to this group (his own group message)
        own = await bob.client.groups.send_text(gid, "no file here")
        _ask_from(bob, alice, own.message_id, 0, gid)
        await _until(lambda: asks.dropped["not a file we sent to that group"] == 1)
        # a flood about the real file: one re-pin a minute, the rest refused
        for _ in range(5):
            _ask_from(bob, alice, mid, 0, gid)
        await _until(lambda: asks.limits.refused.total() == 5)
        assert len(svc.store.pins()) == 1
        # a device that is not Bob's as the group knows it (Eve's, Olm-proved, naming
        # Bob as its sender): what the pipeline hands the feature is dropped
        note = env.Attachments((), ask=AttachmentAsk(bytes.fromhex(mid), 0, gid))
        forged = env.new_message(note, lamport=0, sent_at_ms=0)
        eves = eve.account.device.certificate.device_curve25519
        with alice.account.db.transaction() as cur:
            assert asks._on_note(cur, Received(bob.me, eves, None, forged, None)) is None  # type: ignore[arg-type]
        assert asks.dropped["a device that is not the member's"] == 1
