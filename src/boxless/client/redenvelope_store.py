"""All the SQL of red envelopes in chat (``client/migrations_redenvelopes/``).

Each function runs inside the caller's transaction (``cur``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boxless.client.store import Cursor

MAX_ENVELOPES = 10_000  # rows a peer can make us keep; the oldest finished go first


@dataclass(frozen=True, slots=True)
class EnvelopeRow:
    envelope_id: bytes
    chat: str
    message_id: str
    author: bytes
    outgoing: bool
    card: bytes
    state: str
    my_amount: int | None
    reason: str
    created_ms: int


_COLS = (
    "envelope_id, chat, message_id, author, outgoing, card, state, my_amount, reason, created_ms"
)


def _row(r: Any) -> EnvelopeRow:
    amount = r[7]
    return EnvelopeRow(
        bytes(r[0]),
        str(r[1]),
        str(r[2]),
        bytes(r[3]),
        bool(r[4]),
        bytes(r[5]),
        str(r[6]),
        None if amount is None else int(str(amount)),
        str(r[8]),
        int(r[9]),
    )


def add(cur: Cursor, row: EnvelopeRow, limit: int = MAX_ENVELOPES) -> bool:
    """Store a card once (False: this envelope is known already, or the table is
    full of open envelopes and the card is a peer's). The oldest finished rows make
    room; our own envelopes are always kept (their refunds depend on it)."""
    count = cur.execute("SELECT count(*) FROM redenvelope").fetchone()[0]
    if count >= limit:
        cur.execute(
            "DELETE FROM redenvelope WHERE envelope_id IN (SELECT envelope_id FROM redenvelope"
            " WHERE state != 'open' ORDER BY created_ms LIMIT ?)",
            (count - limit + 1,),
        )
        count -= cur.rowcount
        if count >= limit and not row.outgoing:
            return False  # a flood of open cards: the peer's new ones wait, ours go in
    values = (row.envelope_id, row.chat, row.message_id, row.author, int(row.outgoing), row.card,
              row.state, None if row.my_amount is None else str(row.my_amount), row.reason,
              row.created_ms, row.created_ms)  # fmt: skip
    cur.execute(
        f"INSERT OR IGNORE INTO redenvelope ({_COLS}, updated_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        values,
    )
    if cur.rowcount or row.reason:
        return bool(cur.rowcount)
    # Known, but refused: a copy forwarded from another chat (or a lying card) came
    # first. The card that arrives in the chat it names takes its place; otherwise a
    # member who forwarded it first would keep us from ever opening the real one.
    cur.execute(
        f"UPDATE redenvelope SET ({_COLS}, updated_ms) = (?,?,?,?,?,?,?,?,?,?,?)"
        " WHERE envelope_id = ? AND reason != '' AND outgoing = 0",
        (*values, row.envelope_id),
    )
    return bool(cur.rowcount)


def get(cur: Cursor, envelope_id: bytes) -> EnvelopeRow | None:
    r = cur.execute(f"SELECT {_COLS} FROM redenvelope WHERE envelope_id = ?", (envelope_id,))
    found = r.fetchone()
    return None if found is None else _row(found)


def of_chat(cur: Cursor, chat: str, limit: int = 200) -> list[EnvelopeRow]:
    rows = cur.execute(
        f"SELECT {_COLS} FROM redenvelope WHERE chat = ? ORDER BY created_ms DESC LIMIT ?",
        (chat, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def open_envelopes(cur: Cursor, limit: int) -> list[EnvelopeRow]:
    """The watcher's next ``limit`` open envelopes: ours first (their relays and
    refunds), then the least recently looked at (a peer's cards that fail every
    look cannot keep the others waiting)."""
    rows = cur.execute(
        f"SELECT {_COLS} FROM redenvelope WHERE state = 'open'"
        " ORDER BY outgoing DESC, updated_ms, created_ms LIMIT ?",
        (limit,),
    ).fetchall()
    return [_row(r) for r in rows]


def touch(cur: Cursor, envelope_id: bytes, now_ms: int) -> None:
    """Looked at now (nothing learnt): the watcher's round goes on to the others."""
    cur.execute(
        "UPDATE redenvelope SET updated_ms = ? WHERE envelope_id = ?", (now_ms, envelope_id)
    )


def recent(cur: Cursor, limit: int) -> list[EnvelopeRow]:
    """The newest finished envelopes without a reason (what the UI may show)."""
    rows = cur.execute(
        f"SELECT {_COLS} FROM redenvelope WHERE state = 'done' AND reason = ''"
        " ORDER BY created_ms DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [_row(r) for r in rows]


def update(
    cur: Cursor, envelope_id: bytes, now_ms: int, *, state: str | None = None,
    my_amount: int | None = None, reason: str | None = None,
) -> None:  # fmt: skip
    if state is not None:
        cur.execute("UPDATE redenvelope SET state = ?, updated_ms = ? WHERE envelope_id = ?",
                    (state, now_ms, envelope_id))  # fmt: skip
    if my_amount is not None:
        cur.execute("UPDATE redenvelope SET my_amount = ?, updated_ms = ? WHERE envelope_id = ?",
                    (str(my_amount), now_ms, envelope_id))  # fmt: skip
    if reason is not None:
        cur.execute("UPDATE redenvelope SET reason = ?, updated_ms = ? WHERE envelope_id = ?",
                    (reason, now_ms, envelope_id))  # fmt: skip


def add_opened(cur: Cursor, envelope_id: bytes, member: bytes, recipient: bytes) -> bool:
    """A member's "I opened it with this address": the first per member and per
    address counts (a second address of the same member, or someone claiming
    another's address, is ignored)."""
    cur.execute(
        "INSERT OR IGNORE INTO redenvelope_opened (envelope_id, member, recipient) VALUES (?,?,?)",
        (envelope_id, member, recipient),
    )
    return bool(cur.rowcount)


def opened(cur: Cursor, envelope_id: bytes) -> list[tuple[bytes, bytes, bool]]:
    """(member, recipient address, relayed) for the envelope."""
    rows = cur.execute(
        "SELECT member, recipient, relayed FROM redenvelope_opened WHERE envelope_id = ?",
        (envelope_id,),
    ).fetchall()
    return [(bytes(m), bytes(a), bool(x)) for m, a, x in rows]


def mark_relayed(cur: Cursor, envelope_id: bytes, recipient: bytes) -> None:
    cur.execute(
        "UPDATE redenvelope_opened SET relayed = 1 WHERE envelope_id = ? AND recipient = ?",
        (envelope_id, recipient),
    )


def contract(cur: Cursor, chain_id: int) -> bytes | None:
    r = cur.execute("SELECT address FROM redenvelope_contract WHERE chain_id = ?", (chain_id,))
    found = r.fetchone()
    return None if found is None else bytes(found[0])


def set_contract(cur: Cursor, chain_id: int, address: bytes) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO redenvelope_contract (chain_id, address) VALUES (?, ?)",
        (chain_id, address),
    )
