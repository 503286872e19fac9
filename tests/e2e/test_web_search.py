"""Issue 11 in a real browser: search, favourites and forwarding, on `boxless up`
processes of the session's world.

Sam searches from the Chats tab: a word of Tess's 1:1 message and a Chinese word of
her group message are found (highlighted), and a result opens the chat at that
message. A message Sam saved is listed under Me → Favourites (and filtered there);
two messages forwarded to Tess and to the group arrive there in order.
Screenshots: docs/screenshots/search.png, favourites.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, bubble, open_ui, shot, tab
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def test_search_favourites_and_forward(world: Any, browser: Any) -> None:
    sam, tess = world.persons("Sam", "Tess")
    world.befriend(sam, tess)
    gid = world.group(sam, [tess], "Island trip")
    ks, kt = world.key(sam), world.key(tess)
    ferry = tess.call(
        "POST", f"/contacts/{ks}/messages", {"text": "The ferry leaves at 7:40 from pier 3"}
    )
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
    hit.click()
    expect(page).to_have_url(f"{sam.url}/#/chat/{kt}")
    expect(bubble(page, "The ferry leaves")).to_be_in_viewport()

    # favourites: saved (a copy), listed under Me, filtered
    sam.call("POST", "/favourites", {"chat": f"contact:{kt}", "id": ferry["id"]})
    group_msg = sam.call("GET", "/search?q=码头")["messages"][0]
    sam.call("POST", "/favourites", {"chat": group_msg["chat"], "id": group_msg["id"]})
    tab(page, "me")
    page.locator("#open-favourites").click()
    items = page.locator(".fav-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("明天上午九点在码头集合")  # newest saved first
    expect(items.nth(1)).to_contain_text("The ferry leaves at 7:40")
    shot(page, "favourites")
    page.get_by_label("Search favourites").fill("pier")
    expect(items).to_have_count(1)
    expect(items.first.locator("mark")).to_have_text("pier")
    items.first.get_by_role("link", name="Show in chat").click()
    expect(page).to_have_url(f"{sam.url}/#/chat/{kt}")

    # forward two messages, in order, to Tess (her own, back to her) and to the group
    sunscreen = sam.call("GET", "/search?q=sunscreen")["messages"][0]
    done = sam.call(
        "POST",
        "/forward",
        {
            "messages": [
                {"chat": f"contact:{kt}", "id": ferry["id"]},
                {"chat": sunscreen["chat"], "id": sunscreen["id"]},
            ],
            "to": [f"contact:{kt}", f"group:{gid}"],
        },
    )
    assert done == {"sent": 4, "refused": {}}
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
