"""Issue 11 in a real browser: the same action menu in a group as in a 1:1 chat.

Alice (an admin, desktop), Bob and Carol (members, phones) each run `boxless up`
(the session-wide `world`). A reply, a reaction, an edit and a delete are each
made in one member's UI and seen in all three (and 20 messages typed at 10/s
arrive in the order typed); an admin deletes another
member's message for everyone; a mention stays highlighted after a rename.
Screenshot: docs/screenshots/group-conversation.png.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, PHONE, bubble, open_ui, shot
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow
FAST = 20


def say(page: Any, text: str) -> None:
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")


def test_group_reply_react_edit_delete_seen_by_three(world: Any, browser: Any) -> None:
    alice, bob, carol = world.persons("Alice", "Bob", "Carol")
    world.befriend(alice, bob)
    world.befriend(alice, carol)
    gid = world.group(alice, [bob, carol], "Actions")
    pages = {
        "Alice": open_ui(browser, alice, DESKTOP),
        "Bob": open_ui(browser, bob, PHONE),
        "Carol": open_ui(browser, carol, PHONE),
    }
    for p in pages.values():
        expect(p.locator(".group-row", has_text="Actions")).to_be_visible()
        p.evaluate(f"location.hash = '#/group/{gid}'")
        expect(p.locator(".conv-name")).to_have_text("Actions")
    a, b, c = pages["Alice"], pages["Bob"], pages["Carol"]
    everyone = list(pages.values())

    say(a, "Plan for Saturday?")
    for p in everyone:
        expect(bubble(p, "Plan for Saturday?")).to_be_visible()

    # Typed fast (10 a second): in the order typed for all three.
    composer = a.get_by_label("Message", exact=True)
    start = time.monotonic()
    for i in range(FAST):
        composer.fill(f"quick {i:02d}")
        composer.press("Enter")
        time.sleep(max(0.0, start + (i + 1) * 0.1 - time.monotonic()))
    for p in everyone:
        # (a group POST returns once the network took it: on a loaded machine
        # the 20 go out one after another for a while; each shows at once here)
        expect(bubble(p, f"quick {FAST - 1:02d}")).to_be_visible(timeout=90_000)

        def quick(p: Any = p) -> list[str]:
            shown = p.locator(".message .bubble .text").evaluate_all(
                "els => els.map(e => e.textContent)"
            )
            return [t for t in shown if t.startswith("quick ")]

        # the last one in does not mean every earlier one is (one may be repaired later)
        typed = [f"quick {i:02d}" for i in range(FAST)]
        wait_for(f"all {FAST} shown", lambda: len(quick()) >= FAST, timeout=90)
        assert quick() == typed

    # Bob replies: everyone sees the quote.
    bubble(b, "Plan for Saturday?").click()
    b.get_by_role("button", name="Reply").click()
    say(b, "A hike at nine")
    for p in everyone:
        expect(bubble(p, "A hike at nine").locator(".quote")).to_contain_text("Plan for Saturday?")

    # Carol reacts: everyone sees the chip.
    bubble(c, "Plan for Saturday?").click()
    c.get_by_role("button", name="React with 👍").click()
    for p in everyone:
        mine = p.locator(".message", has=p.locator(".text", has_text="Plan for"))
        expect(mine.locator(".chip")).to_have_text("👍")

    # Alice edits her message: everyone sees the new text, marked edited.
    bubble(a, "Plan for Saturday?").click()
    a.get_by_role("button", name="Edit").click()
    composer = a.get_by_label("Message", exact=True)
    expect(composer).to_have_value("Plan for Saturday?")
    say(a, "Plan for Sunday?")
    for p in everyone:
        expect(bubble(p, "Plan for Sunday?").locator(".edited")).to_be_visible()

    # Bob deletes his reply for everyone.
    bubble(b, "A hike at nine").click()
    b.get_by_role("button", name="Delete", exact=True).click()
    b.get_by_role("button", name="Delete for everyone").click()
    for p in everyone:
        expect(p.locator(".bubble.deleted")).to_have_count(1)

    # Carol says something wrong; Alice, an admin, deletes it for everyone.
    say(c, "oops, wrong chat")
    for p in everyone:
        expect(bubble(p, "wrong chat")).to_be_visible()
    bubble(b, "wrong chat").click()  # a member may not delete another's message
    expect(b.get_by_role("button", name="Reply")).to_be_visible()
    expect(b.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
    bubble(a, "wrong chat").click()
    a.get_by_role("button", name="Delete", exact=True).click()
    a.get_by_role("button", name="Delete for everyone").click()
    for p in everyone:
        expect(p.locator(".bubble.deleted")).to_have_count(2)
        expect(p.locator(".bubble .text", has_text="wrong chat")).to_have_count(0)
    expect(c.locator(".bubble.deleted").last).to_have_text(re.compile("This message was deleted"))

    say(b, "@Alice Sunday works, see you")
    expect(bubble(c, "see you")).to_be_visible()  # in before Carol's click, not under it
    bubble(c, "Plan for Sunday?").click()
    c.get_by_role("button", name="Reply").click()
    # the reply is set before typing (once, at load 30, Carol's reply went out with no
    # quote, Bob's message having come in around her click)
    expect(c.locator(".context-text")).to_have_text("Plan for Sunday?")
    say(c, "Count me in, I'll bring https://example.org/map")
    expect(bubble(a, "see you")).to_be_visible()
    expect(bubble(a, "Count me in").locator(".quote")).to_contain_text("Plan for Sunday?")
    bubble(a, "Count me in").locator(".quote").click()  # a quote shows what it quotes
    quoted = a.locator(".message", has=a.locator(".text", has_text="Plan for Sunday?"))
    expect(quoted).to_have_class(re.compile(r"\bhighlight\b"))
    a.locator(".messages-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    shot(a, "group-conversation")

    # Mentions are matched by identity key: renamed, Alice still sees hers.
    expect(bubble(a, "see you").locator("mark.mention.me")).to_have_text("@Alice")
    alice.call("PUT", "/me", {"name": "Alicia"})
    a.reload()
    expect(bubble(a, "see you").locator("mark.mention.me")).to_have_text("@Alice")
