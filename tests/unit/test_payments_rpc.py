"""The JSON-RPC client against a lying node: a real HTTP server on 127.0.0.1 that
answers each batch with what a test tells it (wrong chain, garbage, errors)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.payments.errors import BadRpcResponse, RpcDown, RpcRefused, WrongChain
from boxless.payments.rpc import Rpc, data, quantity


class LyingNode:
    def __init__(self) -> None:
        self.answer: Any = None  # a function of the request batch, or raw bytes
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                out = node.answer(request)
                body = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def node() -> Iterator[LyingNode]:
    n = LyingNode()
    thread = threading.Thread(target=n.server.serve_forever, daemon=True)
    thread.start()
    yield n
    n.server.shutdown()
    n.server.server_close()
    thread.join(timeout=5)


def honest(chain: str, result: Any) -> Any:
    return lambda req: [
        {"jsonrpc": "2.0", "id": req[0]["id"], "result": chain},
        *({"jsonrpc": "2.0", "id": r["id"], "result": result} for r in req[1:]),
    ]


def test_a_lying_node_is_refused(node: LyingNode) -> None:
    rpc = Rpc(node.url, 31337, timeout=5)
    node.answer = honest("0x7a69", "0x10")
    assert rpc.call("eth_blockNumber", []) == "0x10"
    node.answer = honest("0x1", "0x10")  # another chain
    with pytest.raises(WrongChain, match="serves chain 1"):
        rpc.call("eth_blockNumber", [])
    node.answer = honest("7a69", "0x10")  # not a hex quantity
    with pytest.raises(BadRpcResponse):
        rpc.call("eth_blockNumber", [])
    node.answer = lambda req: [{"jsonrpc": "2.0", "id": req[0]["id"], "result": "0x7a69"}]
    with pytest.raises(BadRpcResponse, match="results"):
        rpc.call("eth_blockNumber", [])
    node.answer = lambda req: [
        {"jsonrpc": "2.0", "id": req[0]["id"], "result": "0x7a69"},
        {"jsonrpc": "2.0", "id": req[1]["id"], "error": {"code": -32000, "message": "no"}},
    ]
    with pytest.raises(RpcRefused, match="refused eth_sendRawTransaction: no"):
        rpc.call("eth_sendRawTransaction", ["0x00"])
    node.answer = lambda req: b"<html>gateway</html>"
    with pytest.raises(RpcDown, match="JSON"):
        rpc.call("eth_blockNumber", [])
    node.answer = lambda req: {"not": "a list"}
    with pytest.raises(BadRpcResponse):
        rpc.call("eth_blockNumber", [])
    rpc.close()


def test_a_node_that_is_down() -> None:
    from boxless.payments.devnet import free_port

    rpc = Rpc(f"http://127.0.0.1:{free_port()}", 1, timeout=2)
    with pytest.raises(RpcDown, match="unreachable"):
        rpc.call("eth_blockNumber", [])
    rpc.close()


@given(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.integers())))
def test_answer_decoders_never_crash(value: object) -> None:
    for decode in (lambda v: quantity(v, "x"), lambda v: data(v, "x"), lambda v: data(v, "x", 32)):
        try:
            result = decode(value)
        except BadRpcResponse:
            continue
        assert isinstance(result, int | bytes)
        if isinstance(result, int):
            assert 0 <= result < 2**256
