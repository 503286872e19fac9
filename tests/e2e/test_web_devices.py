"""Issue 15 in a real browser: link a second device by its QR code, list, revoke.

Alice's new laptop runs `boxless link` (a real process on the session's world); its
QR code, written as a picture, is read in Alice's browser by the vendored jsQR
(Devices → QR code from a picture), which shows the laptop's name and the short
code — the same the laptop printed. Confirmed, the laptop receives the account
(Bob and his message included) and starts with `boxless up`; the device list shows
both; revoked in the browser, the laptop wipes its keys and stops.
Screenshots: docs/screenshots/devices-link.png, devices.png.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, open_ui, shot
from tests.e2e.world import wait_for
from tests.userproc import UserProcess, env

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def _link_process(world: Any, home: Path, png: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "boxless", "link", "--home", str(home), "--name", "Alice laptop"]
    for addr in (world.s1.addr, world.s2.addr):
        cmd += ["--service-peer", addr]
    cmd += ["--qr-png", str(png)]
    proc = subprocess.Popen(
        cmd, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.startswith("Code:"):
            return proc, line.split(":", 1)[1].strip()
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("boxless link printed no code")


def test_link_a_device_by_qr_list_and_revoke(world: Any, browser: Any, tmp_path: Path) -> None:
    alice, bob = world.persons("Alice", "Bob")
    world.befriend(alice, bob)
    ka, kb = world.key(alice), world.key(bob)
    bob.call("POST", f"/contacts/{ka}/messages", {"text": "hello before the link"})
    wait_for(
        "Alice to have Bob's message",
        lambda: any(
            m["text"] == "hello before the link"
            for m in alice.call("GET", f"/contacts/{kb}/messages")
        ),
    )
    home2 = world.root / f"alice-laptop-{time.monotonic_ns()}"
    home2.mkdir()
    png = tmp_path / "device-qr.png"
    proc, code = _link_process(world, home2, png)
    try:
        page = open_ui(browser, alice, DESKTOP)
        page.locator("#tab-me").click()
        page.locator("#open-devices").click()
        items = page.locator(".device-item")
        expect(items).to_have_count(1)
        wait_for("the QR picture", png.exists)
        page.set_input_files("#device-link-image", str(png))  # read by jsQR in the page
        expect(page.locator("#device-link-code")).to_have_text(code)
        expect(page.locator(".device-preview")).to_contain_text("Alice laptop")
        shot(page, "devices-link")
        page.locator("#device-link-confirm").click()
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "Linked to Alice" in out
    finally:
        if proc.poll() is None:
            proc.kill()
    expect(items).to_have_count(2)
    expect(page.locator(".device-item", has_text="Alice laptop")).to_have_count(1)

    # the laptop starts with the account: Bob and his message are there
    laptop = UserProcess("Alice laptop", home2, [world.s2.addr, world.s1.addr]).launch()
    world.people.append(laptop)
    laptop.wait_ready(90)
    assert world.key(laptop) == ka
    wait_for(
        "the laptop to have Bob's message",
        lambda: any(
            m["text"] == "hello before the link"
            for m in laptop.call("GET", f"/contacts/{kb}/messages")
        ),
    )
    page.reload()
    page.locator("#tab-me").click()
    page.locator("#open-devices").click()
    expect(items).to_have_count(2)
    page.wait_for_function("() => [...document.images].every((i) => i.complete)")
    shot(page, "devices")

    # revoke it: the laptop wipes its keys and stops
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".device-item", has_text="Alice laptop").locator(".device-revoke").click()
    expect(items).to_have_count(1)
    assert laptop.proc is not None
    wait_for("the revoked laptop to stop", lambda: laptop.proc.poll() is not None)  # type: ignore[union-attr]
    assert "revoked" in laptop.logs(80)
