"""Issue 13 in a real browser: profiles, aliases, tags and People Nearby.

Pia gives her contact Quinn an alias, a tag and a star on his contact card:
the alias names him in the contact list and the chat header, the tag filter
shows him alone. Quinn's status, region and cover (set over the API) show on
the card. People Nearby with three browsers at set coordinates: Pia and Rui
(both in Lisbon, one ~5 km cell) see each other, Quinn in Porto sees nobody;
Pia says hello, Rui accepts, and they are contacts.
Screenshots: docs/screenshots/profile-card.png, nearby.png.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.e2e.test_web import DESKTOP, WAIT_MS, shot, tab
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow

LISBON = {"latitude": 38.7223, "longitude": -9.1393}
LISBON_NEAR = {"latitude": 38.7240, "longitude": -9.1380}  # the same ~5 km cell (eycs2)
PORTO = {"latitude": 41.1579, "longitude": -8.6291}


def open_at(browser: Any, user: Any, where: dict[str, float]) -> Any:
    """The user's UI in a browser context whose geolocation is ``where``."""
    context = browser.new_context(viewport=DESKTOP, geolocation=where, permissions=["geolocation"])
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("pageerror", lambda e: print(f"[{user.name} page error] {e}"))
    page.goto(f"{user.url}/?token={user.token}")
    return page


def _cover() -> str:
    image = Image.new("RGB", (720, 270), (40, 110, 170))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 270), (260, 80), (420, 200), (560, 110), (720, 270)], fill=(235, 240, 245))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=50)
    assert len(out.getvalue()) <= 12 * 1024
    return base64.b64encode(out.getvalue()).decode()


def share(page: Any, name: str, status: str = "") -> None:
    tab(page, "discover")
    page.get_by_role("link", name="People Nearby").click()
    page.locator("#nearby-name").fill(name)
    page.locator("#nearby-status").fill(status)
    page.locator("#nearby-start").click()
    expect(page.locator(".nearby-where")).to_be_visible()


def test_alias_tags_profile_card_and_people_nearby(world: Any, browser: Any) -> None:
    pia, quinn, rui = world.persons("Pia", "Quinn", "Rui")
    world.befriend(pia, quinn)
    kq, kr = world.key(quinn), world.key(rui)
    quinn.call("PUT", "/me/profile", {"status": "Training for the Serra run", "region": "Porto"})
    quinn.call("PUT", "/me/cover", {"image": _cover()})

    pp = open_at(browser, pia, LISBON)
    tab(pp, "contacts")
    pp.locator(f"a.contact-info[href='#/contact/{kq}']").click()
    expect(pp.locator(".profile-status")).to_have_text("Training for the Serra run")
    expect(pp.locator(".profile-region")).to_have_text("Region: Porto")
    expect(pp.locator("img.profile-cover")).to_be_visible()
    pp.locator("#card-alias").fill("Q (running club)")
    pp.locator("#card-tags").fill("running, Porto")
    pp.locator("#card-star").check()
    pp.locator("#card-note").fill("Met at the 10k in May")
    pp.locator("#card-save").click()
    expect(pp.locator(".profile-name")).to_have_text("★ Q (running club)")
    expect(pp.locator(".profile-their-name")).to_have_text("Name: Quinn")
    expect(pp.locator(f".contact-item a.row[data-key='{kq}'] .tag")).to_have_count(2)
    shot(pp, "profile-card")

    # the alias everywhere: contact list, chat header; the tag filter
    tab(pp, "contacts")
    row = pp.locator(f".contact-item a.row[data-key='{kq}'] .row-name")
    expect(row).to_contain_text("Q (running club)")
    pp.locator(".tag-filter .chip[data-tag='running']").click()
    expect(pp.locator(".contact-item")).to_have_count(1)
    pp.locator("#contacts-search").fill("nobody-like-this")
    expect(pp.locator(".contact-item")).to_have_count(0)
    pp.locator("#contacts-search").fill("")
    pp.goto(f"{pia.url}/?token={pia.token}#/chat/{kq}")
    expect(pp.locator(".conv-name")).to_have_text("Q (running club)")
    assert quinn.call("GET", f"/contacts/{world.key(pia)}/profile")["alias"] == ""

    # People Nearby: Pia and Rui in Lisbon see each other, Quinn in Porto nobody
    pr = open_at(browser, rui, LISBON_NEAR)
    pq = open_at(browser, quinn, PORTO)
    share(pp, "Pia")
    share(pr, "Rui", "Coffee at Príncipe Real, anyone?")
    share(pq, "Quinn")
    expect(pp.locator("#nearby-people .nearby-person")).to_have_count(1)
    expect(pp.locator("#nearby-people .row-name")).to_have_text("Rui")
    expect(pp.locator("#nearby-people .nearby-distance")).to_have_text("< 1 km")
    expect(pr.locator("#nearby-people .row-name")).to_have_text("Pia")
    pp.get_by_role("button", name="Say hello to Rui").click()
    expect(pp.locator(".nearby-sent")).to_have_text("Hello sent")
    shot(pp, "nearby")
    expect(pr.locator("#nearby-hellos .row-name")).to_have_text("Pia")
    pr.get_by_role("button", name="Accept Pia").click()

    def contacts(me: Any, key: str) -> bool:
        return any(
            c["identity_key"] == key and c["state"] == "accepted"
            for c in me.call("GET", "/contacts")
        )

    wait_for(
        "Pia and Rui to be contacts", lambda: contacts(pia, kr) and contacts(rui, world.key(pia))
    )
    assert quinn.call("GET", "/nearby")["people"] == []
    pp.locator("#nearby-stop").click()
    expect(pr.locator("#nearby-people .nearby-person")).to_have_count(0)
    for page in (pp, pr, pq):
        page.context.close()
