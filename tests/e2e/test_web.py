"""Issue 5 in a real browser: Alice and Bob each run `boxless up` on an empty home,
on their own light node with two service nodes between them, and use the web UI
in Chromium (Debian's, driven by Playwright): onboarding from scratch, adding
each other by link, a conversation whose ticks reach "read", a reaction and an
edit seen on the other side, history after a reload, and Bob's `up` restarted
while Alice sends, his UI catching up after a reload.

Alice uses a phone-sized window and Bob a desktop one, so both layouts are
exercised. Screenshots of the main screens go to docs/screenshots/.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.e2e.cutoff import lone_service_node
from tests.userproc import PASS, UserProcess

sync_api = pytest.importorskip("playwright.sync_api")
Page = sync_api.Page
expect = sync_api.expect

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
WAIT_MS = 30_000  # the longest any single step may take
pytestmark = pytest.mark.slow
expect.set_options(timeout=WAIT_MS)


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(found):
        message = "Debian's chromium is missing: run scripts/install_chromium.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def world(world: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Alice and Bob on empty homes (they onboard in the browser), on the session's
    two service nodes (the ``world`` of tests/e2e/conftest.py)."""
    s1, s2 = world.s1, world.s2
    users = []
    try:
        for name, peers in (("alice", [s1.addr, s2.addr]), ("bob", [s2.addr, s1.addr])):
            (tmp_path / name).mkdir()
            users.append(UserProcess(name, tmp_path / name, peers).start())
        with lone_service_node(tmp_path / "lone", s2.addr) as lone:  # Bob's, later
            yield {"s1": s1, "s2": s2, "alice": users[0], "bob": users[1], "lone": lone}
    finally:
        for p in users:
            p.kill()
            print(f"--- {p.name} ---\n{p.logs()}")


def open_ui(browser: Any, user: UserProcess, viewport: dict[str, int]) -> Page:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and print(f"[{user.name} console] {m.text}"))
    page.on("pageerror", lambda e: print(f"[{user.name} page error] {e}"))
    page.goto(f"{user.url}/?token={user.token}")
    return page


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def onboard(page: Page, name: str, screenshot: bool = False) -> None:
    """Create an account in the browser: passphrase, phrase, three words back, name."""
    page.get_by_role("button", name="Create a new account").click()
    page.get_by_label("Passphrase for this device").fill(PASS)
    page.get_by_label("Repeat the passphrase").fill(PASS)
    page.get_by_role("button", name="Next").click()
    words_box = page.get_by_role("list", name="Recovery phrase")
    expect(words_box.locator("li")).to_have_count(24)
    words = words_box.locator(".word").all_inner_texts()
    if screenshot:
        shot(page, "onboarding")
    page.get_by_label("I wrote down all 24 words").check()
    page.get_by_role("button", name="Next").click()
    inputs = page.locator("input[id^=word-]")
    expect(inputs).to_have_count(3)
    for i in range(3):
        field = inputs.nth(i)
        position = int((field.get_attribute("id") or "").removeprefix("word-"))
        field.fill(words[position - 1])
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def tab(page: Page, name: str) -> None:
    page.locator(f"#tab-{name}").click()


def bubble(page: Page, text: str) -> Any:
    """The newest message bubble whose own text (not a quote) contains ``text``."""
    return page.locator(".message .bubble").filter(has=page.locator(".text", has_text=text)).last


# The QR image the Me tab shows, as bytes (it is a blob: URL fetched with the token).
# (A function run on the element, not wait_for_function: Playwright evaluates that
# from a string, which the UI's Content-Security-Policy, with no 'unsafe-eval', blocks.)
IMG_LOADED = """async (img) => {
  for (let i = 0; !(img.complete && img.naturalWidth > 0); i++) {
    if (i > 600) throw new Error("the image did not load within 30 s");
    await new Promise(r => setTimeout(r, 50));
  }
}"""
SW_ACTIVE = """() => Promise.race([
  navigator.serviceWorker.ready.then(r => Boolean(r.active)),
  new Promise(r => setTimeout(() => r("no service worker after 10 s"), 10000)),
])"""
QR_BYTES = """async () => {
  const img = document.querySelector('img.qr');
  while (!(img.complete && img.naturalWidth > 0)) await new Promise(r => setTimeout(r, 50));
  const buf = await (await fetch(img.src)).arrayBuffer();
  return Array.from(new Uint8Array(buf));
}"""


def photo(path: Path) -> None:
    """A 900x600 picture, larger than any avatar: the browser must scale it down."""
    image = Image.new("RGB", (900, 600), (250, 190, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((300, 150, 600, 450), fill=(220, 70, 60))
    draw.rectangle((0, 420, 900, 600), fill=(40, 90, 160))
    image.save(path)


def test_two_people_chat_in_the_browser(
    world: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    alice_up: UserProcess = world["alice"]
    bob_up: UserProcess = world["bob"]
    alice = open_ui(browser, alice_up, PHONE)
    bob = open_ui(browser, bob_up, DESKTOP)
    assert "token=" not in alice.url  # the token leaves the address bar at once

    # Onboarding from scratch, both of them.
    onboard(alice, "Alice", screenshot=True)
    onboard(bob, "Bob")
    assert alice_up.call("GET", "/me")["name"] == "Alice"

    # Alice adds Bob by pasting the link from his Me tab.
    tab(bob, "me")
    bob_link = bob.locator("#my-link")
    expect(bob_link).to_have_value(re.compile(r"^boxless://c/"))
    link = bob_link.input_value()
    qr = tmp_path / "bob-qr.png"
    qr.write_bytes(bytes(bob.evaluate(QR_BYTES)))
    tab(alice, "contacts")
    # A picture of the QR code fills in a link of Bob's (each code is freshly
    # signed, so it need not be the very same text as the one pasted below).
    alice.get_by_label("Or choose a picture of their QR code").set_input_files(str(qr))
    expect(alice.locator(".add-contact .hint")).to_contain_text("Found Bob")
    expect(alice.get_by_label("Their contact link")).to_have_value(re.compile(r"^boxless://c/"))
    alice.get_by_label("Their contact link").fill(link)
    alice.get_by_label("A few words so they know who you are (optional)").fill("hi Bob, it's Alice")
    alice.get_by_role("button", name="Send contact request").click()
    expect(alice.locator(".row", has_text="Bob")).to_contain_text("Request sent")

    # Bob sees the request and accepts it.
    tab(bob, "contacts")
    expect(bob.locator("#tab-contacts")).to_have_attribute("aria-label", "Contacts, 1 new")
    expect(bob.locator(".request-row")).to_contain_text("hi Bob, it's Alice")
    shot(bob, "contacts")
    bob.get_by_role("button", name="Accept Alice").click()
    expect(alice.locator(".row", has_text="Bob").locator(".state")).to_have_count(0)

    # A conversation: ticks reach "read" once Bob has it open.
    tab(alice, "chats")
    alice.locator(".chat-row", has_text="Bob").click()
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("Hello Bob! 👋")
    composer.press("Enter")
    first = bubble(alice, "Hello Bob!")
    expect(first.locator(".ticks")).to_have_attribute("data-state", "delivered")
    tab(bob, "chats")
    expect(bob.locator(".chat-row", has_text="Alice").locator(".unread")).to_have_text("1")
    bob.locator(".chat-row", has_text="Alice").click()
    expect(bubble(bob, "Hello Bob!")).to_be_visible()
    expect(first.locator(".ticks")).to_have_attribute("data-state", "read")

    # Typing shows on the other side; a reply quotes the message.
    bob_composer = bob.get_by_label("Message", exact=True)
    bob_composer.press_sequentially("Hi Al", delay=30)
    expect(alice.locator(".conv-sub")).to_have_text("typing…")
    bob_composer.fill("")
    bubble(bob, "Hello Bob!").click()
    bob.get_by_role("button", name="Reply").click()
    bob_composer.fill("Hi Alice, good to see you here")
    bob_composer.press("Enter")
    reply = bubble(alice, "good to see you here")
    expect(reply.locator(".quote")).to_have_text("Hello Bob! 👋")

    # A reaction from Bob and an edit from Alice, each seen on the other side.
    bubble(bob, "Hello Bob!").click()
    bob.get_by_role("button", name="React with 👍").click()
    chips = alice.locator(".message.out", has=alice.locator(".text", has_text="Hello Bob!"))
    expect(chips.locator(".chip")).to_have_text("👍")
    first.click()
    alice.get_by_role("button", name="Edit").click()
    expect(composer).to_have_value("Hello Bob! 👋")
    composer.fill("Hello Bob! (edited in the browser)")
    composer.press("Enter")
    edited = bubble(bob, "edited in the browser")
    expect(edited.locator(".edited")).to_be_visible()
    expect(bubble(alice, "edited in the browser").locator(".ticks")).to_have_attribute(
        "data-state", "read"
    )
    for text in ("Shall we try the web UI?", "It has ticks and reactions"):
        composer.fill(text)
        composer.press("Enter")
    expect(bubble(bob, "ticks and reactions")).to_be_visible()
    expect(bubble(alice, "ticks and reactions").locator(".ticks")).to_have_attribute(
        "data-state", "read"
    )
    shot(alice, "conversation")
    shot(bob, "desktop")

    # A reload keeps the history (and the token, from this tab's session storage).
    alice.reload()
    expect(bubble(alice, "edited in the browser")).to_be_visible()
    expect(alice.locator(".message")).to_have_count(4)
    alice.get_by_role("link", name="Back to chats").click()
    expect(alice.locator(".chat-row", has_text="Bob")).to_contain_text("ticks and reactions")
    shot(alice, "chats")
    tab(alice, "me")
    alice.locator("img.qr").evaluate(IMG_LOADED)
    shot(alice, "me")

    # A picture chosen on the Me tab is scaled down in the browser and shown to Bob.
    photo(tmp_path / "photo.png")
    alice.locator("#my-picture").set_input_files(str(tmp_path / "photo.png"))
    expect(alice.locator(".profile img.avatar")).to_be_visible()
    expect(alice.get_by_role("button", name="Remove picture")).to_be_visible()
    shot(alice, "avatar-me")
    sent = base64.b64decode(alice_up.call("GET", "/me")["avatar"])
    with Image.open(io.BytesIO(sent)) as image:
        assert image.format == "JPEG" and image.size == (256, 256) and len(sent) <= 48 * 1024
    expect(bob.locator(".chat-row", has_text="Alice").locator("img.avatar")).to_be_visible()
    expect(bob.locator(".conv-avatar img.avatar")).to_be_visible()
    expect(bob.locator(".message.in img.avatar").first).to_be_visible()
    shot(bob, "avatar-desktop")

    # Installable: the service worker is active (the manifest links the icons).
    assert alice.evaluate(SW_ACTIVE) is True

    # Delete for both; then Bob checks the safety number and marks Alice verified.
    tab(alice, "chats")
    alice.locator(".chat-row", has_text="Bob").click()
    bubble(alice, "Shall we try").click()
    alice.get_by_role("button", name="Delete").click()
    alice.get_by_role("button", name="Delete for both").click()
    expect(bob.locator(".bubble.deleted")).to_have_text(re.compile("This message was deleted"))
    bob.get_by_role("link", name="Safety number and verification").click()
    expect(bob.get_by_label("Safety number").locator("span")).to_have_count(12)
    bob.get_by_role("button", name="They match: mark as verified").click()
    expect(bob.get_by_role("status").filter(has_text="You verified Alice")).to_be_visible()
    shot(bob, "verify")
    bob.get_by_role("link", name="Back to the chat").click()
    expect(bob.locator(".conv-sub")).to_have_text("verified")

    # Bob's node goes down while Alice writes; after a restart his UI catches up.
    bob_up.stop()
    for i in range(3):
        composer.fill(f"while you were away {i}")
        composer.press("Enter")
    expect(bubble(alice, "while you were away 2").locator(".ticks")).to_have_attribute(
        "data-state", "sent"
    )
    lone = world["lone"]  # from now on Bob's only service node (to cut him off below)
    bob_up.service_peers = [lone.addr]
    bob_up.start()
    bob.goto(f"{bob_up.url}/?token={bob_up.token}")
    bob.locator(".chat-row", has_text="Alice").click()
    for i in range(3):
        expect(bubble(bob, f"while you were away {i}")).to_be_visible()
    expect(bubble(alice, "while you were away 2").locator(".ticks")).to_have_attribute(
        "data-state", "read"
    )

    # Bob's node is cut off the network: his page says so, and so does a page that
    # opens after the news (that event went out before it listened). His service node
    # restarts: the banner goes (within seconds: our redials skip py-libp2p's 60 s
    # negative dial cache) and Alice's next message reaches him.
    banner = bob.locator(".banner")
    expect(banner).to_be_hidden()
    lone.cut()
    expect(banner).to_have_text(re.compile("cannot reach the network"))
    bob.reload()
    expect(banner).to_have_text(re.compile("cannot reach the network"))
    lone.back()
    expect(banner).to_be_hidden()
    composer.fill("are you back?")
    composer.press("Enter")
    expect(bubble(bob, "are you back?")).to_be_visible()
