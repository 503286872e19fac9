"""Which "ask again" requests for a lost file we answer (sans-IO, ``now`` passed in).

A contact who got a file from us may ask us to pin it again when the network lost
it (client/attachments.py checks that the file is one we sent *them*). Each ask
that passes costs us a pin on every service node (which fetch the whole file
from us), so a contact's asks are limited twice: one re-pin per file per
:data:`ASK_EVERY_S`, and per contact at most :data:`ASK_BURST` re-pins, then one
per :data:`CONTACT_EVERY_S` — asking for each of a hundred files we sent costs
the asker the same wait as asking for one a hundred times. Both tables are
bounded; an entry that is forgotten only lets its asker wait less than it
would otherwise have (never more than the burst at once).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Final

from boxless.buckets import Buckets

__all__ = ["ASK_BURST", "ASK_EVERY_S", "CONTACT_EVERY_S", "AskLimiter"]

ASK_EVERY_S: Final = 60.0  # one re-pin per file this often
ASK_BURST: Final = 3  # re-pins a contact may ask for at once
CONTACT_EVERY_S: Final = 60.0  # then one more this often
MAX_FILES: Final = 256
MAX_CONTACTS: Final = 1024


class AskLimiter:
    """Per-file and per-contact limits on re-pins asked for (see the module doc)."""

    def __init__(self) -> None:
        self.refused: Counter[str] = Counter()
        self._files: OrderedDict[tuple[bytes, int], float] = OrderedDict()
        self._contacts = Buckets(ASK_BURST, CONTACT_EVERY_S, MAX_CONTACTS)

    def allow(self, contact: bytes, file: tuple[bytes, int], now: float) -> str | None:
        """None if ``contact``'s ask about ``file`` gets a re-pin now, else why not."""
        last = self._files.get(file)
        if last is not None and now - last < ASK_EVERY_S:
            return self._refuse("this file was pinned again less than a minute ago")
        if not self._contacts.take(contact, now):
            return self._refuse("too many files asked for: one more a minute")
        self._files.pop(file, None)
        self._files[file] = now
        while len(self._files) > MAX_FILES:
            self._files.popitem(last=False)
        return None

    def _refuse(self, why: str) -> str:
        self.refused[why] += 1
        return why
