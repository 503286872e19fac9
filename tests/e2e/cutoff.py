"""A service node of one person's own, to cut their `boxless up` off the network while
their page stays open (the banner "Your node cannot reach the network"). It serves no
peer exchange, so its light clients learn no other service node to fail over to. It
relays with the node it peers, so messages flow until it is cut, and again once it is
back (restarted on its old port with its old key: the address its clients know)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.nodeproc import NodeProcess

__all__ = ["LoneNode", "lone_service_node"]

SERVICE = ["--store", "--filter", "--lightpush", "--no-peer-exchange"]


class LoneNode:
    def __init__(self, root: Path, peer: str) -> None:
        self.node = NodeProcess("lone", root, [*SERVICE, "--peer", peer]).start()
        self.addr = self.node.addr

    def cut(self) -> None:
        """Stop the node: its clients are cut off."""
        self.node.stop()

    def back(self) -> None:
        """Start it again where its clients look for it (same port, same key)."""
        port = self.addr.split("/tcp/")[1].split("/")[0]
        self.node.start(["--listen", f"/ip4/127.0.0.1/tcp/{port}"])


@contextmanager
def lone_service_node(root: Path, peer: str) -> Iterator[LoneNode]:
    """A :class:`LoneNode` in ``root`` peering ``peer``; killed at the end."""
    node = LoneNode(root, peer)
    try:
        yield node
    finally:
        node.node.kill()
