"""Paging through a chat's history over the local API, for ``boxless history``
and ``boxless group history``: the newest page, or the page before a cursor,
or (``--all``) every page back to the first message, oldest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from boxless.cli.api_client import Api

PAGE = 500  # the API's largest page
MAX_PAGES = 2_000  # --all stops after this many pages (a million messages)


def history(
    api: Api,
    path: str,
    cursor: Callable[[dict[str, Any]], int],
    *,
    limit: int,
    before: int | None = None,
    everything: bool = False,
) -> list[dict[str, Any]]:
    """Messages of ``path`` (".../messages"), oldest first: the newest ``limit``
    (before ``before``), or with ``everything`` all of them. ``cursor(m)`` is the
    ``before`` value that asks for what precedes message ``m``."""
    size = PAGE if everything else limit
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        query = f"?limit={size}" + (f"&before={before}" if before is not None else "")
        got = api.call("GET", path + query)
        page = [m for m in got if m["id"] not in seen]
        seen.update(m["id"] for m in page)
        out[:0] = page
        if not everything or len(got) < size or not page:
            return out
        before = cursor(page[0])
    return out
