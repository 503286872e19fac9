"""Moments outlive the store: real clients (memnet, a store that keeps 3 s), real blob hosts.

Alice posts to all her contacts and to "only Bob"; the content is pinned as a
blob on her service node. The store forgets it. Carol becomes Alice's contact
afterwards (a late joiner): she gets the key of the post for everyone (not of
the "only Bob" one), fetches its content by content address from the blob
host, and reads it; her reader key then brings Alice's next post in one
shares message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from boxless.blobs import PinPolicy
from boxless.chat.moment import content_topic
from boxless.client.attachment_transfer import AttachmentTransfer
from boxless.client.moments_core import AudienceMode
from tests.blob_fixtures import addr_of, blob_node
from tests.memnet_fixtures import Person, befriend, memnet, wait_for

pytestmark = pytest.mark.trio

RETENTION_S = 3


def _texts(p: Person) -> list[str]:
    return sorted(v.post.content.text for v in p.client.moments.feed() if v.post.content)


async def test_a_late_joiner_reads_a_post_the_store_forgot(tmp_path: Path) -> None:
    async with (
        memnet(tmp_path, ("alice", "bob", "carol"), max_age_ns=RETENTION_S * 10**9) as (
            net,
            (alice, bob, carol),
        ),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ab") as ab,
        blob_node(tmp_path / "cb") as cb,
    ):
        await befriend(alice, bob)
        alice.client.attachments.use_transfer(AttachmentTransfer(ab.client, [addr_of(svc)]))
        carol.client.attachments.use_transfer(AttachmentTransfer(cb.client))
        await alice.client.moments.post("for everyone, kept")
        await alice.client.moments.post("only for Bob", audience=AudienceMode.ONLY, chosen=[bob.me])
        await wait_for(bob, lambda: len(_texts(bob)) == 2)
        # the service node keeps both posts sealed: no text, no audience, no identity in it
        kept = b"".join(f.read_bytes() for f in (tmp_path / "svc").rglob("*") if f.is_file())
        assert len(kept) > 1000  # it does hold the pinned posts
        for p in (alice, bob, carol):
            assert bytes(p.me) not in kept and p.me.hex().encode() not in kept
        assert b"for everyone, kept" not in kept and b"only for Bob" not in kept
        with alice.client.db.transaction() as cur:
            cur.execute("SELECT post_key FROM moment_posts WHERE mine = 1")
            topics = [content_topic(bytes(r[0])) for r in cur.fetchall()]

        await trio.sleep(RETENTION_S + 0.5)
        await befriend(alice, carol)  # its messages make the store prune
        assert all(net.stored(t) == [] for t in topics)  # the store forgot both posts

        assert await alice.client.moments.welcome() == 1  # Carol: keys for what she may see
        with trio.fail_after(30):
            await wait_for(carol, lambda: _texts(carol) == ["for everyone, kept"])
        assert await alice.client.moments.welcome() == 0  # once
        assert carol.client.moments.topics()  # she reads Alice's feed from now on

        await alice.client.moments.post("the next one, by shares")
        await wait_for(carol, lambda: "the next one, by shares" in _texts(carol))
        assert "only for Bob" not in _texts(carol)
