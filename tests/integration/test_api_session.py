"""Web sessions in process: the link traded for a cookie, the cookie surviving a
restart, logout, expiry, the locked app opened by the passphrase, and the
attackers: a cross-origin or Origin-less cookie request, a forged, expired or
logged-out cookie, and a passphrase guesser."""

from __future__ import annotations

import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.api.app import build_app
from boxless.api.guard import Guard
from boxless.api.locked import Unlocker, build_locked_app
from boxless.api.onboarding import AppSwitch
from boxless.api.session import (
    SESSION_FILE,
    UNLOCK_FAILURES,
    CookieSpec,
    SessionBook,
    SessionEndpoints,
    Throttle,
)
from boxless.client.core import Client
from boxless.client.memory_transport import MemoryNetwork
from boxless.identity.account import LocalAccount, create_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from tests.asgi_ws import ws_events
from tests.chat_fixtures import FAST_KDF

TOKEN = "test-token"
ORIGIN = "http://127.0.0.1:8765"
COOKIE = "boxless_session_8765"
PASS = "correct horse battery staple"
SAME = {"Origin": ORIGIN}
DAY = 86400.0


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Node:
    """One `boxless up`'s API front, started locked, over a real client once unlocked."""

    home: Path
    nursery: trio.Nursery
    net: MemoryNetwork
    wall: Clock = field(default_factory=Clock)
    mono: Clock = field(default_factory=lambda: Clock(0.0))
    opened: list[LocalAccount] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.book = SessionBook(self.home / SESSION_FILE)
        self.switch = AppSwitch(build_locked_app(TOKEN, ORIGIN))
        self.unlocker = Unlocker(self.home, self.on_account, None)
        endpoints = SessionEndpoints(
            self.switch,
            self.book,
            self.unlocker.unlock,
            ORIGIN,
            throttle=Throttle(),
            clock=self.wall,
            monotonic=self.mono,
        )
        self.app = Guard(endpoints, TOKEN, ORIGIN, sessions=self.book, clock=self.wall)

    async def on_account(self, account: LocalAccount) -> None:
        self.opened.append(account)
        client = Client(account, self.net.transport(str(self.home)))
        await self.nursery.start(client.run)
        self.switch.app = build_app(client, TOKEN, ORIGIN, lambda: {})

    def http(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=ORIGIN,
            headers=headers,
        )


def jar(raw: str, **more: str) -> dict[str, str]:
    """Headers with our session cookie (an explicit Cookie header: httpx's own jar
    then adds nothing, so each request carries exactly the session it names)."""
    return {"Cookie": f"{COOKIE}={raw}", **more}


def make_account(home: Path) -> None:
    if not home.exists():
        home.mkdir(mode=0o700)
        identity = Identity.from_phrase(generate_phrase())
        create_account(
            home, PASS, identity, Profile(display_name="Ann"), time.time(), FAST_KDF
        ).close()


@asynccontextmanager
async def node(home: Path) -> AsyncIterator[Node]:
    make_account(home)
    net = MemoryNetwork(now_ns=time.time_ns)
    opened: list[LocalAccount] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(net.run)
            n = Node(home, nursery, net, opened=opened)
            yield n
            nursery.cancel_scope.cancel()
    finally:
        for account in opened:  # after the client's tasks have stopped
            account.close()


def cookie_of(r: httpx.Response) -> str:
    header = r.headers["set-cookie"]
    value = header.split(";")[0].split("=", 1)[1]
    return value


async def session(n: Node) -> str:
    async with n.http(Authorization=f"Bearer {TOKEN}") as http:
        r = await http.post("/api/v1/session")
    assert r.status_code == 201, r.text
    return cookie_of(r)


async def test_the_link_becomes_a_cookie_that_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with node(home) as n:
        async with n.http(Authorization=f"Bearer {TOKEN}") as http:
            r = await http.post("/api/v1/session")
        assert r.status_code == 201
        attrs = [a.strip() for a in r.headers["set-cookie"].split(";")]
        assert attrs[0].startswith(COOKIE + "=")
        assert {"HttpOnly", "SameSite=Strict", "Path=/", f"Max-Age={30 * 86400}"} <= set(attrs)
        assert "Secure" not in attrs  # plain http on loopback; https would add it
        raw = cookie_of(r)
        saved = (home / SESSION_FILE).read_text()
        assert raw not in saved and TOKEN not in saved  # only a hash of the id
        assert stat.S_IMODE((home / SESSION_FILE).stat().st_mode) == 0o600
        async with n.http() as http:
            r = await http.get("/api/v1/me", headers=jar(raw))
            assert r.status_code == 423 and r.json()["error"]["code"] == "locked"
            r = await http.get("/api/v1/me")
            assert r.status_code == 401
    async with node(home) as n:  # a node restart: the book is read back
        async with n.http() as http:
            r = await http.get("/api/v1/me", headers=jar(raw))
            assert r.status_code == 423
            r = await http.post("/api/v1/session/unlock", json={"passphrase": PASS}, headers=SAME)
            assert r.status_code == 201, r.text
            r = await http.get("/api/v1/me", headers=jar(cookie_of(r)))
            assert r.status_code == 200 and r.json()["name"] == "Ann"
            r = await http.get("/api/v1/me", headers=jar(raw))  # the old session too
            assert r.status_code == 200


async def test_cookie_requests_that_change_state_need_our_origin(tmp_path: Path) -> None:
    async with node(tmp_path / "home") as n:
        raw = await session(n)
        async with n.http() as http:
            post = "/api/v1/contacts"
            r = await http.post(post, json={"link": "x"}, headers=jar(raw))
            assert r.status_code == 403 and r.json()["error"]["code"] == "origin_required"
            r = await http.post(
                post, json={"link": "x"}, headers=jar(raw, Origin="http://127.0.0.1:9999")
            )
            assert r.status_code == 403 and r.json()["error"]["code"] == "bad_origin"
            r = await http.post(
                post, json={"link": "x"}, headers=jar(raw, **{"Sec-Fetch-Site": "cross-site"})
            )
            assert r.status_code == 403
            r = await http.delete("/api/v1/session", headers=jar(raw))  # logout is a change too
            assert r.status_code == 403
            for headers in (SAME, {"Sec-Fetch-Site": "same-origin"}):
                r = await http.post(post, json={"link": "x"}, headers=jar(raw, **headers))
                assert r.status_code == 423, r.text  # through the guard, to the locked app
            r = await http.get("/api/v1/status", headers=jar(raw))  # reads need no Origin
            assert r.status_code == 423
            for site in ("same-site", "cross-site"):  # but not from another page
                r = await http.get("/api/v1/me", headers=jar(raw, **{"Sec-Fetch-Site": site}))
                assert r.status_code == 403, site
            # the token (the CLI's way) is not ambient: no Origin asked
            r = await http.post(
                post, json={"link": "x"}, headers={"Authorization": "Bearer " + TOKEN}
            )
            assert r.status_code == 423
            r = await http.get("/api/v1/me", headers=jar(raw, Authorization="Bearer no"))
            assert r.status_code == 401  # a wrong token is not rescued by a good cookie


async def ws_handshake(n: Node, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """What the app sends back to a WebSocket handshake (at most 2 s)."""
    return await ws_events(n.app, headers)


async def test_websocket_with_a_cookie_needs_our_origin(tmp_path: Path) -> None:
    async with node(tmp_path / "home") as n:
        raw = await session(n)
        for origin, refused in ((None, True), ("http://127.0.0.1:9999", True), (ORIGIN, False)):
            headers = [(b"host", b"127.0.0.1:8765"), (b"cookie", f"{COOKIE}={raw}".encode())]
            if origin:
                headers.append((b"origin", origin.encode()))
            sent = await ws_handshake(n, headers)
            assert sent, origin
            if refused:
                assert sent[0] == {"type": "websocket.close", "code": 4403}, origin
            else:  # past the guards: the locked app's own close
                assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 4423


async def test_forged_expired_and_logged_out_cookies_are_refused(tmp_path: Path) -> None:
    async with node(tmp_path / "home") as n:
        async with n.http() as http:
            for forged in ("A" * 43, "x", "", "../" * 20, TOKEN):
                r = await http.get("/api/v1/me", headers=jar(forged))
                assert r.status_code == 401, forged
            first, second, third = await session(n), await session(n), await session(n)
            assert len({first, second, third}) == 3
            # idle: renewed after an hour of use (a fresh cookie comes back)...
            n.wall.now += 2 * 3600
            r = await http.get("/api/v1/me", headers=jar(first))
            assert r.status_code == 423 and COOKIE in r.headers.get("set-cookie", "")
            # ... and gone after 30 days without it
            n.wall.now += 30 * DAY + 1
            r = await http.get("/api/v1/me", headers=jar(first))
            assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
            second, third = await session(n), await session(n)
            r = await http.delete("/api/v1/session", headers=jar(second, **SAME))
            assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"], r.text
            r = await http.get("/api/v1/me", headers=jar(second))
            assert r.status_code == 401
            r = await http.get("/api/v1/me", headers=jar(third))
            assert r.status_code == 423
            fourth = await session(n)
            r = await http.delete("/api/v1/sessions", headers=jar(third, **SAME))
            assert r.status_code == 200 and r.json()["ended"] == 2
            for gone in (third, fourth):
                r = await http.get("/api/v1/me", headers=jar(gone))
                assert r.status_code == 401
        assert SessionBook(n.home / SESSION_FILE).check(fourth, n.wall.now) is None


async def test_a_passphrase_guesser_is_throttled(tmp_path: Path) -> None:
    async with node(tmp_path / "home") as n:
        async with n.http() as http:
            unlock = "/api/v1/session/unlock"
            r = await http.post(unlock, json={"passphrase": PASS})  # no Origin: refused
            assert r.status_code == 403 and r.json()["error"]["code"] == "origin_required"
            r = await http.post(
                unlock, json={"passphrase": PASS}, headers={"Origin": "http://evil.example"}
            )
            assert r.status_code == 403
            for i in range(UNLOCK_FAILURES):
                r = await http.post(unlock, json={"passphrase": f"guess {i}"}, headers=SAME)
                assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_passphrase"
                assert "set-cookie" not in r.headers
            r = await http.post(unlock, json={"passphrase": PASS}, headers=SAME)
            assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_tries"
            assert r.headers["retry-after"] == "60"
            assert n.opened == []  # not even the right one is heard
            n.mono.now += 59
            r = await http.post(unlock, json={"passphrase": PASS}, headers=SAME)
            assert r.status_code == 429
            n.mono.now += 1
            r = await http.post(unlock, json={"passphrase": PASS}, headers=SAME)
            assert r.status_code == 201, r.text
            assert len(n.opened) == 1
            raw = cookie_of(r)
            r = await http.get("/api/v1/contacts", headers=jar(raw))
            assert r.status_code == 200 and r.json() == []
            # unlocked: the passphrase still gives a logged-out browser a session
            r = await http.post(unlock, json={"passphrase": "nope nope"}, headers=SAME)
            assert r.status_code == 403
            r = await http.post(unlock, json={"passphrase": PASS}, headers=SAME)
            assert r.status_code == 201 and len(n.opened) == 1


def test_the_book_is_bounded_and_reads_garbage_as_empty(tmp_path: Path) -> None:
    path = tmp_path / SESSION_FILE
    book = SessionBook(path, max_sessions=3)
    ids = [book.create(float(i)) for i in range(5)]
    assert len(book) == 3
    assert book.check(ids[0], 10.0) is None and book.check(ids[4], 10.0) is not None
    path.write_text('{"sessions": [{"sha256": "zz"}]}')
    assert len(SessionBook(path)) == 0
    path.write_bytes(b"\xff\x00")
    assert len(SessionBook(path)) == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_no_cookie_header_authenticates_or_crashes(header: str) -> None:
    book = SessionBook(None)
    book.create(0.0)
    for raw in CookieSpec.for_origin(ORIGIN).read(header):
        assert book.check(raw, 1.0) is None


@pytest.mark.parametrize("origin", ["https://box.example:443", "http://127.0.0.1:80"])
def test_cookie_names_carry_the_port(origin: str) -> None:
    spec = CookieSpec.for_origin(origin)
    assert spec.name == f"boxless_session_{origin.rsplit(':', 1)[1]}"
    assert spec.secure is origin.startswith("https")
