"""`boxless profile …`, `boxless contact alias|tag|star` and `boxless nearby …`
against a running client's API."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from typer.testing import CliRunner

from boxless.cli.main import app
from boxless.client.nearby_core import encode_geohash
from tests.api_fixtures import serve_api
from tests.memnet_fixtures import befriend, memnet

pytestmark = pytest.mark.trio


async def test_profile_contact_notes_and_nearby_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        trio.open_nursery() as nursery,
    ):
        await befriend(alice, bob)
        await serve_api(nursery, alice.client, alice.home)

        async def boxless(*args: str) -> str:
            argv = [*args, "--home", str(alice.home)]
            result = await trio.to_thread.run_sync(lambda: runner.invoke(app, argv))
            assert result.exit_code == 0, result.output
            return result.output

        assert "status: On call" in await boxless("profile", "set", "--status", "On call")
        assert "Bobby" in await boxless("contact", "alias", "Bob", "Bobby")
        assert "tags: family, work" in await boxless("contact", "tag", "Bobby", "work", "family")
        assert "★ starred" in await boxless("contact", "star", "Bobby")
        assert "their name: Bob" in await boxless("profile", "card", "Bobby")
        assert "Not sharing" in await boxless("nearby", "list")
        started = await boxless(
            "nearby", "start", "--lat", "38.72", "--lon", "-9.14", "--name", "A"
        )
        assert (
            f"Sharing cell {encode_geohash(38.72, -9.14, 5)} as A" in started
            and "nobody else nearby" in started
        )
        assert "Not sharing" in await boxless("nearby", "stop")
        bad = await trio.to_thread.run_sync(
            lambda: runner.invoke(
                app, ["nearby", "start", "--lat", "91", "--lon", "0", "--home", str(alice.home)]
            )
        )
        assert bad.exit_code != 0 and "lat" in bad.output
        nursery.cancel_scope.cancel()
