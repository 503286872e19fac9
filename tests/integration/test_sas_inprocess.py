"""Emoji verification between two real clients over a real service node, in this process.

Every SAS message goes the ordinary way: Olm-encrypted, sealed, light-pushed to
the service node, relayed and filtered to the other light client.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import vodozemac

from boxless.chat import envelope as env
from boxless.client import store as db
from boxless.client.channel import Received
from boxless.client.core import Client
from tests.chat_fixtures import befriend, make_account, running_client, start_service, wait_for


@asynccontextmanager
async def alice_and_bob(base: Path) -> AsyncIterator[tuple[Client, Client]]:
    for name in ("alice", "bob"):
        make_account(base / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, base, "s1")
        addrs = [s1.addrs()[0]]
        async with (
            running_client(base / "alice", addrs) as alice,
            running_client(base / "bob", addrs) as bob,
        ):
            await befriend(alice, bob)
            yield alice, bob
        nursery.cancel_scope.cancel()


def flow(client: Client, other: Client) -> dict[str, Any]:
    return client.sas.current(other.me)


async def until_state(client: Client, other: Client, *states: str) -> dict[str, Any]:
    await wait_for(client, lambda: flow(client, other)["state"] in states, timeout=30)
    return flow(client, other)


def verified(client: Client, other: Client) -> bool:
    with client.db.transaction() as cur:
        row = db.get_contact(cur, other.me)
    assert row is not None
    return row.verified_key is not None and row.verified_key == row.device_key


async def test_emoji_match_confirmed_on_both_sides_verifies_both(tmp_path: Path) -> None:
    async with alice_and_bob(tmp_path) as (alice, bob):
        started = await alice.sas.start(bob.me)
        assert started["state"] == "waiting" and started["role"] == "initiator"
        asked = await until_state(bob, alice, "requested")
        assert asked["flow"] == started["flow"] and asked["emoji"] == []
        await bob.sas.accept(alice.me)
        a = await until_state(alice, bob, "compare")
        b = await until_state(bob, alice, "compare")
        assert len(a["emoji"]) == 7 and a["emoji"] == b["emoji"]
        assert a["decimals"] == b["decimals"] and len(a["decimals"]) == 3
        assert all(e["name"] and e["emoji"] for e in a["emoji"])
        await alice.sas.confirm(bob.me)
        await wait_for(bob, lambda: flow(bob, alice)["they_confirmed"], timeout=30)
        await bob.sas.confirm(alice.me)
        await until_state(alice, bob, "verified")
        await until_state(bob, alice, "verified")
        assert verified(alice, bob) and verified(bob, alice)
        # nothing of it became chat history
        assert alice.messages(bob.me) == [] and bob.messages(alice.me) == []


async def test_mismatch_cancels_both_sides_and_verifies_nobody(tmp_path: Path) -> None:
    async with alice_and_bob(tmp_path) as (alice, bob):
        await alice.sas.start(bob.me)
        await until_state(bob, alice, "requested")
        await bob.sas.accept(alice.me)
        await until_state(bob, alice, "compare")
        await until_state(alice, bob, "compare")
        await alice.sas.confirm(bob.me)  # Alice waved them through; Bob looked closely
        await bob.sas.mismatch(alice.me)
        a = await until_state(alice, bob, "cancelled")
        b = flow(bob, alice)
        assert (a["reason"], a["by"], b["reason"], b["by"]) == (
            "mismatch",
            "them",
            "mismatch",
            "us",
        )
        assert not verified(alice, bob) and not verified(bob, alice)

        # A flow that nobody answers times out, on both sides.
        alice.sas.book.timeout = 0.5
        await alice.sas.start(bob.me)
        await until_state(bob, alice, "requested")
        a = await until_state(alice, bob, "cancelled")
        b = await until_state(bob, alice, "cancelled")
        assert a["reason"] == b["reason"] == "timeout" and b["by"] == "them"


async def test_a_substituted_key_is_caught_and_cancels_both(tmp_path: Path) -> None:
    """A man in the middle answers Bob with a SAS key of his own (from another flow):
    the commitment Alice made does not cover it, so no emoji are shown to Bob."""
    async with alice_and_bob(tmp_path) as (alice, bob):
        started = await alice.sas.start(bob.me)
        await until_state(bob, alice, "requested")
        await bob.sas.accept(alice.me)  # Bob's key is on its way; Alice's not yet
        forged = env.new_message(
            env.SasKey(started["flow"], vodozemac.Sas().public_key.to_bytes()),
            lamport=1,
            sent_at_ms=int(time.time() * 1000),
        )
        [alice_row] = [c for c in bob.contacts() if c.identity_key == alice.me]
        route = bob.channel.handlers.route(forged.body)
        assert route is not None
        received = Received(alice.me, alice.my_device_key, alice_row, forged, None)  # type: ignore[arg-type]
        with bob.db.transaction() as cur:
            follow_up = route.handler(cur, received)
        assert follow_up is not None
        await follow_up()
        b = flow(bob, alice)
        assert (b["state"], b["reason"], b["emoji"]) == ("cancelled", "mismatch", [])
        a = await until_state(alice, bob, "cancelled")
        assert a["reason"] == "mismatch" and a["by"] == "them"
        assert not verified(alice, bob) and not verified(bob, alice)


def _verify_cli(home: Path, who: str, answer: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from boxless.cli.main import app

    argv = ["verify", who, "--emoji", "--wait", "30", "--home", str(home)]
    result = CliRunner().invoke(app, argv, input=answer, prog_name="boxless")
    return result.exit_code, result.stdout


async def test_cli_and_api_drive_an_emoji_verification(tmp_path: Path) -> None:
    """`boxless verify Bob --emoji` at Alice's (the CLI over her local API), Bob over
    his API: the CLI shows the 7 emoji Bob's API shows, the user says "y", both verified."""
    from tests.api_fixtures import people

    async with people(tmp_path, "Alice", "Bob") as apis:
        alice, bob = apis["Alice"], apis["Bob"]
        a_key, b_key = alice.client.me.hex(), bob.client.me.hex()
        assert (await bob.call("GET", f"/contacts/{a_key}/sas"))["state"] == "none"
        r = await bob.request("POST", f"/contacts/{a_key}/sas/confirm")
        assert r.status_code == 409 and r.json()["error"]["code"] == "verification_state"
        r = await bob.request("POST", f"/contacts/{'ab' * 32}/sas")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        schema = await bob.call("GET", "/openapi.json")
        assert {"/api/v1/contacts/{key}/sas", "/api/v1/contacts/{key}/sas/mismatch"} <= set(
            schema["paths"]
        )

        async with trio.open_nursery() as nursery:
            done: list[tuple[int, str]] = []

            async def cli() -> None:
                done.append(await trio.to_thread.run_sync(_verify_cli, alice.home, "Bob", "y\n"))

            nursery.start_soon(cli)
            await bob.until(f"/contacts/{a_key}/sas", lambda f: f["state"] == "requested")
            # a page opened after the request finds it here (its event went out before)
            [waiting] = await bob.call("GET", "/verifications")
            assert (waiting["contact"], waiting["state"]) == (a_key, "requested")
            await bob.call("POST", f"/contacts/{a_key}/sas/accept")
            shown = await bob.until(f"/contacts/{a_key}/sas", lambda f: f["state"] == "compare")
            await bob.call("POST", f"/contacts/{a_key}/sas/confirm")
        [(code, out)] = done
        print(out)  # shown when the test fails
        assert code == 0, out
        for e in shown["emoji"]:
            assert f"{e['emoji']}  {e['name']}" in out
        assert " ".join(f"{n:04d}" for n in shown["decimals"]) in out
        assert "Do they match? [y/n]" in out and "✔ Bob is verified" in out
        bob_seen = await bob.until(f"/contacts/{a_key}/sas", lambda f: f["state"] == "verified")
        assert bob_seen["emoji"] == shown["emoji"]
        [contact] = await alice.call("GET", "/contacts")
        assert contact["identity_key"] == b_key and contact["verified"]
        assert await bob.call("GET", "/verifications") == []  # only running flows
