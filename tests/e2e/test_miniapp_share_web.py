"""shareToChat sends an app card, not plain text (docs/miniapps.md): an app's page
asks to share, Alice confirms the chat and the permission in Boxless's dialogs, Bob
gets a `<app id>.boxcard` attachment with the card as caption; Alice's chat renders
it as the app's card with "Open" (the app is installed), Bob's with "Get the app"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxless.identity.keys import Identity
from boxless.miniapps import pack_files
from tests.e2e.test_miniapps_web import _icon
from tests.e2e.test_web import DESKTOP, expect, open_ui, shot
from tests.e2e.world import wait_for

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).parent / "miniapp_share"
APP_ID = "org.boxless.test.share"


def test_share_to_chat_sends_an_app_card(world: Any, browser: Any) -> None:
    alice, bob = world.persons("Alice", "Bob")
    world.befriend(alice, bob)
    dev = Identity.from_private_bytes(bytes([7]) * 32)
    manifest = {
        "id": APP_ID,
        "name": "Share test",
        "version": "1.0.0",
        "icon": "icon.png",
        "entry": "index.html",
        "permissions": ["share"],
        "developer": dev.public_key.hex(),
        "bot": world.key(bob),
    }
    files = {p.name: p.read_bytes() for p in APP_DIR.iterdir() if p.is_file()}
    files["icon.png"] = _icon()
    files["manifest.json"] = json.dumps(manifest).encode()
    r = httpx.post(
        f"{alice.url}/api/v1/miniapps",
        content=pack_files(files, dev),
        headers={"Authorization": f"Bearer {alice.token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text

    page = open_ui(browser, alice, DESKTOP)
    page.goto(f"{alice.url}/?token={alice.token}#/app/{APP_ID}")
    page.frame_locator("#miniapp-frame").locator("#share").click()
    dialog = page.locator("dialog.miniapp-dialog")
    expect(dialog).to_contain_text("Share from Share test")
    expect(dialog).to_contain_text("Latte")
    dialog.locator("select.miniapp-chat").select_option(f"contact:{world.key(bob)}")
    dialog.locator(".miniapp-yes").click()
    # first use of share: the permission, asked by Boxless in a new dialog (the first
    # one goes on its close event: wait for the text, not for any dialog)
    expect(dialog).to_contain_text("share cards to your chats")
    dialog.locator(".miniapp-yes").click()
    out = page.frame_locator("#miniapp-frame").locator("#out")
    wait_for("the share's answer", lambda: "shared" in out.inner_text(), timeout=30)

    # Bob got a card: an attachment named after the app, the card as its caption
    def bob_card() -> Any:
        msgs = bob.call("GET", f"/contacts/{world.key(alice)}/messages")
        msgs = msgs.get("messages", msgs) if isinstance(msgs, dict) else msgs
        return next((m for m in msgs if "Latte" in (m.get("text") or "")), None)

    msg = wait_for("Bob's card", bob_card, timeout=30)
    assert "Share test: Latte\nOrder 42 is ready" in msg["text"]
    files = bob.call("GET", f"/chats/contact:{world.key(alice)}/attachments")["files"]
    assert [f["name"] for f in files] == [f"{APP_ID}.boxcard"], files

    page.goto(f"{alice.url}/?token={alice.token}#/chat/{world.key(bob)}")
    card = page.locator(f'.miniapp-sharecard[data-app="{APP_ID}"]')
    card.locator(".miniapp-sharecard-open").wait_for()
    expect(card).to_contain_text("Share test")
    shot(page, "miniapp-sharecard")
    card.locator(".miniapp-sharecard-open").click()
    page.locator("#miniapp-frame").wait_for()

    bpage = open_ui(browser, bob, DESKTOP)
    bpage.goto(f"{bob.url}/?token={bob.token}#/chat/{world.key(alice)}")
    bpage.locator(f'.miniapp-sharecard[data-app="{APP_ID}"] .miniapp-sharecard-get').wait_for()
