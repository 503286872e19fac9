"""Issue 13 in a real browser: Moments on `boxless up` processes of the session's world.

A, B, C, D: A-B, A-C, B-C contacts, D a contact of A only. A posts from the
composer to "All except…" D with three photos (picked, previewed, uploaded);
B's Discover tab counts it, B and C read it, D never gets it. B sees the photos
in a grid and opens one full size; B likes it in the browser, C comments (API),
B replies to C's comment; B sees C's comment (they are contacts), A sees all.
A deletes it in the browser: gone for B.
A mentions B: B's notifications say so; B opens A's page from her name (cover,
her posts B may see).
Screenshots: docs/screenshots/moments.png (B's feed), moments-photos.png,
moments-page.png (A's page as B sees it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.e2e.test_web import DESKTOP, IMG_LOADED, open_ui, shot, tab
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


def _photo(path: Path, colour: tuple[int, int, int], label: str) -> Path:
    image = Image.new("RGB", (900, 600), colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 150, 600, 450), fill=(255, 255, 255))
    draw.text((40, 40), label, fill=(0, 0, 0))
    image.save(path, "JPEG", quality=85)
    return path


def test_moments_audience_likes_comments_delete(world: Any, browser: Any, tmp_path: Path) -> None:
    a, b, c, d = world.persons("Ana", "Ben", "Cai", "Dov")
    colours = [(230, 120, 60), (60, 140, 220), (90, 180, 110)]
    photos = [
        _photo(tmp_path / f"harbour{i}.jpg", col, f"harbour {i}") for i, col in enumerate(colours)
    ]
    befriend_all(world, [(a, b), (a, c), (b, c), (a, d)])
    kd, kb = world.key(d), world.key(b)

    a.call("PUT", f"/contacts/{kd}/notes", {"tags": ["work"]})  # A's own list: "work" is D
    pa = open_ui(browser, a, DESKTOP)
    tab(pa, "discover")
    pa.get_by_role("link", name="Moments").click()
    pa.locator("#moment-text").fill(TEXT)
    pa.locator("#moment-place").fill("Old harbour")
    pa.locator("#moment-audience").select_option("except")
    pa.locator(".moment-tag-pick", has_text="work").click()  # the audience by tag
    expect(pa.locator(f".moment-picks input[value='{kd}']")).to_be_checked()
    pa.locator(".moment-mention").click()
    pa.locator(f".moment-mentions input[value='{kb}']").check()
    pa.locator("#moment-files").set_input_files([str(p) for p in photos])
    expect(pa.locator(".moment-preview img")).to_have_count(3)  # previews before posting
    pa.locator("#moment-post").click()
    expect(pa.locator(".moment")).to_have_count(1)
    expect(pa.locator(".moment-preview")).to_have_count(0)  # the composer is clear again

    def texts(user: Any) -> list[str]:
        return [p["text"] for p in user.call("GET", "/moments")["posts"]]

    for viewer in (b, c):
        wait_for(f"{viewer.name} to read A's moment", lambda v=viewer: texts(v) == [TEXT])
    pid = b.call("GET", "/moments")["posts"][0]["id"]

    pb = open_ui(browser, b, DESKTOP)
    badge = pb.locator("#tab-discover .badge")
    expect(badge).to_have_text("2")  # the unread counter: the post and its mention of B
    tab(pb, "discover")
    pb.get_by_role("link", name="Moments").click()
    post = pb.locator(f".moment[data-post='{pid}']")
    expect(post.locator(".moment-text")).to_have_text(TEXT)
    expect(post.locator(".moment-poster")).to_have_text("Ana")
    grid = post.locator(".moment-media img")
    expect(grid).to_have_count(3)
    for i in range(3):  # each photo loaded (decoded by the browser), not a broken image
        sync_api.expect(grid.nth(i)).to_have_js_property("complete", True)
        assert grid.nth(i).evaluate("img => img.naturalWidth") > 0
    expect(badge).to_have_text("1")  # the post read once opened; the mention not yet
    post.locator(".moment-like").click()
    c.call("POST", f"/moments/{pid}/comments", {"text": "Wish I had been there"})
    expect(post.locator(".moment-comment")).to_contain_text("Cai: Wish I had been there")
    expect(post.locator(".moment-likes")).to_contain_text("Ben")
    post.locator(".moment-reply").click()  # B replies to C's comment
    post.locator(".moment-comment-input").fill("Next time, together")
    post.locator(".moment-comment-input").press("Enter")
    expect(post.locator(".moment-comment").nth(1)).to_contain_text("Ben replied to Cai: Next time")
    shot(pb, "moments")
    pb.evaluate("() => document.querySelector('.moment-media').scrollIntoView()")
    shot(pb, "moments-photos")
    post.locator(".moment-photo").nth(1).click()  # tap: full size
    full = pb.locator(".moment-full-img")
    expect(full).to_be_visible()
    full.evaluate(IMG_LOADED)  # fetched and decoded (visible comes first: it has a size)
    expect(pb.locator(".moment-full-count")).to_have_text("2 / 3")
    pb.keyboard.press("ArrowRight")
    expect(pb.locator(".moment-full-count")).to_have_text("3 / 3")
    pb.keyboard.press("Escape")
    expect(pb.locator(".moment-full")).to_have_count(0)
    expect(post.locator(".moment-mentioned")).to_have_text("with @Ben")
    bar = pb.locator(".moment-notices-bar")
    expect(bar).to_contain_text("1 new notification")  # A mentioned B
    bar.click()
    expect(pb.locator(".moment-notice[data-kind='mention']")).to_contain_text("Ana mentioned you")
    expect(bar).to_have_text("🔔 Notifications")  # read once opened
    expect(badge).to_be_hidden()
    post.locator(".moment-poster").click()  # A's page: cover, name, her posts B may see
    expect(pb.locator(".moment-page-name")).to_have_text("Ana")
    expect(pb.locator(".moment-cover")).to_be_visible()
    expect(post.locator(".moment-media img")).to_have_count(3)
    shot(pb, "moments-page")

    apost = pa.locator(f".moment[data-post='{pid}']")
    expect(apost.locator(".moment-comment").first).to_contain_text("Wish I had been there")
    expect(apost.locator(".moment-comment").nth(1)).to_contain_text("Ben replied to Cai")
    expect(apost.locator(".moment-likes")).to_contain_text("Ben")
    assert texts(d) == []  # excluded: no key, nothing to read
    apost.locator(".moment-delete").click()
    expect(pa.locator(".moment")).to_have_count(0)
    expect(post).to_have_count(0)  # gone for B too
    wait_for("C's copy to go", lambda: texts(c) == [])
