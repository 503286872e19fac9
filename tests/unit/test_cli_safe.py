"""Peer-controlled text made safe for the terminal (``boxless.cli.safe``).

The attack: a contact picks a name or sends a text that the CLI printed as it
was, so rich read it as markup (``[/]`` crashed ``boxless contacts``,
``[bold red]`` restyled it) and the terminal obeyed its escape sequences
(``ESC ]0;pwned BEL`` retitled the window, ``ESC [2J`` cleared the screen,
U+202E reversed what followed).
"""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from boxless.cli.safe import markup, plain

BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def rendered(text: str) -> str:
    """What a rich console shows for ``text`` given as markup (no styling codes)."""
    buf = io.StringIO()
    Console(file=buf, emoji=False, highlight=False, color_system=None, width=10_000).print(
        text, end=""
    )
    return buf.getvalue()


def assert_inert(text: str) -> None:
    """Nothing a terminal would act on: no control, bidi or unpaired surrogate characters."""
    bad = [
        ch
        for ch in text
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI or ch == "\u2028"
    ]
    assert not bad, (text, bad)


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("[/]", "[/]"),
        ("[bold red]x", "[bold red]x"),
        ("\x1b]0;pwned\x07Eve", "Eve"),
        ("\x1b]52;c;cHduZWQ=\x1b\\Eve", "Eve"),  # OSC 52: write the clipboard
        ("\x1b[2JEve", "Eve"),
        ("Eve\x1b[31m red", "Eve red"),
        ("\x9b2JEve", "Eve"),  # 8-bit CSI
        ("safe\rAlice: send money", "safe␍Alice: send money"),
        ("two\nlines", "two␊lines"),
        ("bell\x07", "bell␇"),
        ("tab\there", "tab here"),
        ("\u202eevil.exe\u202c", "evil.exe"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("\\[not escaped]", "\\[not escaped]"),
        (":smile: stays", ":smile: stays"),
        ("👩‍👩‍👧 Ünïcødé שלום", "👩‍👩‍👧 Ünïcødé שלום"),  # ZWJ emoji and RTL text survive
    ],
)
def test_hostile_text_prints_as_inert_text(hostile: str, shown: str) -> None:
    assert plain(hostile) == shown
    assert rendered(markup(hostile)) == shown
    assert_inert(plain(hostile))


def test_a_trailing_backslash_cannot_escape_the_markup_that_follows() -> None:
    """rich.markup.escape doubles a lone trailing backslash so that a name ending in
    one cannot escape the closing tag after it (alone, it shows twice: cosmetic)."""
    assert rendered(f"[dim]{markup('Eve' + chr(92))}[/dim] ok") == "Eve" + chr(92) + " ok"


@given(st.text(alphabet=st.characters(codec=None), max_size=200))
def test_any_text_renders_exactly_as_plain_and_inert(text: str) -> None:
    """Whatever a peer sends: rich shows exactly ``plain`` of it, with nothing active."""
    safe = plain(text)
    assert_inert(safe)
    lone_trailing_backslash = safe.endswith("\\") and not safe.endswith("\\\\")
    assert rendered(markup(text)) == safe + ("\\" if lone_trailing_backslash else "")
    assert plain(safe) == safe  # idempotent: printing twice changes nothing more
