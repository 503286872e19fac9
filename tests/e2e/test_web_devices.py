"""Issue 15 in a real browser: link a second device by its QR code, list, revoke.

Alice's new laptop runs `boxless up` on an empty home: its first-run page offers
"Link to an existing account", which shows the laptop's QR code and short code.
The QR code is read from a screenshot of that page, in Alice's browser (Devices →
QR code from a picture, the vendored jsQR), which shows the laptop's name and the
same short code. Confirmed, the laptop receives the account (Bob and his message
included) and its page becomes the app; the device list shows both; revoked in the
browser, the laptop wipes its keys and stops. Before that, a chat pinned on Alice's
first device shows pinned on the laptop's page (own-device sync).
Screenshots: docs/screenshots/devices-first-run.png, devices-link.png, devices.png.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, IMG_LOADED, open_ui, shot
from tests.e2e.world import wait_for
from tests.userproc import PASS, UserProcess

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def _has(user: UserProcess, key: str, text: str) -> bool:
    return any(m["text"] == text for m in user.call("GET", f"/contacts/{key}/messages"))


def test_link_a_device_by_qr_list_and_revoke(world: Any, browser: Any, tmp_path: Path) -> None:
    alice, bob = world.persons("Alice", "Bob")
    world.befriend(alice, bob)
    ka, kb = world.key(alice), world.key(bob)
    bob.call("POST", f"/contacts/{ka}/messages", {"text": "hello before the link"})
    wait_for("Alice to have Bob's message", lambda: _has(alice, kb, "hello before the link"))

    # the new laptop: `boxless up` on an empty home shows the first-run page
    home2 = world.root / f"alice-laptop-{time.monotonic_ns()}"
    home2.mkdir()
    laptop = UserProcess("Alice laptop", home2, [world.s2.addr, world.s1.addr]).launch()
    world.people.append(laptop)
    laptop.wait_ready(180)
    new = open_ui(browser, laptop, DESKTOP)
    new.locator("#link-existing").click()
    new.locator("#link-passphrase").fill(PASS)
    new.locator("#link-passphrase2").fill(PASS)
    new.locator("#link-device-name").fill("Alice laptop")
    new.get_by_role("button", name="Show the QR code").click()
    qr = new.locator("#link-qr")
    expect(qr).to_be_visible()
    qr.evaluate(IMG_LOADED)  # drawn, or the "camera" below sees a blank box
    code = new.locator("#link-code").inner_text()
    shot(new, "devices-first-run")
    png = tmp_path / "laptop-screen.png"
    qr.screenshot(path=str(png))  # what a phone camera would see

    page = open_ui(browser, alice, DESKTOP)
    page.locator("#tab-me").click()
    page.locator("#open-devices").click()
    items = page.locator(".device-item")
    expect(items).to_have_count(1)
    page.set_input_files("#device-link-image", str(png))  # read by jsQR in the page
    expect(page.locator("#device-link-code")).to_have_text(code)
    expect(page.locator(".device-preview")).to_contain_text("Alice laptop")
    shot(page, "devices-link")
    page.locator("#device-link-confirm").click()
    expect(items).to_have_count(2)
    expect(page.locator(".device-item", has_text="Alice laptop")).to_have_count(1)

    # the laptop's page becomes the app, with the account: Bob and his message
    expect(new.locator("#tab-chats")).to_be_visible(timeout=60_000)
    assert world.key(laptop) == ka
    wait_for("the laptop to have Bob's message", lambda: _has(laptop, kb, "hello before the link"))
    page.reload()
    page.locator("#tab-me").click()
    page.locator("#open-devices").click()
    expect(items).to_have_count(2)
    page.wait_for_function("() => [...document.images].every((i) => i.complete)")
    shot(page, "devices")

    # a chat pinned on Alice's first device shows pinned on the laptop's page, live
    # (client/ownsync.py; a page that reconnects reads the settings again)
    new.locator("#tab-chats").click()
    alice.call("PUT", f"/chats/contact:{kb}/settings", {"pinned": True})
    expect(new.locator(f'.chat-row.pinned[href="#/chat/{kb}"]')).to_have_count(1, timeout=30_000)

    # revoke it: the laptop wipes its keys and stops
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".device-item", has_text="Alice laptop").locator(".device-revoke").click()
    expect(items).to_have_count(1)
    assert laptop.proc is not None
    wait_for("the revoked laptop to stop", lambda: laptop.proc.poll() is not None)  # type: ignore[union-attr]
    assert "revoked" in laptop.logs(80)
