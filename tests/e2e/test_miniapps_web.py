"""Mini apps in Chromium against real `boxless up` processes (docs/miniapps.md).

One browser test, several checks: a hostile app packed here (tests/e2e/miniapp_hostile)
and installed over the API tries every escape — the parent DOM, the token, cookies and
storage of the Boxless origin, fetch/WebSocket/img/beacon to any URL, popups, top
navigation, the bridge without permission — and reports what happened through the
bridge (storage, after a Boxless permission dialog); then it floods the bridge and is
suspended. The browser's network log must show no request from the app's frame
outside its own files. Bad bundles are refused over the API with their reason.
WebRTC, which no CSP directive or sandbox flag stops, is tried in the app's realm and
in every fresh realm the app can try to make (frames by element, innerHTML, srcdoc,
document.write, DOMParser, ranges, shadow roots), each aimed at its own UDP socket of
the test: not one datagram may arrive, while the Boxless page's own WebRTC (the
control) reaches its socket.
"""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from boxless.identity.keys import Identity
from boxless.miniapps import pack_files
from tests.e2e.eventgate import EventGate
from tests.e2e.test_web import DESKTOP, expect, open_ui, shot
from tests.e2e.world import wait_for

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).parent / "miniapp_hostile"
APP_ID = "org.boxless.test.hostile"
STUN_TARGETS = (
    "write direct webkit restore prototype webtransport element index inner adjacent "
    "range parsed shadow declarative"
).split()


def _icon() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 60, 60)).save(buf, "PNG")
    return buf.getvalue()


class _Attacker(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def attacker_server() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1:0 that records every request it gets (none must come)."""
    hits: list[str] = []
    handler = type("Handler", (_Attacker,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def udp_sockets(names: list[str]) -> Iterator[dict[str, socket.socket]]:
    """One UDP socket on 127.0.0.1:0 per name (the STUN targets of the app)."""
    socks: dict[str, socket.socket] = {}
    try:
        for name in names:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            socks[name] = sock
        yield socks
    finally:
        for sock in socks.values():
            sock.close()


def datagrams(sock: socket.socket) -> int:
    n = 0
    while n < 10_000:
        try:
            sock.recv(4096)
        except BlockingIOError:
            break
        n += 1
    return n


def _bundle(
    dev: Identity,
    bot: str,
    ui_origin: str,
    version: str = "1.0.0",
    attacker: str = "",
    stun: dict[str, int] | None = None,
) -> bytes:
    manifest = {
        "id": APP_ID,
        "name": "Hostile test app",
        "version": version,
        "icon": "icon.png",
        "entry": "index.html",
        "permissions": ["storage"],  # not backend, not user.name: the app tries them anyway
        "developer": dev.public_key.hex(),
        "bot": bot,
    }
    files = {name.name: name.read_bytes() for name in APP_DIR.iterdir() if name.is_file()}
    ports = json.dumps(stun or dict.fromkeys(STUN_TARGETS, 9)).encode()
    files["app.js"] = (
        files["app.js"]
        .replace(b"__UI_ORIGIN__", ui_origin.encode())
        .replace(b"__ATTACKER__", attacker.encode())
        .replace(b"__STUN__", ports)
    )
    files["early.js"] = files["early.js"].replace(b"__STUN__", ports)
    files["icon.png"] = _icon()
    files["manifest.json"] = json.dumps(manifest).encode()
    return pack_files(files, dev)


def test_a_hostile_mini_app_cannot_escape(world: Any, browser: Any) -> None:
    with attacker_server() as (attacker, hits), udp_sockets([*STUN_TARGETS, "control"]) as udp:
        _hostile_app(world, browser, attacker, hits, udp)


def _hostile_app(
    world: Any, browser: Any, attacker: str, hits: list[str], udp: dict[str, socket.socket]
) -> None:
    alice, bob = world.persons("Alice", "Bob")
    world.befriend(alice, bob)
    ui_origin = alice.url
    dev, other_dev = (
        Identity.from_private_bytes(bytes(32)),
        Identity.from_private_bytes(bytes(range(32))),
    )
    bot = world.key(alice)
    stun = {name: udp[name].getsockname()[1] for name in STUN_TARGETS}
    data = _bundle(dev, bot, ui_origin, attacker=attacker, stun=stun)

    def install(body: bytes) -> Any:
        import httpx

        return httpx.post(
            f"{alice.url}/api/v1/miniapps",
            content=body,
            headers={
                "Authorization": f"Bearer {alice.token}",
                "Content-Type": "application/octet-stream",
            },
            timeout=30,
        )

    # refused bundles, each with its reason
    tampered = data.replace(b"Tries every way out", b"Tries every way in!")
    r = install(tampered)
    assert r.status_code == 422 and "bad signature" in r.json()["error"]["message"]
    r = install(data[:700])  # cut inside the first file
    assert r.status_code == 422 and "damaged bundle" in r.json()["error"]["message"]
    # the good bundle comes as an app card: Bob sends it as a .boxapp file
    import httpx

    sent = httpx.post(
        f"{bob.url}/api/v1/contacts/{world.key(alice)}/attachments",
        params={"name": "hostile.boxapp", "caption": "try my app"},
        content=data,
        headers={
            "Authorization": f"Bearer {bob.token}",
            "Content-Type": "application/octet-stream",
        },
        timeout=60,
    )
    assert sent.status_code == 201, sent.text
    page = open_ui(browser, alice, DESKTOP)
    page.goto(f"{alice.url}/?token={alice.token}#/chat/{world.key(bob)}")
    card = page.locator(".miniapp-card-install")
    card.wait_for(timeout=60_000)  # the file fetched from the service nodes
    shot(page, "miniapps-card")
    # Discover → Mini apps lists it under "Shared in your chats" until it is installed
    page.goto(f"{alice.url}/?token={alice.token}#/miniapps")
    shared = page.locator("#miniapp-shared .miniapp-shared-row")
    expect(shared).to_have_count(1)
    expect(shared).to_contain_text("hostile")
    shot(page, "miniapps-shared")
    page.goto(f"{alice.url}/?token={alice.token}#/chat/{world.key(bob)}")
    card.wait_for()
    card.click()  # the node verifies the signature, then installs
    page.locator(".miniapp-card-open").wait_for()
    r = install(_bundle(other_dev, bot, ui_origin, version="2.0.0", attacker=attacker, stun=stun))
    assert r.status_code == 422 and "another developer key" in r.json()["error"]["message"]
    listing = alice.call("GET", "/miniapps")
    origin = listing["origin"]
    app_host = urlsplit(origin).netloc
    assert [a["id"] for a in listing["apps"]] == [APP_ID]

    requests: list[tuple[str, str]] = []  # (url, the frame's url) of every request

    def log(req: Any) -> None:
        try:
            frame = req.frame.url
        except Exception:  # noqa: BLE001 - a service worker's request has no frame
            frame = "service-worker"
        requests.append((req.url, frame))

    page.context.on("request", log)
    failures: dict[str, str] = {}
    page.context.on("requestfailed", lambda req: failures.__setitem__(req.url, req.failure or ""))
    page.goto(f"{alice.url}/?token={alice.token}#/miniapps")
    row = page.locator(f'.miniapp-row[data-app="{APP_ID}"]')
    row.wait_for()
    expect(page.locator("#miniapp-shared .miniapp-shared-row")).to_have_count(0)  # installed now
    shot(page, "miniapps-discover")

    started = time.monotonic()
    row.locator("a.row-main").click()
    dialog = page.locator("dialog.miniapp-dialog")
    expect(dialog).to_contain_text("store data on this device")  # first use: asked by Boxless
    shot(page, "miniapps-permission")
    dialog.locator(".miniapp-yes").click()

    results = wait_for(
        "the hostile app's report",
        lambda: alice.call("GET", f"/miniapps/{APP_ID}/storage/results")["value"],
        timeout=30,
    )
    report = json.loads(results)
    # WebRTC: the control — Boxless's own page, no lock — reaches its UDP socket; by
    # then any STUN datagram of the app's attempts (made before its report) has too
    control = udp["control"].getsockname()[1]
    page.evaluate(
        """(port) => { const pc = new RTCPeerConnection({iceServers: [{urls: "stun:127.0.0.1:" + port}]});
        pc.createDataChannel("c"); pc.createOffer().then((o) => pc.setLocalDescription(o)); }""",
        control,
    )
    wait_for("the control's STUN datagram", lambda: datagrams(udp["control"]), timeout=20)
    leaked = {name: datagrams(udp[name]) for name in STUN_TARGETS}
    assert leaked == dict.fromkeys(STUN_TARGETS, 0), leaked
    page.locator(".miniapp-suspended").wait_for()  # the flood after the report
    shot(page, "miniapps-suspended")
    elapsed = time.monotonic() - started
    expected_blocked = [
        "parent_dom",
        "parent_location",
        "referrer_token",
        "cookies",
        "local_storage",
        "session_storage",
        "indexeddb",
        "fetch_api",
        "fetch_remote",
        "fetch_own_origin",
        "websocket",
        "img_remote",
        "img_ui",
        "popup",
        "top_navigation",
        "worker",
        "user_name",
        "rtc_write",
        "rtc_direct",
        "rtc_webkit",
        "rtc_restore",
        "rtc_prototype",
        "webtransport",
        "media_devices",
        "iframe_element",
        "iframe_index",
        "srcdoc_inner",
        "srcdoc_adjacent",
        "srcdoc_range",
        "srcdoc_parsed",
    ]
    assert {k: report.get(k) for k in expected_blocked} == dict.fromkeys(
        expected_blocked, "blocked"
    )
    assert report["beacon"] in ("queued", "blocked")  # the network log shows no request
    assert report["bridge_backend"] == "permission_denied"
    assert report["user_id"] == "pseudonym"
    wait_for(  # the UI tells the node (or the node saw the flood first)
        "the node to list the app as suspended",
        lambda: alice.call("GET", "/miniapps")["apps"][0]["suspended"],
        timeout=30,
    )
    assert page.url.startswith(alice.url)  # the top window never left Boxless

    # the network log: the app's frame fetched only its own files from the app origin
    from_app = [
        (u, f)
        for u, f in requests
        if urlsplit(f).netloc == app_host or urlsplit(u).netloc == app_host
    ]
    files = ("index.html", "style.css", "app.js", "early.js", "rtc.js", "icon.png")
    folder = f"{APP_ID}@{listing['apps'][0]['sha256'][:16]}"  # the versioned folder
    allowed = {f"{origin}/{folder}/{n}" for n in files}
    allowed.add(f"http://{app_host}/sdk/boxless-app.js")
    allowed.add(f"http://{app_host}/rt/boxless-runtime.js")
    # (Chromium reports a CSP-blocked request, then its failure: it never left the browser)
    csp_blocked = {u for u, why in failures.items() if why == "csp" or "BLOCKED_BY_CSP" in why}
    stray = [u for u, _ in from_app if u.split("?")[0] not in allowed and u not in csp_blocked]
    assert from_app and not stray, (stray, failures)
    assert hits == [], hits  # the attacker's server heard nothing
    assert alice.token not in " ".join(f for _, f in from_app)
    print(f"hostile app: report and suspension in {elapsed:.2f} s; {len(from_app)} app requests")

    # uninstall removes the data
    alice.call("DELETE", f"/miniapps/{APP_ID}")
    assert alice.request("GET", f"/miniapps/{APP_ID}/storage/results").status_code == 404
    page.context.close()


def test_order_a_coffee_pay_by_escrow_and_release(world: Any, browser: Any, anvil: Any) -> None:
    """Bob's Coffee end to end in Chromium: Alice opens the app, orders, pays into
    escrow in Boxless's own dialog; the shop bot (`boxless bot run
    examples.coffee.bot:app`, its own process) believes the chain, confirms, brews;
    Alice releases in Boxless's dialog; the seller's wallet is paid and the bot
    thanks her in the chat."""
    import subprocess
    import sys

    from boxless.client.escrow import Escrow
    from boxless.payments.evmcall import Signer
    from boxless.payments.hdwallet import checksum_address, parse_address
    from boxless.payments.rpc import Rpc
    from tests.unit.test_bot_examples import example_bundle
    from tests.userproc import env

    started = time.monotonic()
    alice, shop = world.persons("Alice", "Shop")
    rpc = Rpc(anvil.url, anvil.chain_id)
    deployer = Signer(rpc, bytes(range(1, 33))[::-1])  # this test's own account
    rpc.call("anvil_setBalance", [checksum_address(deployer.address), hex(10**20)])
    escrow = Escrow.deploy(deployer)
    wallets = {}
    for user in (alice, shop):
        user.call(
            "PUT",
            "/wallet/chain",
            {"rpc_url": anvil.url, "chain_id": anvil.chain_id, "confirmations": 1},
        )
        wallets[user.name] = parse_address(user.call("GET", "/wallet")["address"])
        rpc.call("anvil_setBalance", [checksum_address(wallets[user.name]), hex(10**19)])
    world.befriend(alice, shop)
    shop_key = world.key(shop)
    shop.stop()  # the shop's account now runs as the bot
    root = Path(__file__).resolve().parents[2]
    bot_log = (shop.home / "bot.log").open("ab")
    bot = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "boxless",
            "bot",
            "run",
            "examples.coffee.bot:app",
            "--path",
            str(root),
            "--home",
            str(shop.home),
            "--escrow",
            "0x" + escrow.address.hex(),
            "--log-level",
            "INFO",
            *[a for peer in shop.service_peers for a in ("--service-peer", peer)],
        ],
        env=env(),
        stdin=subprocess.DEVNULL,
        stdout=bot_log,
        stderr=subprocess.STDOUT,
    )
    try:
        alice.call("PUT", "/miniapps/escrow", {"address": "0x" + escrow.address.hex()})
        wait_for(  # a request sent before the bot listens would wait for the bridge's timeout
            "the shop bot to be up",
            lambda: bot.poll() is None and b"is up as" in (shop.home / "bot.log").read_bytes(),
            timeout=90,
        )
        _coffee(world, browser, alice, shop_key, example_bundle, rpc, wallets["Shop"], started)
    finally:
        bot.terminate()
        try:
            bot.wait(20)
        except subprocess.TimeoutExpired:
            bot.kill()
        bot_log.close()
        rpc.close()


def _coffee(
    world: Any,
    browser: Any,
    alice: Any,
    shop_key: str,
    example_bundle: Any,
    rpc: Any,
    seller: bytes,
    started: float,
) -> None:
    import tempfile

    import httpx
    from playwright.sync_api import expect

    from boxless.payments.hdwallet import checksum_address

    with tempfile.TemporaryDirectory() as tmp:
        data = example_bundle("coffee", bytes.fromhex(shop_key), Path(tmp))
    r = httpx.post(
        f"{alice.url}/api/v1/miniapps",
        content=data,
        headers={
            "Authorization": f"Bearer {alice.token}",
            "Content-Type": "application/octet-stream",
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    before = int(rpc.call("eth_getBalance", [checksum_address(seller), "latest"]), 16)

    page = open_ui(browser, alice, DESKTOP)
    gate = EventGate()  # the page's events socket, to make it deaf for a while
    gate.attach(page)
    page.goto(f"{alice.url}/?token={alice.token}#/app/org.boxless.coffee")
    page.reload()
    dialog = page.locator("dialog.miniapp-dialog")
    app = page.frame_locator("iframe.miniapp-frame")
    dialog.wait_for(timeout=30_000)  # first use of the backend: talk to its bot
    assert "talk to its bot" in dialog.inner_text()
    # The bot's first answer (the menu) comes while the page's events socket is away:
    # the node keeps it, and the page reads it when its socket opens again.
    gate.reconnect(page, deaf=True)
    asked = time.monotonic()
    dialog.locator(".miniapp-yes").click()
    replies = "/miniapps/org.boxless.coffee/replies"
    wait_for("the bot's menu at Alice's node", lambda: alice.call("GET", replies)["replies"])
    espresso = app.locator('#menu button[data-item="espresso"]').last
    expect(espresso).to_have_count(0)  # its event went nowhere (the node has the answer)
    gate.reconnect(page, deaf=False)
    # the menu comes from the bot, end to end encrypted, with its wallet (the seller)
    espresso.wait_for(timeout=60_000)
    took = time.monotonic() - asked  # not the bridge's last look at 30 s: the reconnect
    assert took < 29, f"the menu came {took:.0f} s after the request, not on reconnect"
    expect(app.locator("#status")).to_contain_text("What would you like?", timeout=30_000)
    espresso.click()
    app.locator("#order").click()
    pay = page.locator("dialog.miniapp-dialog", has_text="Pay 0.001 ETH")
    pay.wait_for(timeout=30_000)  # Boxless's own dialog: amount, seller, memo
    assert "0x" + seller.hex() in pay.inner_text().lower()
    shot(page, "coffee-pay")
    pay.locator(".miniapp-yes").click()
    allow = page.locator("dialog.miniapp-dialog", has_text="ask you for payments")
    allow.wait_for(timeout=30_000)  # first use of pay
    gate.reconnect(page, deaf=True)  # the shop's news of the order comes while away
    allow.locator(".miniapp-yes").click()
    order = app.locator("#orders li").first
    # the bot reads the deal on chain: paid, brewing, then ready (pushes, kept by the node)
    wait_for(
        "the shop's 'ready' at Alice's node",
        lambda: any(
            p["payload"].get("state") == "ready" for p in alice.call("GET", replies)["pushes"]
        ),
        timeout=90,
    )
    expect(order.locator(".state")).not_to_have_text("ready")  # its event went nowhere
    gate.reconnect(page, deaf=False)
    expect(order.locator(".state")).to_have_text("ready", timeout=30_000)
    order.locator("button.release").click()
    release = page.locator("dialog.miniapp-dialog", has_text="Release 0.001 ETH")
    release.wait_for(timeout=30_000)
    shot(page, "coffee-release")
    release.locator(".miniapp-yes").click()
    expect(order.locator(".state")).to_have_text("done", timeout=60_000)  # the bot saw it
    after = int(rpc.call("eth_getBalance", [checksum_address(seller), "latest"]), 16)
    assert after - before == 10**15  # the seller is paid on release, not before
    wait_for(
        "the shop's thanks in the chat",
        lambda: any(
            "Thanks! Order" in (m.get("text") or "")
            for m in alice.call("GET", f"/contacts/{shop_key}/messages")
        ),
        timeout=30,
    )
    print(f"coffee: ordered, paid, ready, released in {time.monotonic() - started:.1f} s")
    page.context.close()
