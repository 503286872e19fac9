"""The red-envelope table against a peer who floods it with cards (sans chain): the
table stays bounded when every row is still open, our own envelopes always go in
(their refunds depend on it), and the watcher's round puts ours first and then the
least recently looked at, so cards that fail every look cannot starve the others;
a copy forwarded from another chat first does not keep the real card out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from boxless.client import redenvelope_store as rs
from boxless.storage.userdb import KdfParams, UserDB, create_user_db, migration_files


def _db(tmp_path: Path) -> UserDB:
    u = create_user_db(tmp_path / "user.db", "red envelope flood", KdfParams(1024, 1, 1))
    u.migrate("redenvelopes", migration_files("boxless.client", "migrations_redenvelopes"))
    return u


def _row(i: int, outgoing: bool = False, state: str = "open") -> rs.EnvelopeRow:
    return rs.EnvelopeRow(
        i.to_bytes(32, "big"), "group:" + "ab" * 16, f"m{i}", b"\x0e" * 32, outgoing, b"{}",
        state, None, "", 1_000 + i,
    )  # fmt: skip


def test_a_flood_of_open_cards_stays_bounded_and_ours_go_in(tmp_path: Path) -> None:
    u = _db(tmp_path)
    limit = 20
    with u.transaction() as cur:
        assert all(rs.add(cur, _row(i), limit) for i in range(limit))  # Mallory's, all open
        assert not rs.add(cur, _row(100), limit)  # full of open cards: a peer's new one waits
        assert rs.add(cur, _row(101, outgoing=True), limit)  # ours is always kept
        count = cur.execute("SELECT count(*) FROM redenvelope").fetchone()[0]
        assert count == limit + 1
        rs.update(cur, (3).to_bytes(32, "big"), 5_000, state="done")  # one finished
        rs.update(cur, (4).to_bytes(32, "big"), 5_000, state="done")
        assert rs.add(cur, _row(102), limit)  # finished rows make room, oldest first
        assert rs.get(cur, (3).to_bytes(32, "big")) is None
        assert rs.get(cur, (4).to_bytes(32, "big")) is None  # down to the limit again
        count = cur.execute("SELECT count(*) FROM redenvelope").fetchone()[0]
        assert count == limit
    u.close()


def test_the_watchers_round_is_ours_first_then_least_recently_looked_at(tmp_path: Path) -> None:
    u = _db(tmp_path)
    with u.transaction() as cur:
        for i in range(5):
            rs.add(cur, _row(i))  # cards that fail every look (a contract with no code...)
        rs.add(cur, _row(9))  # a genuine card from a member, arrived last
        rs.add(cur, _row(10, outgoing=True))  # our envelope, to relay and refund
    looked: list[int] = []
    for tick in range(6):  # one incoming slot a tick: each of the 6 once
        with u.transaction() as cur:
            batch = rs.open_envelopes(cur, 2)
            for row in batch:
                rs.touch(cur, row.envelope_id, 10_000 + tick)
        looked.append(int.from_bytes(batch[0].envelope_id, "big"))
        assert batch[0].outgoing  # ours every tick
        looked += [int.from_bytes(r.envelope_id, "big") for r in batch[1:]]
    assert sorted(i for i in looked if i != 10) == [0, 1, 2, 3, 4, 9]  # 9 is not starved
    u.close()


def test_a_card_forwarded_first_from_another_chat_does_not_poison_the_real_one(
    tmp_path: Path,
) -> None:
    """Mallory forwards Alice's group card to Bob 1:1 before Bob gets it in the group:
    the copy is kept refused, and the real card, arriving later in its own chat,
    replaces it (a refused row never blocks the card it copies)."""
    u = _db(tmp_path)
    env_id = (7).to_bytes(32, "big")
    forwarded = rs.EnvelopeRow(env_id, "contact:" + "0e" * 32, "m-fwd", b"\x0e" * 32, False,
                               b"{}", "open", None, "this envelope was made for another chat", 1)  # fmt: skip
    real = rs.EnvelopeRow(env_id, "group:" + "ab" * 16, "m-real", b"\x0a" * 32, False, b"{}",
                          "open", None, "", 2)  # fmt: skip
    with u.transaction() as cur:
        assert rs.add(cur, forwarded)
        assert rs.add(cur, real)
        assert rs.get(cur, env_id) == real
        assert not rs.add(cur, forwarded)  # and a refused copy never replaces a good row
        assert not rs.add(cur, replace(real, message_id="m-again"))  # first good one stays
        assert rs.get(cur, env_id) == real
    u.close()
