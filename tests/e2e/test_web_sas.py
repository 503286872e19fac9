"""Emoji verification in a real browser: Alice (desktop) and Bob (phone) each run
`boxless up` on the session's service nodes. Alice opens the safety-number
screen and presses "Compare emoji"; Bob gets the prompt and accepts; both
dialogs show the same 7 emoji with their names; both say they match; both
show the contact verified. Screenshots go to docs/screenshots/sas-*.

The accounts are the world's (tests/e2e/world.py) and become contacts over the API
(crossed requests): onboarding and adding contacts in the browser are covered
by test_web.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, PHONE, open_ui
from tests.e2e.test_web import shot as web_shot
from tests.userproc import UserProcess

sync_api = pytest.importorskip("playwright.sync_api")
Page = sync_api.Page
expect = sync_api.expect

WAIT_MS = 30_000
pytestmark = pytest.mark.slow
expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def pair(world: Any) -> dict[str, UserProcess]:
    """Alice and Bob, contacts, on the session's service nodes (tests/e2e/world.py)."""
    alice, bob = world.persons("Alice", "Bob")
    world.befriend(alice, bob)
    return {"Alice": alice, "Bob": bob}


def shot(page: Page, name: str) -> None:
    web_shot(page, f"sas-{name}")


def emoji_names(page: Page) -> list[str]:
    items = page.get_by_role("list", name="Emoji to compare, in order").locator(".sas-name")
    expect(items).to_have_count(7)
    return items.all_inner_texts()


def test_both_compare_the_same_emoji_and_are_verified(
    pair: dict[str, UserProcess], browser: Any
) -> None:
    alice_up, bob_up = pair["Alice"], pair["Bob"]
    bob_key = bob_up.call("GET", "/me")["identity_key"]
    alice = open_ui(browser, alice_up, DESKTOP)
    bob = open_ui(browser, bob_up, PHONE)
    expect(bob.get_by_role("navigation", name="Main")).to_be_visible()

    alice.goto(f"{alice_up.url}/#/verify/{bob_key}")
    expect(alice.get_by_label("Safety number").locator("span")).to_have_count(12)
    alice.get_by_role("button", name="Compare emoji").click()
    dialog_a = alice.get_by_role("dialog", name="Compare emoji with Bob")
    expect(dialog_a.get_by_role("status")).to_have_text("Waiting for Bob…")

    prompt = bob.get_by_role("alertdialog", name="Alice wants to verify")
    expect(prompt).to_contain_text("Alice wants to verify — compare emoji")
    shot(bob, "prompt")
    prompt.get_by_role("button", name="Compare emoji").click()
    dialog_b = bob.get_by_role("dialog", name="Compare emoji with Alice")

    names_a, names_b = emoji_names(alice), emoji_names(bob)
    assert names_a == names_b
    glyphs = alice.locator(".sas-glyph").all_inner_texts()
    assert glyphs == bob.locator(".sas-glyph").all_inner_texts() and all(glyphs)
    shot(bob, "compare-phone")
    shot(alice, "compare")

    alice.get_by_role("button", name="They match", exact=True).click()
    expect(dialog_a.get_by_role("status")).to_have_text("Waiting for Bob to confirm…")
    expect(dialog_b.get_by_role("status")).to_contain_text("Alice says they match")
    bob.get_by_role("button", name="They match", exact=True).click()
    for page, them in ((alice, "Bob"), (bob, "Alice")):
        expect(page.get_by_role("dialog").get_by_role("status")).to_contain_text(
            f"✔ {them} is verified"
        )
    shot(alice, "verified")
    alice.get_by_role("button", name="Done").click()
    expect(alice.get_by_role("status").filter(has_text="You verified Bob")).to_be_visible()
    assert [c["verified"] for c in alice_up.call("GET", "/contacts")] == [True]
    assert [c["verified"] for c in bob_up.call("GET", "/contacts")] == [True]
