"""Emoji verification in a real browser: Alice (desktop) and Bob (phone) each run
`boxless up` with a service node between them. Alice opens the safety-number
screen and presses "Compare emoji"; Bob gets the prompt and accepts; both
dialogs show the same 7 emoji with their names; both say they match; both
show the contact verified. Screenshots go to docs/screenshots/sas-*.

The accounts are made with `boxless init` and become contacts over the API
(crossed requests): onboarding and adding contacts in the browser are covered
by test_web.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, PHONE, open_ui
from tests.e2e.test_web import shot as web_shot
from tests.nodeproc import NodeProcess
from tests.userproc import UserProcess, init_users

sync_api = pytest.importorskip("playwright.sync_api")
Page = sync_api.Page
expect = sync_api.expect

SERVICE = ["--store", "--filter", "--lightpush"]
WAIT_MS = 30_000
pytestmark = pytest.mark.slow
expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[dict[str, UserProcess]]:
    s1 = NodeProcess("s1", tmp_path / "s1", SERVICE).start()
    homes = {name: tmp_path / name.lower() for name in ("Alice", "Bob")}
    users: dict[str, UserProcess] = {}
    try:
        init_users(homes)
        for name, home in homes.items():
            users[name] = UserProcess(name, home, [s1.addr]).launch()
        for user in users.values():
            user.wait_ready(90)
        alice, bob = users["Alice"], users["Bob"]
        alice.call("POST", "/contacts", {"link": bob.call("GET", "/me")["link"]})
        bob.call("POST", "/contacts", {"link": alice.call("GET", "/me")["link"]})
        deadline = time.monotonic() + 60
        while not all(  # crossed requests accept each other once both have arrived
            [c["state"] for c in u.call("GET", "/contacts")] == ["accepted"] for u in users.values()
        ):
            assert time.monotonic() < deadline, "the contact requests did not cross"
            time.sleep(0.2)
        yield users
    finally:
        for user in users.values():
            user.kill()
            print(f"--- {user.name} ---\n{user.logs(60)}")
        s1.kill()


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
