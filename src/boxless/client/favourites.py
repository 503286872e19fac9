"""Favourites (WeChat's Favorites): copies of saved messages, listed newest first and
searchable; a saved message survives its later deletion (the copy is ours)."""

from __future__ import annotations

from collections.abc import Callable

from boxless.client import events as ev
from boxless.client import search_store as ss
from boxless.client.search import Search
from boxless.client.search_query import parse_query
from boxless.errors import UsageError
from boxless.storage.userdb import UserDB

__all__ = ["MAX_FAVOURITES", "Favourites", "NoSuchFavourite"]

MAX_FAVOURITES = 10_000


class NoSuchFavourite(UsageError):
    """No favourite has that id (removed already?)."""


class Favourites:
    def __init__(
        self,
        database: UserDB,
        search: Search,
        *,
        clock: Callable[[], float],
        emit: Callable[[ev.Event], None] = lambda event: None,
    ) -> None:
        self.db = database
        self.search = search
        self.clock = clock
        self.emit = emit  # FavouritesChanged: the pane, and our other devices (ownsync)

    def add(self, chat: str, message_id: str) -> ss.Favourite:
        """Save a copy of a message; saving it again returns the first copy."""
        src = self.search.source(chat, message_id)
        fav = ss.Favourite(
            0,
            src.chat.name,
            src.id,
            src.text,
            src.sender.hex(),
            src.sender_name,
            src.sent_at_ms,
            int(self.clock() * 1000),
        )
        with self.db.transaction() as cur:
            if ss.count_favourites(cur) >= MAX_FAVOURITES:
                raise UsageError(
                    f"you have {MAX_FAVOURITES} favourites, the most kept: remove some first"
                )
            saved = ss.add_favourite(cur, fav)
        self.emit(ev.FavouritesChanged(saved.chat, saved.message_id, True))
        return saved

    def list(self, q: str = "", limit: int = 200) -> list[ss.Favourite]:
        """Newest saved first; with ``q``, those whose text or sender has every word."""
        query = parse_query(q) if q.strip() else None
        with self.db.transaction() as cur:
            return ss.list_favourites(cur, query, min(max(limit, 1), 1000))

    def remove(self, fav_id: int) -> None:
        with self.db.transaction() as cur:
            fav = ss.get_favourite(cur, fav_id)
            if fav is None or not ss.delete_favourite(cur, fav_id):
                raise NoSuchFavourite("no such favourite (removed already?)")
        self.emit(ev.FavouritesChanged(fav.chat, fav.message_id, False))
