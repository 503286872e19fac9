"""Attachments between two real clients: messages over the in-memory Waku network,
files over real py-libp2p hosts with a service node (real clock: sockets)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from boxless.blobs import PinPolicy
from boxless.client import events as ev
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.attachments import BlobsUnavailable
from boxless.client.group_core import NotAMember
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node
from tests.integration.group_avatar_checks import check_group_pictures
from tests.memnet_fixtures import befriend, memnet, wait_for

pytestmark = pytest.mark.trio


async def test_a_file_goes_from_alice_to_bob_and_is_fetched(tmp_path: Path) -> None:
    data = os.urandom(600_000)
    big = os.urandom(300_000)
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ablobs") as ablobs,
        blob_node(tmp_path / "bblobs") as bblobs,
    ):
        await befriend(alice, bob)
        with pytest.raises(BlobsUnavailable, match="blob service"):
            await alice.client.attachments.send(bob.me, [(aiter_chunks(data), FileInfo("a.bin"))])
        alice.client.attachments.use_transfer(AttachmentTransfer(ablobs.client, [addr_of(svc)]))
        bob.client.attachments.use_transfer(AttachmentTransfer(bblobs.client))
        bob.client.attachments.set_auto_download_bytes(500_000)  # the 600 KB file waits

        seen: list[ev.Event] = []
        async with bob.client.events() as events:
            mid = await alice.client.attachments.send(
                bob.me, [(aiter_chunks(data), FileInfo("../notes.bin"))], caption="the notes"
            )
            small = await alice.client.attachments.send(
                bob.me, [(aiter_chunks(big), FileInfo("small.bin"))]
            )
            with trio.fail_after(30):
                while not any(isinstance(e, ev.AttachmentReady) for e in seen):
                    seen.append(await events.receive())
        ready = [e for e in seen if isinstance(e, ev.AttachmentReady)]
        assert ready[0].message_id == small.hex() and ready[0].ok, ready
        assert any(isinstance(e, ev.AttachmentProgress) for e in seen)
        schema = {v["title"]: v for v in ev.json_schema()["oneOf"]}
        for event in seen:  # as the API sends them, against the schema it publishes
            sent = json.loads(json.dumps(ev.to_json(event)))
            variant = schema[sent["type"]]
            assert set(variant["required"]) <= set(sent) <= set(variant["properties"])
            assert ev.from_json(sent) == event
            if isinstance(event, ev.AttachmentProgress):
                assert 0 < event.done <= event.total == len(big)  # plaintext bytes
        assert bob.texts(alice)[-2:] == ["the notes", "📎 small.bin"]
        row = bob.client.attachments.attachment(mid, 0)
        assert row.state == "remote" and row.ref.name == "notes.bin" and not row.outgoing
        assert bob.client.attachments.attachment(small, 0).state == "ready"
        # over the limit: fetched on request, streamed and verified
        row = await bob.client.attachments.download(mid, 0)
        assert row.state == "ready" and row.error is None
        got = b"".join([c async for c in bob.client.attachments.open(mid, 0)])
        assert got == data
        await wait_for(alice, lambda: alice.message(mid).state in ("delivered", "read"))
        assert alice.client.attachments.attachment(mid, 0).state == "ready"


async def test_a_file_sent_to_a_group_reaches_a_member(tmp_path: Path) -> None:
    data = os.urandom(400_000)
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ablobs") as ablobs,
        blob_node(tmp_path / "bblobs") as bblobs,
        trio.open_nursery() as nursery,
    ):
        await befriend(alice, bob)
        gid = (await alice.client.groups.create("Trip")).group_id
        await alice.client.groups.invite(gid, bob.me)

        def joined() -> bool:
            try:
                return len(bob.client.groups.state(gid).members) == 2
            except NotAMember:
                return False

        await wait_for(bob, joined)
        alice.client.attachments.use_transfer(AttachmentTransfer(ablobs.client, [addr_of(svc)]))
        bob.client.attachments.use_transfer(AttachmentTransfer(bblobs.client))
        async with bob.client.events() as events:
            mid = await alice.client.attachments.send_group(
                gid, [(aiter_chunks(data), FileInfo("map.bin"))], caption="the map"
            )
            with trio.fail_after(60):
                while True:
                    e = await events.receive()
                    if isinstance(e, ev.AttachmentReady):
                        break
        assert e.ok and e.chat == f"group:{gid.hex()}" and e.message_id == mid
        rows = bob.client.attachments.attachments(mid.encode())
        assert [(r.ref.name, r.state) for r in rows] == [("map.bin", "ready")]
        got = b"".join([c async for c in bob.client.attachments.open(mid.encode(), 0)])
        assert got == data
        texts = [m.text for _, m in bob.client.groups.messages(gid)]
        assert "the map" in texts

        # the group's picture, an attachment too (same people, nodes and group)
        await check_group_pictures(tmp_path, alice, bob, svc, bblobs, gid, nursery)
        nursery.cancel_scope.cancel()  # the API servers it started
