"""All the SQL of Moments (:mod:`boxless.client.moments`); migration component ``moments``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boxless.chat.moment import MomentContent
from boxless.client.store import Cursor

__all__ = [
    "NoticeRow",
    "add_notice",
    "forget_notices",
    "mark_notices_read",
    "notices",
    "unread_notices",
    "MyPost",
    "add_to_audience",
    "content_blob",
    "my_live_posts",
    "set_content_blob",
    "accepted_contact_keys",
    "CommentRow",
    "FeedRow",
    "PostRow",
    "add_comment",
    "add_post",
    "audience",
    "comment_author",
    "comments_of",
    "count_acts",
    "delete_comment",
    "delete_readers",
    "feed",
    "feeds",
    "get_post",
    "get_setting",
    "likes_of",
    "mark_read",
    "put_audience",
    "put_feed",
    "put_reader",
    "readers",
    "set_content",
    "set_like",
    "set_post_state",
    "set_setting",
    "trim_poster",
    "unread_count",
]


@dataclass(frozen=True, slots=True)
class PostRow:
    post_id: bytes
    poster: bytes
    mine: bool
    key: bytes
    message_hash: bytes
    posted_at_ms: int
    visible_until_ms: int
    state: str
    content: MomentContent | None
    received_at_ms: int
    unread: bool


@dataclass(frozen=True, slots=True)
class CommentRow:
    act_id: bytes
    post_id: bytes
    author: bytes
    text: str
    reply_to: bytes | None
    at_ms: int


_POST_COLS = (
    "post_id, poster, mine, post_key, message_hash, posted_at_ms, visible_until_ms, state, "
    "content, received_at_ms, unread"
)


def _post(r: tuple[Any, ...]) -> PostRow:
    return PostRow(
        bytes(r[0]),
        bytes(r[1]),
        bool(r[2]),
        bytes(r[3]),
        bytes(r[4]),
        int(r[5]),
        int(r[6]),
        str(r[7]),
        None if r[8] is None else MomentContent.decode(bytes(r[8])),
        int(r[9]),
        bool(r[10]),
    )


def add_post(cur: Cursor, p: PostRow) -> bool:
    """Insert a post; False if its id is already known (a repeated key share)."""
    cur.execute(
        f"INSERT OR IGNORE INTO moment_posts ({_POST_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            p.post_id,
            p.poster,
            int(p.mine),
            p.key,
            p.message_hash,
            p.posted_at_ms,
            p.visible_until_ms,
            p.state,
            None if p.content is None else p.content.encode(),
            p.received_at_ms,
            int(p.unread),
        ),
    )
    return bool(cur.rowcount)


def get_post(cur: Cursor, post_id: bytes) -> PostRow | None:
    cur.execute(f"SELECT {_POST_COLS} FROM moment_posts WHERE post_id = ?", (post_id,))
    r = cur.fetchone()
    return None if r is None else _post(r)


def set_content(cur: Cursor, post_id: bytes, content: MomentContent) -> None:
    cur.execute(
        "UPDATE moment_posts SET content = ?, state = 'ready' WHERE post_id = ?",
        (content.encode(), post_id),
    )


def set_post_state(cur: Cursor, post_id: bytes, state: str) -> None:
    """Change a post's state; ``deleted`` also drops its content, key, likes and comments."""
    if state == "deleted":
        cur.execute(
            "UPDATE moment_posts SET state = 'deleted', content = NULL, post_key = zeroblob(32), "
            "unread = 0 WHERE post_id = ?",
            (post_id,),
        )
        cur.execute("DELETE FROM moment_likes WHERE post_id = ?", (post_id,))
        cur.execute("DELETE FROM moment_comments WHERE post_id = ?", (post_id,))
        cur.execute("DELETE FROM moment_notices WHERE post_id = ?", (post_id,))
    else:
        cur.execute("UPDATE moment_posts SET state = ? WHERE post_id = ?", (state, post_id))


def feed(
    cur: Cursor, *, poster: bytes | None, before_ms: int | None, limit: int, now_ms: int
) -> list[PostRow]:
    """Readable posts newest first (all posters, or one), inside their visibility window."""
    sql = f"SELECT {_POST_COLS} FROM moment_posts WHERE state = 'ready' "
    sql += "AND (visible_until_ms = 0 OR visible_until_ms > ? OR mine = 1) "
    args: list[object] = [now_ms]
    if poster is not None:
        sql += "AND poster = ? "
        args.append(poster)
    if before_ms is not None:
        sql += "AND posted_at_ms < ? "
        args.append(before_ms)
    sql += "ORDER BY posted_at_ms DESC, post_id LIMIT ?"
    args.append(limit)
    cur.execute(sql, tuple(args))
    return [_post(r) for r in cur.fetchall()]


def trim_poster(cur: Cursor, poster: bytes, keep: int) -> int:
    """Forget a poster's oldest posts beyond ``keep``; how many went."""
    cur.execute(
        "SELECT post_id FROM moment_posts WHERE poster = ? AND mine = 0 "
        "ORDER BY posted_at_ms DESC, post_id LIMIT -1 OFFSET ?",
        (poster, keep),
    )
    old = [bytes(r[0]) for r in cur.fetchall()]
    for post_id in old:
        cur.execute("DELETE FROM moment_posts WHERE post_id = ?", (post_id,))
        cur.execute("DELETE FROM moment_likes WHERE post_id = ?", (post_id,))
        cur.execute("DELETE FROM moment_comments WHERE post_id = ?", (post_id,))
    return len(old)


def put_audience(
    cur: Cursor,
    post_id: bytes,
    members: list[bytes],
    mode: str = "only",
    chosen: Sequence[bytes] = (),
) -> None:
    """Our post's audience, and the mode it was chosen by (who may join it later)."""
    cur.execute(
        "INSERT OR REPLACE INTO moment_audience_sets (post_id, members, mode, chosen) "
        "VALUES (?, ?, ?, ?)",
        (post_id, b"".join(sorted(members)), mode, b"".join(sorted(chosen))),
    )


def add_to_audience(cur: Cursor, post_id: bytes, member: bytes) -> None:
    """A contact who joined later (given the post's key since)."""
    members = audience(cur, post_id)
    if member not in members:
        cur.execute(
            "UPDATE moment_audience_sets SET members = ? WHERE post_id = ?",
            (b"".join(sorted([*members, member])), post_id),
        )


@dataclass(frozen=True, slots=True)
class MyPost:
    """One of our live posts, as a late joiner's key share needs it."""

    post: PostRow
    mode: str
    chosen: frozenset[bytes]
    blob: bytes


def my_live_posts(cur: Cursor, now_ms: int, limit: int) -> list[MyPost]:
    """Our posts not deleted and inside their window, newest first."""
    cur.execute(
        f"SELECT {', '.join('p.' + c.strip() for c in _POST_COLS.split(','))}, "
        "a.mode, a.chosen, p.content_blob FROM moment_posts p "
        "JOIN moment_audience_sets a ON a.post_id = p.post_id "
        "WHERE p.mine = 1 AND p.state = 'ready' AND (p.visible_until_ms = 0 OR p.visible_until_ms > ?) "
        "ORDER BY p.posted_at_ms DESC LIMIT ?",
        (now_ms, limit),
    )
    out = []
    for r in cur.fetchall():
        chosen = bytes(r[12])
        out.append(
            MyPost(
                _post(r[:11]),
                str(r[11]),
                frozenset(chosen[i : i + 32] for i in range(0, len(chosen), 32)),
                b"" if r[13] is None else bytes(r[13]),
            )
        )
    return out


def set_content_blob(cur: Cursor, post_id: bytes, blob: bytes) -> None:
    cur.execute("UPDATE moment_posts SET content_blob = ? WHERE post_id = ?", (blob, post_id))


def content_blob(cur: Cursor, post_id: bytes) -> bytes:
    cur.execute("SELECT content_blob FROM moment_posts WHERE post_id = ?", (post_id,))
    r = cur.fetchone()
    return b"" if r is None or r[0] is None else bytes(r[0])


def audience(cur: Cursor, post_id: bytes) -> list[bytes]:
    cur.execute("SELECT members FROM moment_audience_sets WHERE post_id = ?", (post_id,))
    r = cur.fetchone()
    raw = b"" if r is None else bytes(r[0])
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def in_audience(cur: Cursor, post_id: bytes, member: bytes) -> bool:
    return member in audience(cur, post_id)


def accepted_contact_keys(cur: Cursor) -> set[bytes]:
    """The identity keys of our accepted contacts (a read of the core's contacts table:
    posting to 500 contacts needs their keys, not 500 decoded rows)."""
    cur.execute("SELECT identity_key FROM client_contacts WHERE state = 'accepted'")
    return {bytes(r[0]) for r in cur.fetchall()}


def set_like(cur: Cursor, post_id: bytes, author: bytes, liked: bool, at_ms: int) -> bool:
    """Like or unlike; True if it changed anything."""
    if liked:
        cur.execute(
            "INSERT OR IGNORE INTO moment_likes (post_id, author, at_ms) VALUES (?, ?, ?)",
            (post_id, author, at_ms),
        )
    else:
        cur.execute("DELETE FROM moment_likes WHERE post_id = ? AND author = ?", (post_id, author))
    return bool(cur.rowcount)


def likes_of(cur: Cursor, post_id: bytes) -> list[tuple[bytes, int]]:
    cur.execute(
        "SELECT author, at_ms FROM moment_likes WHERE post_id = ? ORDER BY at_ms", (post_id,)
    )
    return [(bytes(r[0]), int(r[1])) for r in cur.fetchall()]


def add_comment(cur: Cursor, c: CommentRow) -> bool:
    cur.execute(
        "INSERT OR IGNORE INTO moment_comments (act_id, post_id, author, text, reply_to, at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (c.act_id, c.post_id, c.author, c.text, c.reply_to, c.at_ms),
    )
    return bool(cur.rowcount)


def comment_author(cur: Cursor, post_id: bytes, act_id: bytes) -> bytes | None:
    cur.execute(
        "SELECT author FROM moment_comments WHERE post_id = ? AND act_id = ?", (post_id, act_id)
    )
    r = cur.fetchone()
    return None if r is None else bytes(r[0])


def delete_comment(cur: Cursor, post_id: bytes, act_id: bytes) -> bool:
    cur.execute("DELETE FROM moment_comments WHERE post_id = ? AND act_id = ?", (post_id, act_id))
    return bool(cur.rowcount)


def comments_of(cur: Cursor, post_id: bytes) -> list[CommentRow]:
    cur.execute(
        "SELECT act_id, post_id, author, text, reply_to, at_ms FROM moment_comments "
        "WHERE post_id = ? ORDER BY at_ms, act_id",
        (post_id,),
    )
    return [
        CommentRow(
            bytes(r[0]),
            bytes(r[1]),
            bytes(r[2]),
            str(r[3]),
            None if r[4] is None else bytes(r[4]),
            int(r[5]),
        )
        for r in cur.fetchall()
    ]


def count_acts(cur: Cursor, post_id: bytes, author: bytes) -> tuple[int, int]:
    """(likes + comments on the post, comments by ``author`` on it)."""
    cur.execute("SELECT COUNT(*) FROM moment_likes WHERE post_id = ?", (post_id,))
    likes = int(cur.fetchone()[0])
    cur.execute(
        "SELECT COUNT(*), COALESCE(SUM(author = ?), 0) FROM moment_comments WHERE post_id = ?",
        (author, post_id),
    )
    total, mine = cur.fetchone()
    return likes + int(total), int(mine)


def mark_read(cur: Cursor) -> None:
    cur.execute("UPDATE moment_posts SET unread = 0 WHERE unread = 1")


def unread_count(cur: Cursor) -> int:
    cur.execute("SELECT COUNT(*) FROM moment_posts WHERE unread = 1 AND state = 'ready'")
    return int(cur.fetchone()[0])


def get_setting(cur: Cursor, name: str, default: Any) -> Any:
    cur.execute("SELECT value FROM moment_settings WHERE name = ?", (name,))
    r = cur.fetchone()
    return default if r is None else json.loads(str(r[0]))


def set_setting(cur: Cursor, name: str, value: Any) -> None:
    cur.execute(
        "INSERT INTO moment_settings (name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, json.dumps(value)),
    )


# -- keying: reader keys we gave (poster side) and feeds we read (reader side) -----------------


@dataclass(frozen=True, slots=True)
class FeedRow:
    poster: bytes
    epoch: int
    reader_key: bytes
    feed_secret: bytes
    topic: str


def readers(cur: Cursor) -> dict[bytes, tuple[bytes, int]]:
    """Each contact we gave a reader key: (its reader key, the feed epoch it has)."""
    cur.execute("SELECT member, reader_key, epoch FROM moment_readers")
    return {bytes(r[0]): (bytes(r[1]), int(r[2])) for r in cur.fetchall()}


def put_reader(cur: Cursor, member: bytes, reader_key: bytes, epoch: int) -> None:
    cur.execute(
        "INSERT INTO moment_readers (member, reader_key, epoch) VALUES (?, ?, ?) "
        "ON CONFLICT(member) DO UPDATE SET reader_key = excluded.reader_key, "
        "epoch = excluded.epoch",
        (member, reader_key, epoch),
    )


def delete_readers(cur: Cursor, members: list[bytes]) -> None:
    cur.executemany("DELETE FROM moment_readers WHERE member = ?", [(m,) for m in members])


def put_feed(cur: Cursor, row: FeedRow, keep: int) -> bool:
    """Keep a poster's feed keys (the newest ``keep`` epochs); False if older than those."""
    cur.execute(
        "SELECT epoch FROM moment_feeds WHERE poster = ? ORDER BY epoch DESC LIMIT ?",
        (row.poster, keep),
    )
    epochs = [int(r[0]) for r in cur.fetchall()]
    if len(epochs) >= keep and row.epoch < epochs[-1]:
        return False
    cur.execute(
        "INSERT INTO moment_feeds (poster, epoch, reader_key, feed_secret, topic) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(poster, epoch) DO UPDATE SET "
        "reader_key = excluded.reader_key, feed_secret = excluded.feed_secret, "
        "topic = excluded.topic",
        (row.poster, row.epoch, row.reader_key, row.feed_secret, row.topic),
    )
    cur.execute(
        "DELETE FROM moment_feeds WHERE poster = ? AND epoch NOT IN "
        "(SELECT epoch FROM moment_feeds WHERE poster = ? ORDER BY epoch DESC LIMIT ?)",
        (row.poster, row.poster, keep),
    )
    return True


def feeds(cur: Cursor, topic: str | None = None) -> list[FeedRow]:
    """The feeds we read (all, or those on one topic)."""
    sql = "SELECT poster, epoch, reader_key, feed_secret, topic FROM moment_feeds"
    cur.execute(sql + (" WHERE topic = ?" if topic else ""), (topic,) if topic else ())
    return [
        FeedRow(bytes(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), str(r[4])) for r in cur.fetchall()
    ]


# -- notifications ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeRow:
    id: int
    post_id: bytes
    kind: str  # like | comment | reply | mention
    actor: bytes
    text: str
    at_ms: int
    unread: bool


def add_notice(
    cur: Cursor, post_id: bytes, kind: str, actor: bytes, text: str, at_ms: int, keep: int
) -> None:
    """Note a like, comment, reply or mention for us; only the newest ``keep`` stay."""
    cur.execute(
        "INSERT INTO moment_notices (post_id, kind, actor, text, at_ms) VALUES (?, ?, ?, ?, ?)",
        (post_id, kind, actor, text, at_ms),
    )
    cur.execute(
        "DELETE FROM moment_notices WHERE id NOT IN "
        "(SELECT id FROM moment_notices ORDER BY id DESC LIMIT ?)",
        (keep,),
    )


def notices(cur: Cursor, limit: int) -> list[NoticeRow]:
    """Newest first, only for posts still readable."""
    cur.execute(
        "SELECT n.id, n.post_id, n.kind, n.actor, n.text, n.at_ms, n.unread FROM moment_notices n "
        "JOIN moment_posts p ON p.post_id = n.post_id AND p.state = 'ready' "
        "ORDER BY n.id DESC LIMIT ?",
        (limit,),
    )
    return [
        NoticeRow(int(r[0]), bytes(r[1]), str(r[2]), bytes(r[3]), str(r[4]), int(r[5]), bool(r[6]))
        for r in cur.fetchall()
    ]


def unread_notices(cur: Cursor) -> int:
    cur.execute(
        "SELECT COUNT(*) FROM moment_notices n JOIN moment_posts p ON p.post_id = n.post_id "
        "AND p.state = 'ready' WHERE n.unread = 1"
    )
    return int(cur.fetchone()[0])


def mark_notices_read(cur: Cursor) -> None:
    cur.execute("UPDATE moment_notices SET unread = 0 WHERE unread = 1")


def forget_notices(cur: Cursor, post_id: bytes, actor: bytes | None = None, kind: str = "") -> None:
    """A deleted post's notices (or an unlike's like notice)."""
    if actor is None:
        cur.execute("DELETE FROM moment_notices WHERE post_id = ?", (post_id,))
    else:
        cur.execute(
            "DELETE FROM moment_notices WHERE post_id = ? AND actor = ? AND kind = ?",
            (post_id, actor, kind),
        )
