"""Mini apps in the client: AppMessage between a page and its bot over Olm, who
may answer for an app, permissions, per-app storage and quota, uninstall, and
the bridge's flood limit — with attackers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat.miniapp import AppKind, AppMessage
from boxless.client import events as ev
from boxless.client.miniapps import STORAGE_QUOTA_BYTES, PermissionDenied
from boxless.errors import DecodeError, UsageError
from boxless.identity.keys import Identity
from boxless.miniapps import BundleError, pack_files
from boxless.miniapps.limits import BridgeLimiter
from tests.memnet_fixtures import befriend, memnet, settle, virtual_wall_clock, wait_for

__all__ = ["virtual_wall_clock"]

pytestmark = pytest.mark.usefixtures("virtual_wall_clock")

DEV = Identity.from_private_bytes(bytes(range(32)))
OTHER_DEV = Identity.from_private_bytes(bytes(range(2, 34)))


def bundle(
    bot: bytes,
    app_id: str = "org.example.shop",
    version: str = "1.0.0",
    dev: Identity = DEV,
    perms: tuple[str, ...] = ("backend", "storage", "user.name"),
) -> bytes:
    manifest = {
        "id": app_id,
        "name": "Shop",
        "version": version,
        "icon": "icon.png",
        "entry": "index.html",
        "permissions": list(perms),
        "developer": dev.public_key.hex(),
        "bot": bot.hex(),
    }
    files = {
        "manifest.json": json.dumps(manifest).encode(),
        "index.html": b"<p>shop</p>",
        "icon.png": b"png",
    }
    return pack_files(files, dev)


def drain(events: trio.MemoryReceiveChannel[ev.Event]) -> list[ev.Event]:
    out = []
    while True:
        try:
            out.append(events.receive_nowait())
        except trio.WouldBlock:
            return out


async def test_page_to_bot_and_back_only_the_bot_answers(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bot", "mallory")) as (net, (alice, bot, mallory)):
        await befriend(alice, bot)
        await befriend(alice, mallory)
        apps = alice.client.miniapps
        apps.install(bundle(bot.me))
        row = apps.app("org.example.shop")
        with pytest.raises(PermissionDenied):  # not allowed yet
            await apps.backend_request(row, {"menu": True})
        apps.decide("org.example.shop", "backend", True)
        async with bot.client.events() as bot_events, alice.client.events() as alice_events:
            rid = await apps.backend_request(row, {"menu": True})
            got: list[ev.AppMessageReceived] = []

            def seen() -> bool:
                got.extend(e for e in drain(bot_events) if isinstance(e, ev.AppMessageReceived))
                return bool(got)

            await wait_for(bot, seen)
            req = got[0]
            assert (req.kind, req.request_id, req.payload) == ("request", rid, {"menu": True})
            assert req.contact == alice.me.hex() and req.app_id == "org.example.shop"
            # mallory (a contact, not the app's bot) answers first and pushes: ignored
            for kind in ("response", "push"):
                await mallory.client.miniapps.send_app_message(
                    alice.me, "org.example.shop", kind, bytes.fromhex(rid), b'{"pay":"mallory"}'
                )
            # the bot answers for an app alice has not installed: ignored
            await bot.client.miniapps.send_app_message(
                alice.me, "org.example.other", "push", bytes(16), b"{}"
            )
            await settle(30)
            assert not [e for e in drain(alice_events) if isinstance(e, ev.AppMessageReceived)]
            await bot.client.miniapps.send_app_message(
                alice.me, "org.example.shop", "response", bytes.fromhex(rid), b'{"coffee":3}'
            )
            answers: list[ev.AppMessageReceived] = []

            def answered() -> bool:
                answers.extend(
                    e for e in drain(alice_events) if isinstance(e, ev.AppMessageReceived)
                )
                return bool(answers)

            await wait_for(alice, answered)
            assert answers[0].payload == {"coffee": 3} and answers[0].request_id == rid
            assert answers[0].contact == bot.me.hex()
        assert "shop" not in " ".join(alice.texts(bot))  # app messages stay out of the chat


async def test_install_rules_storage_quota_and_uninstall(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice",)) as (net, (alice,)):
        apps = alice.client.miniapps
        bot = bytes(range(32))
        apps.install(bundle(bot))
        with pytest.raises(BundleError, match="another developer key"):
            apps.install(bundle(bot, version="2.0.0", dev=OTHER_DEV))
        with pytest.raises(BundleError, match="older"):
            apps.install(bundle(bot, version="0.9.0"))
        apps.install(bundle(bot, version="1.1.0"))
        row = apps.app("org.example.shop")
        assert row.manifest.version == "1.1.0"
        # pseudonymous ids differ per app and hide the identity
        apps.install(bundle(bot, app_id="org.example.poll"))
        uid = apps.user(row)
        assert uid == {"id": apps.pseudonym("org.example.shop")}  # no name before allowed
        assert uid["id"] != apps.pseudonym("org.example.poll")
        assert alice.me.hex()[:16] not in uid["id"]
        apps.decide("org.example.shop", "user.name", True)
        assert apps.user(row)["name"] == "Alice"
        with pytest.raises(PermissionDenied):  # pay is not in the manifest: cannot be allowed
            apps.decide("org.example.poll", "pay", True)
        with pytest.raises(PermissionDenied):
            apps.storage_set(row, "k", "v")
        apps.decide("org.example.shop", "storage", True)
        apps.storage_set(row, "cart", "x" * 1000)
        assert apps.storage_get(row, "cart") == "x" * 1000
        with pytest.raises(UsageError, match="quota"):
            apps.storage_set(row, "big", "y" * STORAGE_QUOTA_BYTES)
        apps.storage_set(row, "cart", "z" * (STORAGE_QUOTA_BYTES - 100))  # replacing fits
        apps.decide("org.example.shop", "storage", False)  # revoked
        with pytest.raises(PermissionDenied):
            apps.storage_get(row, "cart")
        apps.remove("org.example.shop")
        apps.install(bundle(bot))  # reinstalled: nothing of the old data is left
        assert apps.decisions("org.example.shop") == {}
        apps.decide("org.example.shop", "storage", True)
        assert apps.storage_get(apps.app("org.example.shop"), "cart") is None


def test_bridge_flood_suspends() -> None:
    lim = BridgeLimiter(burst=40, rate=10.0, suspend_s=300.0)
    assert all(lim.allow("a", 0.0) for _ in range(40))
    assert not lim.allow("a", 0.0) and lim.suspended("a", 1.0)
    assert lim.allow("b", 0.0)  # other apps are not affected
    assert not lim.allow("a", 200.0)  # still suspended, however slow it gets
    assert lim.allow("a", 301.0)
    for i in range(100):  # a steady 10 calls/s is fine
        assert lim.allow("c", i / 10)


def test_app_message_codec() -> None:
    msg = env.ChatMessage(bytes(16), 1, 5, AppMessage("org.x.y", AppKind.PUSH, bytes(16), b"[1]"))
    assert env.decode(env.encode(msg)).body == msg.body
    for bad in (
        lambda: AppMessage("nope", AppKind.PUSH, bytes(16), b"{}"),
        lambda: AppMessage("org.x.y", AppKind.PUSH, bytes(15), b"{}"),
        lambda: AppMessage("org.x.y", AppKind.PUSH, bytes(16), b"{"),
        lambda: AppMessage("org.x.y", AppKind.PUSH, bytes(16), b'"' + b"a" * 16384 + b'"'),
    ):
        with pytest.raises(UsageError):
            bad()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.integers(-1, 5), st.binary(max_size=20), st.binary(max_size=64))
def test_app_message_decoder_under_hypothesis(
    app_id: str, kind: int, rid: bytes, payload: bytes
) -> None:
    from boxless.wire import chat_pb2

    pb = chat_pb2.ChatMessage(version=1, message_id=bytes(16), lamport=1, sent_at_ms=1)
    pb.app_message.app_id = app_id
    if kind >= 0:
        pb.app_message.kind = kind
    pb.app_message.request_id, pb.app_message.payload = rid, payload
    try:
        body = env.decode(pb.SerializeToString()).body
    except DecodeError:
        return
    assert isinstance(body, AppMessage) and len(body.request_id) == 16
