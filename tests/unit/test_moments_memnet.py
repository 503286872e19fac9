"""Moments between five real clients on the in-memory network (virtual time).

A-B, A-C, B-C, A-D, A-E are contacts. A posts to "all except D" with three
photos: B, C and E read it, D gets nothing. B likes, C comments: B sees C's
comment (they are contacts), E (A's contact only) sees neither. Attackers: D
(not in the audience) comments, E forges a relay, B acts on a post that does
not exist; all dropped and counted. A deletes: gone for everyone. The store
holds no plaintext, no audience, no names.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio
import trio.testing

from boxless.blobs.cid import Cid
from boxless.chat.attachment import AttachmentKind, AttachmentRef
from boxless.chat.moment import ActKind, MomentAct, MomentKey, MomentRelay
from boxless.client.moments_core import AudienceMode
from tests.memnet_fixtures import Person, befriend, memnet, settle, wait_for


def _photo(i: int) -> AttachmentRef:
    return AttachmentRef(
        cid=bytes(Cid.of(0x55, f"photo{i}".encode())),
        key=os.urandom(32),
        plaintext_sha256=hashlib.sha256(b"p%d" % i).digest(),
        ciphertext_sha256=hashlib.sha256(b"c%d" % i).digest(),
        size=1000 + i,
        mime="image/jpeg",
        name=f"beach{i}.jpg",
        kind=AttachmentKind.IMAGE,
    )


def _feed(p: Person) -> list[tuple[str, list[bytes], list[tuple[bytes, str]]]]:
    return [
        (
            v.post.content.text if v.post.content else "",
            v.likes,
            [(c.author, c.text) for c in v.comments],
        )
        for v in p.client.moments.feed()
    ]


async def test_moments_audience_mutual_comments_attackers_and_delete(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    names = ("alice", "bob", "carol", "dave", "erin")
    async with memnet(tmp_path, names) as (net, people):
        a, b, c, d, e = people
        for x, y in ((a, b), (a, c), (b, c), (a, d), (a, e)):
            await befriend(x, y)
        text = "Sunset at the beach, secret-words-42"
        post_id = await a.client.moments.post(
            text,
            place="Brighton",
            media=[_photo(i) for i in range(3)],
            audience=AudienceMode.EXCEPT,
            chosen=[d.me],
        )
        for viewer in (b, c, e):
            await wait_for(viewer, lambda v=viewer: [t for t, _, _ in _feed(v)] == [text])
        view = b.client.moments.feed()[0]
        assert view.post.content is not None
        assert [m.name for m in view.post.content.media] == [f"beach{i}.jpg" for i in range(3)]
        assert view.post.content.place == "Brighton" and view.post.poster == a.me
        assert b.client.moments.unread() == 1
        await settle(30)
        assert _feed(d) == [] and d.client.moments.unread() == 0  # excluded: no key at all

        await b.client.moments.like(post_id)
        comment = "Wish I were there, comment-words-77"
        cid = await c.client.moments.comment(post_id, comment)
        await wait_for(a, lambda: _feed(a)[0][1:] == ([b.me], [(c.me, comment)]))
        await wait_for(b, lambda: _feed(b)[0][2] == [(c.me, comment)])  # mutual: shown
        await wait_for(c, lambda: _feed(c)[0][1] == [b.me])
        await settle(30)
        assert _feed(e)[0][1:] == ([], [])  # A's contact, not B's or C's: sees neither

        # attackers: D (not in the audience) comments; E forges a relay (to A, the poster);
        # B comments on a post that does not exist
        d_row, e_row, b_row = d.contact(a), e.contact(b), b.contact(a)
        assert d_row is not None and b_row is not None and e_row is None  # E and B: no contacts
        with d.client.db.transaction() as cur:
            d.client.conversations.queue_in(
                cur, d_row, MomentAct(post_id, os.urandom(16), ActKind.COMMENT, "let me in")
            )
            # a key for content that is nowhere: kept as failed, never shown
            d.client.conversations.queue_in(
                cur, d_row, MomentKey(os.urandom(16), os.urandom(32), os.urandom(32), 1)
            )
        forged = MomentRelay(e.me, MomentAct(post_id, os.urandom(16), ActKind.COMMENT, "forged"), 1)
        e_to_a = e.contact(a)
        assert e_to_a is not None
        with e.client.db.transaction() as cur:  # E reaches only A: a relay to the poster
            e.client.conversations.queue_in(cur, e_to_a, forged)
        with b.client.db.transaction() as cur:
            b.client.conversations.queue_in(
                cur, b_row, MomentAct(os.urandom(16), os.urandom(16), ActKind.LIKE)
            )
        await settle(60)
        with a.client.db.transaction() as cur:
            states = cur.execute("SELECT state FROM moment_posts WHERE poster = ?", (d.me,))
            assert [r[0] for r in states.fetchall()] == ["failed"]
        assert await a.client.moments.refetch(every_s=0) == 0
        drops = a.client.moments.drops.as_dict()
        assert drops.get("not_audience") == 1 and drops.get("no_such_post") == 1
        assert drops.get("not_poster") == 1  # a relay to the poster itself
        assert [t for _, _, cs in _feed(a) for _, t in cs] == [comment]

        # C deletes the comment; B's copy follows
        await c.client.moments.delete_comment(post_id, cid)
        await wait_for(b, lambda: _feed(b)[0][2] == [])

        # the network saw no plaintext, no audience, no names
        secrets = [text.encode(), comment.encode(), b"Brighton", b"beach0.jpg"]
        secrets += [p.name.title().encode() for p in people] + [p.me for p in people]
        payloads = [
            row.message.payload for topic in net._store.by_topic for row in net.stored(topic)
        ]
        assert len(payloads) > 10
        for payload in payloads:
            for secret in secrets:
                assert secret not in payload

        await a.client.moments.delete(post_id)
        for viewer in (b, c, e):
            await wait_for(viewer, lambda v=viewer: _feed(v) == [])
        assert _feed(a) == []
