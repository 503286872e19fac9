"""Issue 11, "a login that lasts", in Chromium against real `boxless up` processes.

The link's token becomes an HttpOnly session cookie; the session holds in a new
tab and in a new browser context carrying the cookies over (a browser restart);
after `boxless up` restarts without its passphrase (locked), the page shows the
lock screen and the passphrase opens the account again, history intact; "Log out"
brings the lock screen back, and a cookie from another origin's page cannot act.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.test_web import DESKTOP, WAIT_MS, bubble, expect, shot
from tests.userproc import PASS

pytestmark = pytest.mark.slow


def new_page(context: Any, name: str) -> Any:
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and print(f"[{name} console] {m.text}"))
    page.on("pageerror", lambda e: print(f"[{name} page error] {e}"))
    return page


def open_chat(page: Any, name: str) -> None:
    page.locator("#tab-chats").click()
    page.locator(".chat-row", has_text=name).click()


def test_a_login_that_lasts(world: Any, browser: Any) -> None:
    ann, ben = world.persons("Ann", "Ben")
    world.befriend(ann, ben)
    port = urlsplit(ann.url).port
    cookie_name = f"boxless_session_{port}"

    # The link: traded for a cookie, stripped from the address bar; the chat works.
    context = browser.new_context(viewport=DESKTOP)
    page = new_page(context, "Ann")
    page.goto(f"{ann.url}/?token={ann.token}")
    expect(page.locator(".tabbar")).to_be_visible()
    assert "token" not in page.url
    open_chat(page, "Ben")
    composer = page.get_by_label("Message", exact=True)
    composer.fill("before the restart")
    composer.press("Enter")
    expect(bubble(page, "before the restart").locator(".ticks")).to_have_attribute(
        "data-state", "delivered"
    )
    (cookie,) = [c for c in context.cookies() if c["name"] == cookie_name]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("() => document.cookie") == ""  # script never sees it
    assert page.evaluate("() => sessionStorage.length + localStorage.length") == 0

    # A new tab at the bare URL is logged in.
    tab = new_page(context, "Ann tab")
    tab.goto(f"{ann.url}/#/chats")
    expect(tab.locator(".chat-row", has_text="Ben")).to_be_visible()
    tab.close()

    # A browser restart: a new context with the saved cookies.
    state = context.storage_state()
    context.close()
    context = browser.new_context(viewport=DESKTOP, storage_state=state)
    page = new_page(context, "Ann restarted")
    page.goto(f"{ann.url}/")
    expect(page.locator(".chat-row", has_text="Ben")).to_be_visible()

    # Another page on this machine (another port: the same *site* for cookies)
    # posting with the cookie: refused, no Origin of ours.
    jar = {"Cookie": f"{cookie_name}={cookie['value']}"}
    r = httpx.post(
        f"{ann.url}/api/v1/contacts",
        json={"link": "x"},
        headers={**jar, "Origin": "http://127.0.0.1:1"},
    )
    assert r.status_code == 403
    r = httpx.post(f"{ann.url}/api/v1/contacts", json={"link": "x"}, headers=jar)
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_required"

    # The node restarts without its passphrase: locked. The open page finds out.
    ann.stop()
    ann.passphrase_in_env = False
    ann.extra_args = [*ann.extra_args, "--api", f"127.0.0.1:{port}"]
    ann.start()
    assert ann.request("GET", "/me").status_code == 423
    lock = page.locator("main.lock")  # no reload: the page's reconnect finds it locked
    expect(lock).to_have_attribute("data-reason", "locked")
    expect(page.get_by_role("heading", name="Boxless is locked")).to_be_visible()
    shot(page, "lock")
    page.get_by_label("Passphrase").fill("not the passphrase")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("alert")).to_contain_text("does not open this account")
    page.get_by_label("Passphrase").fill(PASS)
    page.get_by_role("button", name="Unlock").click()
    open_chat(page, "Ben")
    expect(bubble(page, "before the restart")).to_be_visible()
    assert ann.request("GET", "/me").status_code == 200

    # Log out: the lock screen (a login now), and the old cookie is dead.
    page.locator("#tab-me").click()
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.locator("main.lock")).to_have_attribute("data-reason", "unauthorized")
    r = httpx.get(f"{ann.url}/api/v1/me", headers=jar)
    assert r.status_code == 401
    context.close()
