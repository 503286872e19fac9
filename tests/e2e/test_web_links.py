"""Issue 11 in a real browser: short links and QR codes a camera reads, camera scanning,
dark mode and the polish items, on `boxless up` processes of the session's world.

Ann's Me tab shows a contact link of at most 120 characters; its QR code, read
back by zxing from a SCREENSHOT of the page, is that link. Ben (phone, dark
mode) adds Ann by pasting it: the card is fetched from the store by what the
link names; re-adding says "already a contact". Ann's group invite link is
short too and its QR decodes from a screenshot; Ben joins by it. Cat's
Chromium has a fake camera that films Ann's QR code: "Scan with the camera"
reads it with jsQR and shows whose link it is.
Screenshots: docs/screenshots/contact-link.png, invite-link-qr.png, dark.png,\ndark-contacts.png.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from boxless.identity.contact_code import decode_qr_image
from tests.e2e.test_web import (
    CHROMIUM_ARGS,
    DESKTOP,
    IMG_LOADED,
    PHONE,
    SHOTS,
    WAIT_MS,
    chromium_path,
    open_ui,
    shot,
    tab,
)
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def qr_from_screenshot(page: Any, name: str) -> str:
    """Screenshot the page to docs/screenshots/<name>.png and read the QR code in it."""
    shot(page, name)
    return decode_qr_image(SHOTS / f"{name}.png")


def fake_camera_file(qr_png: Path, out: Path) -> Path:
    """A Y4M video (what Chromium's fake camera plays) of the QR picture on grey."""
    w, h = 640, 480
    frame = Image.new("L", (w, h), 200)
    code = Image.open(qr_png).convert("L")
    side = 300
    frame.paste(code.resize((side, side), Image.NEAREST), ((w - side) // 2, (h - side) // 2))
    plane = frame.tobytes()
    chroma = bytes([128]) * (w // 2 * h // 2)
    header = f"YUV4MPEG2 W{w} H{h} F5:1 Ip A1:1 C420jpeg\n".encode()
    out.write_bytes(header + b"FRAME\n" + plane + chroma + chroma)
    return out


def test_short_links_qr_from_screen_camera_scan_and_dark_mode(
    world: Any, browser: Any, tmp_path: Path
) -> None:
    ann, ben, cat = world.persons("Ann", "Ben", "Cat")
    link = wait_for(  # short once Ann's card is on the network (a second or two)
        "Ann's short link",
        lambda: lk if len(lk := ann.call("GET", "/me")["link"]) <= 120 else None,
    )
    assert re.fullmatch(r"boxless://c/[A-Za-z0-9_-]{68}", link), link

    # Ann's Me tab at 1280x800: the link, its QR code read from the screen, the name
    # field inside its card.
    page = open_ui(browser, ann, DESKTOP)
    tab(page, "me")
    expect(page.get_by_label("My contact link")).to_have_value(link)
    page.locator("img.qr").evaluate(IMG_LOADED)
    page.locator("img.qr").evaluate("(img) => img.scrollIntoView({block: 'center'})")
    assert qr_from_screenshot(page, "contact-link") == link
    card = page.locator(".profile").bounding_box()
    field = page.locator("#my-name-input").bounding_box()
    assert card and field and field["x"] + field["width"] <= card["x"] + card["width"] + 0.5

    # Ben, on a phone in dark mode, adds Ann by the short link.
    dark = browser.new_context(viewport=PHONE, color_scheme="dark")
    dark.set_default_timeout(WAIT_MS)
    bp = dark.new_page()
    bp.on("pageerror", lambda e: print(f"[ben page error] {e}"))
    bp.goto(f"{ben.url}/?token={ben.token}")
    tab(bp, "contacts")
    bp.get_by_label("Their contact link").fill(link)
    bp.get_by_role("button", name="Send contact request").click()
    expect(bp.locator("#toasts")).to_contain_text("Request sent to Ann")
    ben_key = ben.call("GET", "/me")["identity_key"]
    wait_for(
        "Ann to get Ben's request",
        lambda: any(c["identity_key"] == ben_key for c in ann.call("GET", "/contacts")),
    )
    ann.call("POST", f"/contacts/{ben_key}/accept")
    wait_for(
        "Ben to see Ann accepted",
        lambda: any(
            c["name"] == "Ann" and c["state"] == "accepted" for c in ben.call("GET", "/contacts")
        ),
    )
    bp.reload()
    tab(bp, "contacts")
    expect(bp.locator(".row", has_text="Ann")).to_be_visible()
    bp.get_by_label("Their contact link").fill(link)
    bp.get_by_role("button", name="Send contact request").click()
    expect(bp.locator("#toasts")).to_contain_text("Ann is already a contact")
    toast = bp.locator("#toasts .toast").last.bounding_box()
    assert toast and toast["y"] + toast["height"] < PHONE["height"] / 4  # never over a composer
    bg = bp.evaluate("getComputedStyle(document.querySelector('.rows')).backgroundColor")
    assert bg == "rgb(30, 30, 30)", bg  # the dark palette, not white
    shot(bp, "dark-contacts")
    ann_key = ann.call("GET", "/me")["identity_key"]
    ann.call("POST", f"/contacts/{ben_key}/messages", {"text": "Welcome, Ben: this is dark mode"})
    bp.goto(f"{ben.url}/#/chat/{ann_key}")
    expect(bp.locator(".bubble", has_text="dark mode")).to_be_visible()
    bp.get_by_label("Message", exact=True).fill("Easy on the eyes")
    bp.get_by_label("Message", exact=True).press("Enter")
    expect(bp.locator(".bubble.out", has_text="Easy on the eyes")).to_be_visible()
    shot(bp, "dark")

    # Ann's group invite link: short, its QR read from the screen; Ben joins by it.
    gid = ann.call("POST", "/groups", {"name": "Climbing"})["id"]
    tab(page, "chats")  # the Me tab's QR code leaves the screen
    page.goto(f"{ann.url}/#/group-info/{gid}")
    # A group picture of any size is cropped and shrunk in the browser, as a profile
    # picture is (to ~1.4 KB: it travels in a signed group op).
    big = tmp_path / "big.jpg"
    Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3)).resize((2400, 1800)).save(big)
    assert big.stat().st_size > 100 * 1024
    page.get_by_label("Group picture").set_input_files(str(big))
    pic = wait_for("the group picture", lambda: ann.call("GET", f"/groups/{gid}").get("avatar"))
    raw = base64.b64decode(pic)
    assert raw.startswith(b"\xff\xd8") and len(raw) <= 1400, len(raw)
    expect(page.locator(".group-head img.avatar")).to_be_visible()
    page.get_by_role("button", name="Invite link").click()
    box = page.get_by_label("Invite link", exact=True)
    expect(box).to_have_value(re.compile(r"^boxless://g/[A-Za-z0-9_-]{47}$"))
    glink = box.input_value()
    page.locator(".invite-link img.qr").evaluate(IMG_LOADED)
    page.locator(".invite-link img.qr").evaluate("(img) => img.scrollIntoView({block: 'center'})")
    assert qr_from_screenshot(page, "invite-link-qr") == glink
    bp.goto(f"{ben.url}/#/join-group")
    bp.get_by_label("Group invite link").fill(glink)
    bp.get_by_role("button", name="Show the group").click()
    expect(bp.locator(".join-preview")).to_contain_text("Climbing")
    expect(bp.locator(".join-preview")).to_contain_text("Invited by Ann")
    bp.get_by_role("button", name="Join group").click()
    wait_for(
        "Ben to be in Ann's group",
        lambda: any(g["id"] == gid and g.get("member", True) for g in ben.call("GET", "/groups")),
    )
    dark.close()

    # Cat's camera films Ann's QR code (the picture Ann's page shows).
    png = httpx.get(
        ann.url + "/api/v1/me/qr.png", headers={"Authorization": f"Bearer {ann.token}"}
    ).content
    (tmp_path / "qr.png").write_bytes(png)
    video = fake_camera_file(tmp_path / "qr.png", tmp_path / "qr.y4m")
    pw_browser = browser.browser_type.launch(
        executable_path=chromium_path(),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        cp = open_ui(pw_browser, cat, PHONE)
        tab(cp, "contacts")
        cp.get_by_role("button", name="Scan with the camera").click()
        expect(cp.get_by_label("Their contact link")).to_have_value(link)
        expect(cp.locator(".add-contact .hint")).to_contain_text("Found Ann")
        # A picture of the group's QR code (the screenshot) opens the group's join screen.
        cp.get_by_label("Or choose a picture of their QR code").set_input_files(
            str(SHOTS / "invite-link-qr.png")
        )
        expect(cp.locator(".join-preview")).to_contain_text("Climbing")
    finally:
        pw_browser.close()
