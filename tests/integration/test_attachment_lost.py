"""A file the network lost after the send: the recipient's fetch says so and whom to
ask; their ask makes the sender's client pin its own copy again and say where, and
the file arrives. Another contact's ask about the same file is dropped (the
attacker). Messages over the in-memory Waku network, files over real py-libp2p hosts
with a real service node whose blocks are deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import trio

from boxless.blobs import PinPolicy
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentAsk
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.repin_asks import AskLimiter
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node
from tests.memnet_fixtures import befriend, memnet, wait_for

pytestmark = pytest.mark.trio


async def test_a_lost_file_is_asked_for_and_pinned_again(tmp_path: Path) -> None:
    data = os.urandom(700_000)
    async with (
        memnet(tmp_path, ("alice", "bob", "carol")) as (_net, (alice, bob, carol)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ablobs") as ablobs,
        blob_node(tmp_path / "bblobs") as bblobs,
    ):
        await befriend(alice, bob)
        await befriend(alice, carol)
        service = [addr_of(svc)]
        alice.client.attachments.use_transfer(AttachmentTransfer(ablobs.client, service))
        bob.client.attachments.use_transfer(AttachmentTransfer(bblobs.client, service))
        bob.client.attachments.set_auto_download_bytes(0)
        mid = await alice.client.attachments.send(
            bob.me, [(aiter_chunks(data), FileInfo("plan.bin"))]
        )
        await wait_for(bob, lambda: bool(bob.client.attachments.attachments(mid)))

        # the service node loses it (its pin ends and GC deletes the blocks)
        for pin_id, *_ in svc.store.pins():
            svc.store.unpin(pin_id)
        assert svc.store.gc(time.time() + 1, grace_s=0) > len(data)
        with trio.fail_after(60):
            row = await bob.client.attachments.download(mid, 0)
        assert row.state == "failed"
        name = bob.contact(alice).display_name  # type: ignore[union-attr]
        assert row.error == f"the file is no longer on the network: ask {name} to send it again"

        # Bob asks; Alice's client pins its copy again and tells him where; it arrives
        assert await bob.client.attachments.ask_again(mid, 0) == name
        assert bob.client.attachments.attachment(mid, 0).error == f"asked {name} to send it again"
        with trio.fail_after(60):
            await wait_for(bob, lambda: bob.client.attachments.attachment(mid, 0).state == "ready")
        got = b"".join([c async for c in bob.client.attachments.open(mid, 0)])
        assert got == data and len(svc.store.pins()) == 1

        # the attacker: Carol (Alice's contact too) asks about Bob's file once the
        # service node lost it again and the one-a-minute limit is forgotten: dropped
        for pin_id, *_ in svc.store.pins():
            svc.store.unpin(pin_id)
        alice.client.attachments.asks = AskLimiter()  # only the sender check stands in her way
        await carol.client.conversations.send_body(
            alice.me, env.Attachments((), ask=AttachmentAsk(mid, 0))
        )
        await carol.client.conversations.send_text(alice.me, "after my ask")
        with trio.fail_after(60):  # the receiver applies a contact's messages in order
            await wait_for(alice, lambda: "after my ask" in alice.texts(carol))
        assert svc.store.pins() == []  # nothing pinned again for her
