"""The bot SDK (issue 16): a bot written with the SDK, a real client over the
in-memory network, answers chat messages and app requests from two users; a
flooding user is rate-limited and the other user is still served."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import trio
import trio.testing

from boxless.bot import Bot, BotApp, Inbox, Limits, Message, Request
from boxless.identity.keys import Identity
from boxless.miniapps.bundle import pack_files
from tests.memnet_fixtures import Person, homes, memnet, wait_for, wall

__all__ = ["homes"]  # a fixture

APP = "org.example.echo"
DEV = Identity.from_private_bytes(bytes(range(32)))


def echo_app() -> BotApp:
    app = BotApp("echo")

    @app.on_message
    async def hello(bot: Bot, msg: Message) -> str:
        return f"you said: {msg.text}"

    @app.on_request(APP)
    async def add(bot: Bot, req: Request) -> Any:
        a, b = req.payload["a"], req.payload["b"]
        return {"sum": a + b, "user": req.user}

    return app


def bundle(bot_key: bytes) -> bytes:
    manifest = {
        "id": APP,
        "name": "Echo",
        "version": "1.0.0",
        "icon": "icon.png",
        "entry": "index.html",
        "permissions": ["backend"],
        "developer": DEV.public_key.hex(),
        "bot": bot_key.hex(),
    }
    return pack_files(
        {
            "manifest.json": json.dumps(manifest).encode(),
            "index.html": b"<!doctype html><p>echo</p>",
            "icon.png": b"\x89PNG",
        },
        DEV,
    )


async def ask(user: Person, bot: Person, payload: Any) -> Any:
    """Send an app request from ``user`` to ``bot`` and wait for the response."""
    rid = os.urandom(16)
    async with user.client.events() as events:
        data = json.dumps(payload).encode()
        await user.client.miniapps.send_app_message(bot.me, APP, "request", rid, data)
        with trio.fail_after(600):
            async for e in events:
                if e.type == "app_message" and e.request_id == rid.hex():
                    assert e.kind == "response" and e.contact == bot.me.hex()
                    return e.payload
    raise AssertionError("no answer")


async def test_a_bot_answers_messages_and_requests_from_two_users(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("shop", "alice", "bob")) as (_, (shop, alice, bob)):
        async with trio.open_nursery() as nursery:
            bot = await nursery.start(Bot(echo_app(), shop.client).run)
            for user in (alice, bob):  # the bot accepts contact requests itself
                await user.client.add_contact(shop.link())
                await wait_for(user, lambda u=user: u.state(shop) == "accepted")
                user.client.miniapps.install(bundle(shop.me))
            await alice.client.send_text(shop.me, "one coffee")
            await bob.client.send_text(shop.me, "two teas")
            await wait_for(alice, lambda: "you said: one coffee" in alice.texts(shop))
            await wait_for(bob, lambda: "you said: two teas" in bob.texts(shop))
            assert await ask(alice, shop, {"a": 2, "b": 3}) == {"sum": 5, "user": alice.me.hex()}
            assert await ask(bob, shop, {"a": 40, "b": 2}) == {"sum": 42, "user": bob.me.hex()}
            # a handler's bug answers an error, and the bot serves on
            assert await ask(bob, shop, {"a": 1}) == {"error": "the bot failed on this request"}
            assert await ask(alice, shop, {"a": 1, "b": 1}) == {"sum": 2, "user": alice.me.hex()}
            assert bot.handled >= 2 + 2 + 4
            nursery.cancel_scope.cancel()


async def test_a_flooding_user_is_rate_limited_and_the_other_is_served(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    app = BotApp("slow")
    seen: list[str] = []
    waited: dict[str, float] = {}  # sender -> seconds from arrival to its handler

    @app.on_message
    async def slow(bot: Bot, msg: Message) -> None:
        seen.append(msg.sender)
        waited[msg.sender] = wall() - msg.received_at_ms / 1000
        await trio.sleep(5)  # virtual: a busy handler

    limits = Limits(rate=1.0, burst=5, per_user=5)
    async with memnet(homes, ("shop", "alice", "bob")) as (_, (shop, alice, bob)):
        async with trio.open_nursery() as nursery:
            bot = await nursery.start(Bot(app, shop.client, limits=limits, concurrency=1).run)
            for user in (alice, bob):
                await user.client.add_contact(shop.link())
                await wait_for(user, lambda u=user: u.state(shop) == "accepted")
            for i in range(60):  # alice floods: 60 messages at once
                await alice.client.send_text(shop.me, f"spam {i}")
            await bob.client.send_text(shop.me, "hello")
            with trio.fail_after(600):  # the bot's state, not a client event: look each second
                while bob.me.hex() not in seen:  # noqa: ASYNC110
                    await trio.sleep(1)
            # bob waited behind at most alice's handler in progress and one more of hers
            # (her turn came first): 10 s, not her backlog (3 more: 20 s in a FIFO)
            assert waited[bob.me.hex()] <= 10.0, waited
            assert seen.count(alice.me.hex()) < 4
            await trio.sleep(120)
            flood = seen.count(alice.me.hex())
            assert flood <= limits.burst + limits.per_user, flood
            assert bot.inbox.dropped[alice.me.hex()] >= 60 - flood
            assert bob.me.hex() not in bot.inbox.dropped
            nursery.cancel_scope.cancel()


def test_inbox_buckets_refill_and_users_take_turns() -> None:
    inbox: Inbox[int] = Inbox(Limits(rate=2.0, burst=3, per_user=10, max_users=2))
    assert [inbox.offer("a", i, 0.0) for i in range(5)] == [True, True, True, False, False]
    assert inbox.offer("b", 100, 0.0)
    assert not inbox.offer("c", 200, 0.0)  # two users active: a third waits
    assert inbox.dropped == {"a": 2, "c": 1}
    assert [inbox.take() for _ in range(5)] == [("a", 0), ("b", 100), ("a", 1), ("a", 2), None]
    assert inbox.offer("a", 3, 0.5)  # one token back after half a second at 2/s
    assert not inbox.offer("a", 4, 0.5)
    assert inbox.offer("c", 201, 10.0)  # idle full buckets are forgotten


async def test_a_request_sent_while_the_bot_was_down_is_answered_when_it_starts(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The request waits in the store; the bot listens before its client's catch-up
    ends, so the catch-up's app_message reaches it (before: emitted to nobody)."""
    from boxless.client.core import Client
    from boxless.client.memory_transport import MemoryNetwork
    from boxless.identity.account import open_account
    from tests.memnet_fixtures import PASS, POW, befriend, make_account, running, wall_ns

    net = MemoryNetwork(now_ns=wall_ns)
    for name in ("alice", "shop"):
        make_account(homes / name, name.title())
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        async with running(net, homes / "alice", "alice") as alice:
            async with running(net, homes / "shop", "shop") as shop:
                await befriend(alice, shop)
                shop_key = shop.me
            alice.client.miniapps.install(bundle(shop_key))
            rid = os.urandom(16)
            payload = json.dumps({"a": 2, "b": 3}).encode()
            await alice.client.miniapps.send_app_message(shop_key, APP, "request", rid, payload)
            await trio.sleep(5)  # sent: the shop is offline, the store keeps it
            account = open_account(homes / "shop", PASS)
            transport = net.transport("shop")
            try:
                async with alice.client.events() as events, trio.open_nursery() as inner:
                    client = Client(account, transport, clock=wall, pow_difficulty=POW)
                    await inner.start(client.run)  # started: the catch-up runs now
                    await inner.start(Bot(echo_app(), client).run)
                    with trio.fail_after(600):
                        async for e in events:
                            if e.type == "app_message" and e.request_id == rid.hex():
                                assert e.payload["sum"] == 5
                                break
                    inner.cancel_scope.cancel()
            finally:
                transport.close()
                account.close()
        nursery.cancel_scope.cancel()
