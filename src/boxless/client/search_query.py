"""Untrusted search text -> a safe query; chat names (``contact:<hex>``, ``group:<hex>``).

Theory of operation
-------------------
The index (``client/migrations_search``) uses FTS5's trigram tokenizer: a text
is found by any substring of three or more characters, whatever the script
(Chinese has no spaces for ``unicode61`` to split on) and wherever the word
starts (the last word typed is a prefix of what is meant: it is found too).
What the user types is never handed to FTS5's query language: each
whitespace-separated term becomes one double-quoted FTS5 string (quotes
doubled), so ``AND``, ``NEAR(``, ``*``, ``col:`` and stray quotes are plain
text. A term shorter than three characters (``ok``, ``你好``) is no trigram:
the store looks up the index's vocabulary for the trigrams that start with it
(every indexed text ends in two spaces, so every character starts one) and
matches any of them; when a term starts too many (a common letter), it becomes
a ``LIKE`` pattern (``%`` ``_`` ``\\`` escaped) checked newest row first, which
stops early because such a term is everywhere. All terms must appear (AND).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from boxless.errors import UsageError

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "ChatRef",
    "InvalidQuery",
    "Query",
    "parse_chat",
    "parse_query",
]

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
TRIGRAM = 3


class InvalidQuery(UsageError):
    """The search text cannot be searched for (empty, too long); the message says why."""


@dataclass(frozen=True)
class Query:
    """A parsed search: ``terms`` as typed (lower case), ``match`` an FTS5 expression over
    the long terms (or None), ``short`` the terms shorter than a trigram."""

    terms: tuple[str, ...]
    match: str | None
    short: tuple[str, ...]


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    # control characters (NUL included) and lone surrogates are no one's search text
    return "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") else ch for ch in text
    )


def quote(term: str) -> str:
    """``term`` as one FTS5 string: whatever it holds is text, never query syntax."""
    return '"' + term.replace('"', '""') + '"'


def like(term: str) -> str:
    """A LIKE pattern (``ESCAPE '\\'``) for text containing ``term``."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_query(text: str) -> Query:
    """What ``text`` asks for, or :class:`InvalidQuery` with what to do instead."""
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(
            f"the search text is longer than {MAX_QUERY_CHARS} characters: shorten it"
        )
    words = _clean(text).split()
    terms = tuple(dict.fromkeys(w.lower() for w in words))
    if not terms:
        raise InvalidQuery("type a word to search for")
    if len(terms) > MAX_TERMS:
        raise InvalidQuery(f"search for at most {MAX_TERMS} words at a time")
    long = [t for t in terms if len(t) >= TRIGRAM]
    match = " AND ".join(quote(t) for t in long) or None
    return Query(terms, match, tuple(t for t in terms if len(t) < TRIGRAM))


@dataclass(frozen=True)
class ChatRef:
    """A chat by name: ``contact:<identity key hex>`` or ``group:<group id hex>``."""

    kind: str  # "contact" | "group"
    key: bytes

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.key.hex()}"

    @property
    def is_group(self) -> bool:
        return self.kind == "group"


def parse_chat(name: str) -> ChatRef:
    """``contact:<64 hex>`` or ``group:<64 hex>``, else a UsageError saying so."""
    kind, _, key_hex = name.partition(":")
    key = b""
    if kind in ("contact", "group") and len(key_hex) == 64:
        try:
            key = bytes.fromhex(key_hex)
        except ValueError:
            key = b""
    if len(key) != 32:
        raise UsageError(
            f"{name[:80]!r} is not a chat: use contact:<identity key hex> or group:<group id hex>"
        )
    return ChatRef(kind, key)


SNIPPET_CHARS = 90
SNIPPET_BEFORE = 30


def snippet(text: str, terms: tuple[str, ...]) -> str:
    """A short excerpt of ``text`` around the first term found (plain text; the UI
    highlights the terms itself), with "…" where it was cut."""
    flat = " ".join(text.split())
    low = flat.lower()
    found = [p for p in (low.find(t) for t in terms) if p >= 0]
    pos = min(found) if found and len(low) == len(flat) else 0
    start = max(0, pos - SNIPPET_BEFORE)
    end = start + SNIPPET_CHARS
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
