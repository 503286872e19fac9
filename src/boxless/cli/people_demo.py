"""``boxless demo``: two people chatting on a local network, in one command.

Two service nodes (relay, store, filter, light push) on loopback; Alice and
Bob, each with a fresh account (recovery phrase, encrypted database), their
own light node, client and local API + web UI on their own port. They are
already contacts and have said hello, and share a group, "Boxless demo"
(Alice its admin), with a welcome from her and an answer from Bob, so the
UI opens on a 1:1 chat and a group chat. The command prints both URLs (with
the token) and runs until Ctrl-C, which stops everything cleanly.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import tempfile
import time
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from boxless.api.app import build_app
from boxless.api.guard import FRAME_SOURCES
from boxless.api.locked import Unlocker, web_front
from boxless.api.miniapp_origin import start_app_origin
from boxless.api.session import SESSION_FILE, SessionBook
from boxless.chat.requests import ContactEvent
from boxless.cli.attachment_commands import start_blobs
from boxless.cli.demo_chain import DemoChain
from boxless.cli.shop_demo import SHOP_NAME, start_shop
from boxless.client.core import Client
from boxless.client.transport import LightTransport
from boxless.errors import BoxlessError
from boxless.identity.account import LocalAccount, create_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.node.config import NodeConfig
from boxless.node.light import LightNode
from boxless.node.service import WakuNode

LOOP = ("/ip4/127.0.0.1/tcp/0",)


async def _no_new_account(account: LocalAccount) -> None:
    """The demo's accounts exist before their UI does: nothing to start."""


async def _person(
    nursery: trio.Nursery, base: Path, name: str, service_peers: list[str], port: int
) -> tuple[Client, str]:
    home = base / name.lower()
    account: LocalAccount = create_account(
        home,
        secrets.token_urlsafe(16),
        Identity.from_phrase(generate_phrase()),
        Profile(display_name=name),
        time.time(),
    )
    light = LightNode(home / "node", service_peers)
    await nursery.start(light.run)
    transport = LightTransport(light)
    client: Client = await nursery.start(Client(account, transport).run)
    await start_blobs(nursery, client, light.host, home, service_peers)  # attachments, app cards
    token = secrets.token_urlsafe(24)
    origin = f"http://127.0.0.1:{port}"
    FRAME_SOURCES.append(await start_app_origin(nursery, client.miniapps, origin))  # mini apps
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    # what `boxless up` serves: the browser logs in with the token once, then a session cookie
    sessions = SessionBook(home / SESSION_FILE)
    unlocker = Unlocker(home, _no_new_account, account)
    front = web_front(
        build_app(client, token, origin, transport.status), token, origin, sessions, unlocker
    )
    await nursery.start(serve, front, config)
    # as `boxless up` does: the CLI (`boxless send Bob --file X --home DATA/alice`) finds the API
    fd = os.open(home / "api.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": origin, "token": token, "pid": os.getpid()}, f)
    return client, f"{origin}/?token={token}"


async def _wait(what: str, check: object, timeout: float = 60) -> None:
    with trio.fail_after(timeout):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110
            await trio.sleep(0.1)


def _group_texts(client: Client, group_id: bytes) -> list[str]:
    return [m.text for _, m in client.groups.messages(group_id, 50)]


async def _demo_group(alice: Client, bob: Client) -> None:
    """Alice makes the group "Boxless demo", invites Bob and welcomes him; he answers."""
    state = await alice.groups.create(
        "Boxless demo", "Alice and Bob: one Megolm encryption per message, whatever the size"
    )
    gid = state.group_id
    await alice.groups.invite(gid, bob.me)
    await _wait("Bob to join the group", lambda: gid in {g.group_id for g in bob.groups.groups()})
    welcome = (
        "Welcome to the group, Bob! Type @ to mention someone; the (i) button shows the members."
    )
    await alice.groups.send_text(gid, welcome)
    await _wait("Bob to get the welcome", lambda: welcome in _group_texts(bob, gid))
    await bob.groups.send_text(gid, "Thanks @Alice! Groups work like the 1:1 chat.")


async def run_people_demo(
    base: Path, ports: tuple[int, int], ready_file: Path | None, chain: DemoChain | None = None
) -> None:
    async with trio.open_nursery() as nursery:
        s1: WakuNode = await nursery.start(
            WakuNode(
                NodeConfig(
                    base / "s1",
                    LOOP,
                    store=True,
                    filter=True,
                    lightpush=True,
                    store_resume=False,
                    blobs=True,
                )
            ).run
        )
        s2: WakuNode = await nursery.start(
            WakuNode(
                NodeConfig(
                    base / "s2",
                    LOOP,
                    peers=(s1.addrs()[0],),
                    store=True,
                    filter=True,
                    lightpush=True,
                    blobs=True,
                )
            ).run
        )
        addrs = [s1.addrs()[0], s2.addrs()[0]]
        print("starting two service nodes, Alice and Bob (about ten seconds)...", flush=True)
        alice, alice_url = await _person(nursery, base, "Alice", addrs, ports[0])
        bob, bob_url = await _person(nursery, base, "Bob", addrs[::-1], ports[1])
        opened: list[Client] = []  # the shop's client, when it runs
        await alice.add_contact(bob.account.contact_code(time.time()).link, "Hi Bob, it's Alice")
        await _wait("Bob to get Alice's request", lambda: bool(bob.contacts()))
        await bob.respond(bob.contacts()[0].identity_key, ContactEvent.ACCEPT)
        await _wait("Alice to see the accept", lambda: alice.contacts()[0].state == "accepted")
        await alice.send_text(bob.me, "Hello Bob! This chat is end-to-end encrypted.")
        await _demo_group(alice, bob)
        if chain is not None:  # fund and set up both wallets on the demo's anvil
            await trio.to_thread.run_sync(chain.set_up, [alice, bob])
            print(chain.note, flush=True)
        try:
            shop = await start_shop(nursery, base, addrs, alice, bob, chain)
            opened.append(shop)
            print(f"{SHOP_NAME}: a bot; its app card is in Alice's chat with it", flush=True)
        except BoxlessError as exc:  # the chat demo still runs
            print(f"{SHOP_NAME} is off: {exc}", flush=True)
        print(f"\nAlice: {alice_url}\nBob:   {bob_url}\n", flush=True)
        print("Open both in a browser and chat. Ctrl-C stops everything.", flush=True)
        if ready_file is not None:
            await trio.Path(ready_file).write_text(f"{alice_url}\n{bob_url}\n")
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()
    for c in (alice, bob, *opened):
        c.account.close()
    print("stopped", flush=True)


def main(ports: tuple[int, int], data_dir: Path | None, ready_file: Path | None) -> None:
    from boxless.cli.app import run_trio  # unwraps a nursery's KeyboardInterrupt group

    print("starting the demo chain (anvil with the BXD test token)...", flush=True)
    with DemoChain() as chain:  # stopped on Ctrl-C too
        if data_dir is not None:
            run_trio(run_people_demo, data_dir, ports, ready_file, chain)
            return
        with tempfile.TemporaryDirectory(prefix="boxless-demo-") as tmp:
            run_trio(run_people_demo, Path(tmp), ports, ready_file, chain)
