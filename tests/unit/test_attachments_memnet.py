"""Attachments messages between real clients on the in-memory network (virtual time)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.blobs.cid import Cid
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentRef
from boxless.chat.topics import contact_topic
from boxless.crypto.sealed import seal
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import befriend, memnet, settle, wait_for, wall, wall_ns

PEER = "/ip4/127.0.0.1/tcp/60000/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def _body(name: str) -> env.Attachments:
    ref = AttachmentRef(
        cid=bytes(Cid.of(0x55, name.encode())),
        key=b"k" * 32,
        plaintext_sha256=hashlib.sha256(b"p").digest(),
        ciphertext_sha256=hashlib.sha256(b"c").digest(),
        size=10,
        mime="application/pdf",
        name=name,
        peers=(PEER,),
    )
    return env.Attachments((ref,))


async def test_a_contacts_files_are_listed_a_strangers_are_dropped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bob", "mallory")) as (_net, (alice, bob, mallory)):
        await befriend(alice, bob)
        # Mallory is no contact of Alice: her Attachments body, properly sealed, is gated
        bundle = alice.account.device.bundle(wall())
        plaintext = env.encode(
            env.new_message(_body("virus.pdf"), lamport=1, sent_at_ms=int(wall() * 1000))
        )
        channel = mallory.client.channel
        with channel.sessions.transaction():
            olm = channel.sessions.encrypt(bundle, plaintext)
        sealed = seal(
            bundle.sealing_key,
            sender_identity_key=mallory.me,
            sender_device_key=channel.my_device_key,
            ciphertext=olm,
        )
        await mallory.transport.send(
            WakuMessage(payload=sealed, content_topic=contact_topic(alice.me), timestamp=wall_ns())
        )
        # Bob, a contact, sends the same kind of body through his outbox (no blob service
        # needed to queue a descriptor he already has)
        with bob.client.db.transaction() as cur:
            mid = bob.client.conversations.queue_in(cur, bob.contact(alice), _body("plan.pdf"))  # type: ignore[arg-type]
        await wait_for(alice, lambda: "📎 plan.pdf" in alice.texts(bob))
        await settle(5.0)
        rows = alice.client.attachments.attachments(mid)
        assert [(r.ref.name, r.state, r.outgoing) for r in rows] == [("plan.pdf", "remote", False)]
        assert alice.contact(mallory) is None
        with alice.client.db.transaction() as cur:
            n = cur.execute("SELECT COUNT(*) FROM client_attachments").fetchone()[0]
        assert n == 1  # nothing of Mallory's
        # no blob service: nothing is fetched, the row waits
        assert alice.client.attachments.attachment(mid, 0).state == "remote"
        with pytest.raises(Exception, match="blob service"):
            await alice.client.attachments.download(mid, 0)
