"""Fixtures for the js-waku interop suite: one Boxless service node per
session, listening on TCP and WebSocket (see tests/interop/nodes.py), and what
a js-waku light node saw when it connected to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.jsrun import Event, node_binary, run_js
from tests.interop.nodes import CLUSTER, start_node, ws_addr
from tests.nodeproc import NodeProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def service_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """The Boxless node js-waku talks to, shared by the interop tests."""
    node_binary()  # skip (or fail under CI) before starting anything
    node = start_node("svc", tmp_path_factory.mktemp("svc"))
    try:
        yield node
    finally:
        node.kill()
        print(f"--- {node.name} log ---\n{node.logs(40)}")


@pytest.fixture(scope="session")
def js_view(service_node: NodeProcess) -> dict[str, Event]:
    """What a js-waku light node saw when it connected: one event per kind."""
    events = run_js(
        "connect.mjs",
        {"addr": ws_addr(service_node), "topics": [f"/waku/2/rs/{CLUSTER}/{s}" for s in range(8)]},
        timeout=30,
    )
    return {e["event"]: e for e in events}


@pytest.fixture(scope="session")
def advertised(js_view: dict[str, Event]) -> set[str]:
    """Protocols our node listed in identify, as js-libp2p received them."""
    return set(js_view["identified"]["protocols"])
