"""Issue 13 in a real browser: Moments on `boxless up` processes of the session's world.

A, B, C, D: A-B, A-C, B-C contacts, D a contact of A only. A posts from the
composer to "All except…" D; B's Discover tab counts it, B and C read it, D never
gets it. B likes it in the browser, C comments (API); B sees C's comment (they
are contacts), A sees both. A deletes it in the browser: gone for B.
Screenshot: docs/screenshots/moments.png (B's feed).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, open_ui, shot, tab
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def befriend_all(world: Any, pairs: list[tuple[Any, Any]]) -> None:
    """world.befriend for several pairs at once: every request sent, then one wait."""
    for x, y in pairs:
        x.call("POST", "/contacts", {"link": y.call("GET", "/me")["link"]})
        y.call("POST", "/contacts", {"link": x.call("GET", "/me")["link"]})

    def accepted(me: Any, other: Any) -> bool:
        key = world.key(other)
        return any(
            c["identity_key"] == key and c["state"] == "accepted"
            for c in me.call("GET", "/contacts")
        )

    for x, y in pairs:
        wait_for(
            f"{x.name} and {y.name} to be contacts",
            lambda x=x, y=y: accepted(x, y) and accepted(y, x),
        )


TEXT = "Sunset over the harbour, best evening this year"


def test_moments_audience_likes_comments_delete(world: Any, browser: Any) -> None:
    a, b, c, d = world.persons("Ana", "Ben", "Cai", "Dov")
    befriend_all(world, [(a, b), (a, c), (b, c), (a, d)])
    kd = world.key(d)

    pa = open_ui(browser, a, DESKTOP)
    tab(pa, "discover")
    pa.get_by_role("link", name="Moments").click()
    pa.locator("#moment-text").fill(TEXT)
    pa.locator("#moment-place").fill("Old harbour")
    pa.locator("#moment-audience").select_option("except")
    pa.locator(f".moment-picks input[value='{kd}']").check()
    pa.locator("#moment-post").click()
    expect(pa.locator(".moment")).to_have_count(1)

    def texts(user: Any) -> list[str]:
        return [p["text"] for p in user.call("GET", "/moments")["posts"]]

    for viewer in (b, c):
        wait_for(f"{viewer.name} to read A's moment", lambda v=viewer: texts(v) == [TEXT])
    pid = b.call("GET", "/moments")["posts"][0]["id"]

    pb = open_ui(browser, b, DESKTOP)
    expect(pb.locator("#tab-discover .badge")).to_have_text("1")  # the unread counter
    tab(pb, "discover")
    pb.get_by_role("link", name="Moments").click()
    post = pb.locator(f".moment[data-post='{pid}']")
    expect(post.locator(".moment-text")).to_have_text(TEXT)
    expect(post.locator(".moment-poster")).to_have_text("Ana")
    expect(pb.locator("#tab-discover .badge")).to_be_hidden()  # read once opened
    post.locator(".moment-like").click()
    c.call("POST", f"/moments/{pid}/comments", {"text": "Wish I had been there"})
    expect(post.locator(".moment-comment")).to_contain_text("Cai: Wish I had been there")
    expect(post.locator(".moment-likes")).to_contain_text("Ben")
    shot(pb, "moments")

    apost = pa.locator(f".moment[data-post='{pid}']")
    expect(apost.locator(".moment-comment")).to_contain_text("Wish I had been there")
    expect(apost.locator(".moment-likes")).to_contain_text("Ben")
    assert texts(d) == []  # excluded: no key, nothing to read
    apost.locator(".moment-delete").click()
    expect(pa.locator(".moment")).to_have_count(0)
    expect(post).to_have_count(0)  # gone for B too
    wait_for("C's copy to go", lambda: texts(c) == [])
