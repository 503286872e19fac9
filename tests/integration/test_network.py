"""Four real `boxless node` processes on loopback: relay, store resume,
pagination, and a node of another cluster being shown the door."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from boxless.node.store_client import StoreQuerySpec, query_all
from boxless.waku.sharding import pubsub_topic_for
from tests.nodeproc import NodeProcess, run_cli

CONTENT_TOPIC = "/boxless/1/itest/proto"
TOPIC = pubsub_topic_for(CONTENT_TOPIC, 42)
WAIT = 30.0

pytestmark = pytest.mark.slow


def health(node: NodeProcess) -> dict[str, object]:
    with urllib.request.urlopen(f"{node.admin}/health", timeout=5) as r:
        return dict(json.loads(r.read()))


def metric(node: NodeProcess, name: str) -> float:
    with urllib.request.urlopen(f"{node.admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float = WAIT,
    state: Callable[[], object] | None = None,
) -> None:
    """Poll ``check`` until true; the node processes offer no push channel to tests."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            seen = f" (last seen: {state()})" if state is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(0.2)


def mesh_size(node: NodeProcess) -> int:
    relay = health(node)["relay"]
    assert isinstance(relay, dict)
    return int(relay[TOPIC])


def publish(node: NodeProcess, text: str, count: int = 1) -> list[str]:
    out = run_cli(
        "publish",
        "--peer",
        node.addr,
        "--content-topic",
        CONTENT_TOPIC,
        "--message",
        text,
        "--count",
        str(count),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


async def stored(node: NodeProcess, **kw: object) -> list[str]:
    spec = StoreQuerySpec(pubsub_topic=TOPIC, content_topics=(CONTENT_TOPIC,), **kw)  # type: ignore[arg-type]
    rows = await query_all(node.addr, spec, max_pages=1000)
    return [r.message_hash.hex() for r in rows]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    """A–B–C–D: each node knows only the previous one; all relay and store."""
    nodes: list[NodeProcess] = []
    try:
        for name in "abcd":
            args = ["--store"]
            if nodes:
                args += ["--peer", nodes[-1].addr]
            nodes.append(NodeProcess(name, tmp_path / name, args).start())
        for n in nodes:
            wait_for(f"{n.name} to have a relay mesh", lambda n=n: mesh_size(n) >= 1)
        yield nodes
    finally:
        for n in nodes:
            n.kill()
        for n in nodes:
            print(f"--- {n.name} log ---\n{n.logs(30)}")


async def test_message_crosses_the_line_and_a_restarted_node_catches_up(
    line: list[NodeProcess],
) -> None:
    a, b, c, d = line
    assert len(health(d)["addrs"]) >= 1  # type: ignore[arg-type]
    [first] = publish(a, "hello from A")
    wait_for("D to archive A's message", lambda: metric(d, "boxless_archive_inserted_total") >= 1)
    assert await stored(d) == [first]
    assert health(a)["peers"] <= 2  # A never talks to D directly
    # D goes down; A keeps publishing; D comes back and resumes from C's store.
    assert d.stop() == 0
    missed = publish(a, "while D was away", count=20)
    wait_for("C to archive them", lambda: metric(c, "boxless_archive_inserted_total") >= 21)
    d.start()
    wait_for("D to catch up", lambda: metric(d, "boxless_archive_inserted_total") >= 20)
    assert await stored(d) == [first, *missed]


async def test_store_pagination_both_directions(line: list[NodeProcess]) -> None:
    a = line[0]
    sent = publish(a, "page", count=1050)
    inserted = lambda: metric(a, "boxless_archive_inserted_total")  # noqa: E731
    wait_for("A to archive 1050", lambda: inserted() >= 1050, 120, inserted)
    forward = await stored(a, page_size=100, forward=True)
    backward = await stored(a, page_size=37, forward=False)
    assert len(forward) == len(set(forward)) == 1050
    assert set(forward) == set(sent)
    # Backward pages come newest page first, each page oldest to newest.
    pages = [backward[i : i + 37] for i in range(0, len(backward), 37)]
    assert sorted(set(backward)) == sorted(forward)
    assert len(backward) == 1050
    assert [h for page in reversed(pages) for h in page] == forward


async def test_node_of_another_cluster_is_disconnected(tmp_path: Path) -> None:
    a = NodeProcess("a", tmp_path / "a", ["--store"]).start()
    stranger = NodeProcess("x", tmp_path / "x", ["--cluster", "43", "--peer", a.addr])
    try:
        stranger.start()
        wait_for(
            "A to drop the stranger",
            lambda: (
                metric(a, "boxless_cluster_mismatch_disconnects_total") >= 1
                or metric(stranger, "boxless_cluster_mismatch_disconnects_total") >= 1
            ),
        )
        wait_for("no connection left", lambda: health(a)["peers"] == 0)
    finally:
        stranger.kill()
        a.kill()
