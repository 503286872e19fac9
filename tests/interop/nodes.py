"""Helpers for the interop tests: Boxless nodes as processes (tests/nodeproc.py),
their addresses, store, health and metrics as seen from outside."""

from __future__ import annotations

import inspect
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from boxless.waku.sharding import pubsub_topic_for
from tests.nodeproc import NodeProcess, run_cli

CLUSTER = 42
WAIT = 20.0

LIGHTPUSH_V3 = "/vac/waku/lightpush/3.0.0"
LIGHTPUSH_V2 = "/vac/waku/lightpush/2.0.0-beta1"
FILTER_SUBSCRIBE = "/vac/waku/filter-subscribe/2.0.0-beta1"


def content_topic(name: str) -> str:
    """A content topic no other test uses (stores are shared within the session)."""
    return f"/boxless-interop/1/{name}-{uuid.uuid4().hex[:8]}/proto"


def topic_of(ct: str) -> str:
    return pubsub_topic_for(ct, CLUSTER)


def ws_addr(node: NodeProcess) -> str:
    return next(a for a in _addrs(node) if "/ws/" in a)


def tcp_addr(node: NodeProcess) -> str:
    return next(a for a in _addrs(node) if "/ws/" not in a)


def _addrs(node: NodeProcess) -> list[str]:
    addrs = node.info["addrs"]
    assert isinstance(addrs, list)
    return [str(a) for a in addrs]


def health(node: NodeProcess) -> dict[str, object]:
    with urllib.request.urlopen(f"{node.admin}/health", timeout=5) as r:
        return dict(json.loads(r.read()))


def metric(node: NodeProcess, name: str, labels: str = "") -> float:
    """A Prometheus sample from the node's /metrics (0 if absent)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    with urllib.request.urlopen(f"{node.admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def metrics_matching(node: NodeProcess, *prefixes: str) -> str:
    """The node's /metrics lines starting with any of ``prefixes`` (for failure reports)."""
    with urllib.request.urlopen(f"{node.admin}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return "\n".join(line for line in lines if line.startswith(prefixes))


def wait_for(what: str, check: Callable[[], object], timeout: float = WAIT) -> object:
    """Poll ``check`` (bounded): the node processes offer tests no push channel."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def publish(node: NodeProcess, ct: str, text: str, count: int = 1) -> list[str]:
    """``boxless publish`` to ``node``'s relay over TCP; the hashes it printed."""
    out = run_cli(
        "publish",
        "--peer",
        tcp_addr(node),
        "--content-topic",
        ct,
        "--message",
        text,
        "--count",
        str(count),
        "--cluster",
        str(CLUSTER),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def stored(node: NodeProcess, ct: str) -> list[dict[str, object]]:
    """What ``boxless query --json`` finds on ``node`` for content topic ``ct``, oldest first."""
    out = run_cli(
        "query",
        "--peer",
        tcp_addr(node),
        "--content-topic",
        ct,
        "--json",
        "--page-size",
        "100",
        "--cluster",
        str(CLUSTER),
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def wait_stored(node: NodeProcess, ct: str, hashes: list[str]) -> dict[str, dict[str, object]]:
    """Poll ``node``'s store until it holds every hash in ``hashes``; rows by hash."""
    rows: dict[str, dict[str, object]] = {}

    def check() -> bool:
        rows.clear()
        rows.update({str(r["hash"]): r for r in stored(node, ct)})
        return set(hashes) <= set(rows)

    try:
        wait_for(f"{node.name} to archive {len(hashes)} messages", check)
    except AssertionError as exc:
        missing = [h for h in hashes if h not in rows]
        raise AssertionError(
            f"{exc}: has {len(hashes) - len(missing)}, missing {len(missing)} "
            f"(first: {missing[:3]})"
        ) from None
    return rows


def service_flags() -> list[str]:
    """``--lightpush``/``--filter`` if ``boxless node`` has them (they are landing)."""
    from boxless.cli.main import node as node_command

    params = inspect.signature(node_command).parameters
    flags = []
    for flag, names in (("--lightpush", ("lightpush", "light_push")), ("--filter", ("filter",))):
        if any(n in params for n in names):
            flags.append(flag)
    return flags


def start_node(name: str, data_dir: Path, *args: str) -> NodeProcess:
    """A relay+store node of cluster 42 on TCP and WebSocket, plus any services it offers."""
    return NodeProcess(
        name,
        data_dir,
        [
            "--listen",
            "/ip4/127.0.0.1/tcp/0/ws",
            "--store",
            "--cluster",
            str(CLUSTER),
            *service_flags(),
            *args,
        ],
    ).start()


def require(advertised: set[str], protocol: str, what: str) -> None:
    """Skip while the node does not offer ``protocol`` (a service still being wired in)."""
    if protocol not in advertised:
        pytest.skip(
            f"{what}: the node does not advertise {protocol} in identify yet "
            f"(advertised: {sorted(advertised)}); this test runs as soon as it does"
        )
