"""Issue 11 in a real browser: search, favourites and forwarding, on `boxless up`
processes of the session's world.

Sam searches from the Chats tab: a word of Tess's 1:1 message and a Chinese word of
her group message are found (highlighted), and a result opens the chat at that
message, highlighted. Messages Sam saves from their menus (1:1 and group) are listed
under Me → Favourites (and filtered there); two messages selected and forwarded to
Tess and to the group arrive there in order.
Screenshots: docs/screenshots/search.png, favourites.png, search-phone.png.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, PHONE, bubble, open_ui, shot, tab
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def test_search_favourites_and_forward(world: Any, browser: Any) -> None:
    sam, tess = world.persons("Sam", "Tess")
    world.befriend(sam, tess)
    gid = world.group(sam, [tess], "Island trip")
    ks, kt = world.key(sam), world.key(tess)
    tess.call("POST", f"/contacts/{ks}/messages", {"text": "The ferry leaves at 7:40 from pier 3"})
    tess.call("POST", f"/groups/{gid}/messages", {"text": "明天上午九点在码头集合"})
    tess.call("POST", f"/contacts/{ks}/messages", {"text": "and bring sunscreen"})

    def found(q: str) -> list[str]:
        return [m["text"] for m in sam.call("GET", f"/search?q={q}")["messages"]]

    wait_for(
        "Sam to have the texts", lambda: found("ferry") and found("码头") and found("sunscreen")
    )

    page = open_ui(browser, sam, DESKTOP)
    page.locator("#open-search").click()
    box = page.get_by_role("searchbox", name="Search", exact=True)
    expect(box).to_be_focused()
    box.fill("ferr")  # a prefix of the word
    hit = page.locator(".search-hit", has_text="The ferry leaves")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("ferr")
    box.fill("码头")
    group_hit = page.locator(".search-hit", has_text="明天上午九点")
    expect(group_hit).to_have_count(1)
    expect(group_hit.locator(".row-name")).to_have_text("Island trip")
    expect(group_hit.locator("mark")).to_have_text("码头")
    box.fill("island")  # groups by name, messages none
    expect(page.locator(".search-name", has_text="Island trip")).to_have_count(1)
    box.fill("ferry")
    expect(hit).to_have_count(1)
    shot(page, "search")
    hit.click()  # the chat opens at the message, highlighted
    expect(page).to_have_url(f"{sam.url}/#/chat/{kt}")
    expect(page.locator(".message.highlight")).to_contain_text("The ferry leaves")
    expect(bubble(page, "The ferry leaves")).to_be_in_viewport()

    # favourites: saved from the message menus (a 1:1 and a group message), listed
    # under Me, newest saved first, filtered
    bubble(page, "The ferry leaves").click()
    page.get_by_role("button", name="Favourite").click()
    expect(page.locator("#toasts")).to_contain_text("Saved to favourites")
    page.locator("#open-search").click()
    box.fill("码头")
    group_hit.click()
    expect(page).to_have_url(f"{sam.url}/#/group/{gid}")
    expect(page.locator(".message.highlight")).to_contain_text("明天上午九点")
    bubble(page, "明天上午九点").click()
    page.get_by_role("button", name="Favourite").click()
    tab(page, "me")
    page.locator("#open-favourites").click()
    items = page.locator(".fav-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("明天上午九点在码头集合")
    expect(items.first).to_contain_text("Island trip")
    expect(items.nth(1)).to_contain_text("The ferry leaves at 7:40")
    shot(page, "favourites")
    page.get_by_label("Search favourites").fill("pier")
    expect(items).to_have_count(1)
    expect(items.first.locator("mark")).to_have_text("pier")
    items.first.get_by_role("link", name="Show in chat").click()
    expect(page).to_have_url(f"{sam.url}/#/chat/{kt}")

    # forward two messages (selected), in order, to Tess (hers, back to her) and the group
    bubble(page, "The ferry leaves").click()
    page.get_by_role("button", name="Select").click()
    bubble(page, "and bring sunscreen").click()
    page.locator(".selection-bar").get_by_role("button", name="Forward").click()
    dialog = page.get_by_role("dialog", name="Forward to")
    dialog.get_by_label("Tess").check()
    dialog.get_by_label("Island trip").check()
    dialog.get_by_role("button", name="Forward to 2 chats").click()
    expect(page.locator("#toasts")).to_contain_text("Forwarded 4 messages to 2 chats")
    # on a phone the pane fills the screen; searching one chat (#/search/<chat>)
    phone = open_ui(browser, sam, PHONE)
    phone.goto(f"{sam.url}/#/chat/{kt}")
    phone.get_by_role("link", name="Search in this chat").click()
    expect(phone).to_have_url(re.compile(f"#/search/contact:{kt}$"))
    phone.get_by_role("searchbox", name="Search", exact=True).fill("sunscreen")
    expect(phone.locator(".search-hit")).to_have_count(2)  # Tess's and the forwarded copy
    expect(phone.locator(".search-title")).to_have_text(["Messages in Tess"])
    shot(phone, "search-phone")
    phone.context.close()

    want = ["The ferry leaves at 7:40 from pier 3", "and bring sunscreen"]
    wait_for(
        "Tess to get both from Sam, in order",
        lambda: (
            [m["text"] for m in tess.call("GET", f"/contacts/{ks}/messages") if not m["outgoing"]]
            == want
        ),
    )
    wait_for(
        "Tess to get both in the group, in order",
        lambda: (
            [m["text"] for m in tess.call("GET", f"/groups/{gid}/messages") if m["kind"] == "text"][
                -2:
            ]
            == want
        ),
    )
