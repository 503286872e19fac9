"""Making text that came from other people safe to print on a terminal.

Theory of operation
-------------------
Names, messages, group names, intros and error messages that quote them come
from peers, and a hostile peer chooses every character. Printed as they are,
they could drive the terminal (``ESC ]0;...BEL`` retitles the window,
``ESC [2J`` clears the screen, ``\\r`` overwrites the line, OSC 52 writes the
clipboard), reorder what follows them (bidi overrides such as U+202E), or, on
a rich console, be read as markup (``[/]`` crashed ``boxless contacts``,
``[bold red]`` restyled it).

:func:`plain` turns any string into printable text: whole escape sequences
(CSI, OSC, DCS, ... in their 7- and 8-bit forms) are removed, every other
control character (C0, DEL, C1) becomes a visible stand-in (the Unicode
"control pictures", e.g. ``␛`` and ``␊``; U+FFFD for C1), bidi controls are
dropped, line/paragraph separators and tabs become spaces, and lone
surrogates (valid JSON, unprintable) become U+FFFD. :func:`markup` is
``plain`` then ``rich.markup.escape``, for anything given to a rich console or
table. Every command prints peer-controlled text through one of the two.
"""

from __future__ import annotations

import re

from rich.markup import escape

__all__ = ["markup", "plain"]

# A whole escape sequence: CSI (ESC [ or 8-bit 0x9b) with its parameters;
# OSC/DCS/SOS/PM/APC strings up to BEL or ST (or the end of the text); and
# the short ESC forms (ESC, intermediates, final byte).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"
    r"|\x1b[ -/]*[0-~]?",
    re.DOTALL,
)

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _table() -> dict[int, str]:
    table: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # ␀ … ␟ (␛ for ESC)
    table[0x7F] = "\u2421"  # ␡
    table.update({c: "\ufffd" for c in range(0x80, 0xA0)})
    table.update({ord(ch): "" for ch in _BIDI})
    table.update({0x09: " ", 0x2028: " ", 0x2029: " "})
    table.update({c: "\ufffd" for c in range(0xD800, 0xE000)})  # lone surrogates
    return table


_TRANSLATE = _table()


def plain(text: str) -> str:
    """``text`` with nothing a terminal would act on: escape sequences removed,
    other control characters shown as visible stand-ins, bidi controls dropped."""
    return _ESCAPES.sub("", text).translate(_TRANSLATE)


def markup(text: str) -> str:
    """:func:`plain`, escaped for rich markup (for ``console.print`` and table cells)."""
    return escape(plain(text))
