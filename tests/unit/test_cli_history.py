"""`boxless history --all` / `group history --all` page back through a chat.

The pager runs against an API double with the node's own paging rule (the
newest ``limit`` with ``lamport < before``, oldest first), including what a
1:1 chat really has: one message each way at the same Lamport time, across a
page boundary. Paging by ``lamport`` alone would drop one of them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from boxless.cli.history import history


class Paged:
    """GET .../messages?limit=&before= over a list, as api/app.py pages it."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda m: (m["lamport"], m["id"]))
        self.calls = 0

    def call(self, method: str, path: str) -> list[dict[str, Any]]:
        assert method == "GET"
        self.calls += 1
        q = parse_qs(urlsplit(path).query)
        limit = int(q["limit"][0])
        before = int(q["before"][0]) if "before" in q else 2**62
        older = [m for m in self.rows if m["lamport"] < before]
        return older[-limit:]


def chat(n: int) -> list[dict[str, Any]]:
    rows = [{"id": f"out{i:05d}", "lamport": i} for i in range(n)]
    # Their messages share Lamport times with ours (each side ticks its own clock).
    rows += [{"id": f"in{i:05d}", "lamport": i} for i in range(0, n, 7)]
    return rows


def test_all_pages_back_to_the_first_message_without_a_gap() -> None:
    rows = chat(1234)
    api = Paged(rows)
    got = history(
        api, "/contacts/k/messages", lambda m: m["lamport"] + 1, limit=50, everything=True
    )  # type: ignore[arg-type]
    assert [m["id"] for m in got] == [m["id"] for m in api.rows]
    assert api.calls <= len(rows) // 499 + 2


def test_one_page_and_before() -> None:
    api = Paged(chat(100))
    cursor = lambda m: m["lamport"] + 1  # noqa: E731
    newest = history(api, "/x/messages", cursor, limit=10)  # type: ignore[arg-type]
    assert newest == api.rows[-10:]
    older = history(api, "/x/messages", cursor, limit=5, before=90)  # type: ignore[arg-type]
    assert older == [m for m in api.rows if m["lamport"] < 90][-5:]
    assert api.calls == 2
