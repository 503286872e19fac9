"""A service node run with --turn hands TURN credentials to its light clients only.

Real `boxless node --turn` process (coturn from Debian), in-process light nodes:
the one that subscribed gets a URL and short-lived credentials coturn accepts
(HMAC with the node's secret, which never leaves the node); a peer connected
to the node without a filter subscription is refused; a client asking in a
loop is limited. Killed with SIGKILL, the node leaves no coturn behind (it used
to keep running, and its ports, after every suite run).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import trio

from boxless.errors import PeerError
from boxless.node.light import LightNode
from boxless.node.turn_service import GRANT_BURST, GRANT_TTL, request_turn
from tests.nodeproc import NodeProcess, free_port

pytestmark = pytest.mark.slow


async def _connected(light: LightNode) -> None:
    with trio.fail_after(20):
        while light.current is None:  # noqa: ASYNC110
            await trio.sleep(0.05)


def _turnservers(conf: Path) -> list[int]:
    """Pids of the processes started with ``-c conf`` (this test's coturn)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a pid, or gone meanwhile
            continue
        if str(conf).encode() in argv:
            found.append(int(entry.name))
    return found


async def _gone(conf: Path, timeout: float) -> list[int]:
    """Wait (bounded) until no process runs with ``conf``; the survivors."""
    with trio.move_on_after(timeout):
        while _turnservers(conf):  # noqa: ASYNC110 - another process, no event to wait on
            await trio.sleep(0.1)
    return _turnservers(conf)


async def test_the_node_advertises_turn_to_its_light_clients_only(tmp_path: Path) -> None:
    if shutil.which("turnserver") is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but coturn is not installed (scripts/install_coturn.sh)")
        pytest.skip("coturn is not installed (scripts/install_coturn.sh)")
    port = free_port()
    lo = 20000 + (port * 11) % 40000
    args = ["--filter", "--lightpush", "--no-peer-exchange", "--turn"]
    args += ["--turn-listen", f"127.0.0.1:{port}", "--turn-relay-ports", f"{lo}-{lo + 15}"]
    node = NodeProcess("turn", tmp_path / "node", args).start()
    try:
        client = LightNode(tmp_path / "client", [node.addr])
        other = LightNode(tmp_path / "other", [node.addr])  # connected, never subscribes
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            await nursery.start(other.run)
            await client.subscribe(["/boxless/1/turn-test/proto"])
            await _connected(client)
            await _connected(other)
            assert client.current is not None and other.current is not None
            grant: dict[str, object] = {}
            with trio.fail_after(20):  # the subscription reaches the node first
                while not grant:
                    try:
                        grant = await request_turn(client.host, client.current)
                    except PeerError:
                        await trio.sleep(0.2)
            assert grant["urls"] == [f"turn:127.0.0.1:{port}"] and grant["ttl_s"] == GRANT_TTL
            user = str(grant["username"])
            assert int(user.split(":")[0]) <= time.time() + GRANT_TTL + 5
            secret = (tmp_path / "node" / "turn_secret").read_text().strip().encode()
            mac = hmac.new(secret, user.encode(), hashlib.sha1).digest()
            assert grant["credential"] == base64.b64encode(mac).decode()  # coturn's check
            assert secret.decode() not in str(grant)

            # the attacker: connected to the node, no subscription there
            with pytest.raises(PeerError, match="not a light client"):
                await request_turn(other.host, other.current)
            # a client asking in a loop: a burst, then refused
            refused = 0
            for _ in range(GRANT_BURST + 3):
                try:
                    await request_turn(client.host, client.current)
                except PeerError as exc:
                    assert "rate" in str(exc)
                    refused += 1
            assert refused >= 3
            nursery.cancel_scope.cancel()
        conf = tmp_path / "node" / "turnserver.conf"
        assert _turnservers(conf), "coturn is not running"
        node.kill()  # SIGKILL: the node cannot stop coturn itself
        assert not await _gone(conf, 10), "coturn outlived its node's kill -9"
    finally:
        node.kill()
        for pid in _turnservers(tmp_path / "node" / "turnserver.conf"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # a failed run leaks nothing either
        print(node.logs(20))
