"""A JSON-RPC client for any EVM node that checks the chain id on every call.

Each call goes out as a JSON-RPC batch ``[eth_chainId, <method>]``: one round
trip, and an endpoint that serves (or claims) another chain is refused before
its answer is used. Answers are validated (hex quantities, 32-byte hashes);
anything else is :class:`BadRpcResponse`. Blocking (httpx); async callers run
it in a thread.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx

from boxless.payments.errors import BadRpcResponse, RpcDown, RpcRefused, WrongChain

_QUANTITY = re.compile(r"0x(0|[1-9a-f][0-9a-f]{0,63})")
_DATA = re.compile(r"0x([0-9a-f]{2})*")
TIMEOUT_S = 10.0
MAX_BATCH = 32
# Reads that name a block ("latest"): anvil --prune-history refuses one with
# BlockOutOfRangeError when a new block replaced "latest" while it answered
# (anvil 1.7.1); a batch of only these is asked again, up to READ_RETRIES times.
READS = frozenset(
    {"eth_call", "eth_getBalance", "eth_getCode", "eth_getTransactionCount",
     "eth_blockNumber", "eth_estimateGas", "eth_getTransactionReceipt",
     "eth_getTransactionByHash", "eth_getBlockByNumber", "eth_feeHistory",
     "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_getLogs", "eth_getStorageAt"}
)  # fmt: skip
READ_RETRIES = 5


def quantity(value: object, what: str) -> int:
    if not isinstance(value, str) or _QUANTITY.fullmatch(value.lower()) is None:
        raise BadRpcResponse(f"the node's {what} is not a hex quantity: {str(value)[:40]!r}")
    return int(value, 16)


def data(value: object, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, str) or _DATA.fullmatch(value.lower()) is None:
        raise BadRpcResponse(f"the node's {what} is not hex data: {str(value)[:40]!r}")
    raw = bytes.fromhex(value[2:])
    if size is not None and len(raw) != size:
        raise BadRpcResponse(f"the node's {what} has {len(raw)} bytes, not {size}")
    return raw


def http_client(timeout: float = TIMEOUT_S) -> httpx.Client:
    """An HTTP client for JSON-RPC: keep-alive, and TCP_NODELAY (httpx writes a
    request's headers and body separately; with Nagle's algorithm the body waits
    for the headers' ACK, a delayed ACK on loopback: ~2 ms per call)."""
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    return httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(socket_options=nodelay))


class Rpc:
    """Calls to ``url``, which must serve chain ``chain_id``."""

    def __init__(self, url: str, chain_id: int, timeout: float = TIMEOUT_S) -> None:
        self.url = url
        self.chain_id = chain_id
        self._client = http_client(timeout)
        self._id = 0

    def __repr__(self) -> str:
        return f"Rpc({self.url!r}, chain_id={self.chain_id})"

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, params: list[Any]) -> Any:
        """``method``'s result, after checking the endpoint's chain id."""
        return self.batch([(method, params)])[0]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The results of ``calls``, sent in one round trip after ``eth_chainId``
        (the node answers them in order; the first error raises)."""
        if not 1 <= len(calls) <= MAX_BATCH:
            raise ValueError(f"a batch has 1 to {MAX_BATCH} calls")
        if not all(method in READS for method, _ in calls):
            return self._batch_once(calls)
        for attempt in range(READ_RETRIES):
            try:
                return self._batch_once(calls)
            except RpcRefused as exc:
                if "BlockOutOfRange" not in str(exc) or attempt == READ_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _batch_once(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        first = self._id + 1
        self._id += len(calls) + 1
        batch = [{"jsonrpc": "2.0", "id": first, "method": "eth_chainId", "params": []}]
        batch += [
            {"jsonrpc": "2.0", "id": first + 1 + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        by_id = self._post(batch)
        self._check_chain(by_id.get(first))
        return [
            self._result(by_id.get(first + 1 + i), method) for i, (method, _) in enumerate(calls)
        ]

    def _post(self, batch: list[dict[str, Any]]) -> dict[Any, Any]:
        try:
            response = self._client.post(self.url, json=batch)
            response.raise_for_status()
            answers = response.json()
        except httpx.HTTPError as exc:
            raise RpcDown(
                f"the chain's RPC at {self.url} is unreachable ({exc}); is it running?"
            ) from exc
        except ValueError:
            raise RpcDown(f"the chain's RPC at {self.url} did not answer JSON") from None
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise BadRpcResponse(f"{self.url} did not answer the batch with {len(batch)} results")
        return {a.get("id"): a for a in answers if isinstance(a, dict)}

    def _check_chain(self, answer: Any) -> None:
        served = quantity(self._result(answer, "eth_chainId"), "chain id")
        if served != self.chain_id:
            raise WrongChain(
                f"the RPC at {self.url} serves chain {served}, but the wallet is set up for "
                f"chain {self.chain_id}; nothing was sent. Check the URL, or configure "
                "the wallet for that chain on purpose"
            )

    def batch_each(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Like :meth:`batch`, but one refused call does not fail the others: its slot
        holds the :class:`RpcRefused` instead of a result (a node down, a lying
        node or another chain still raise for the whole batch)."""
        if not 1 <= len(calls) <= MAX_BATCH:
            raise ValueError(f"a batch has 1 to {MAX_BATCH} calls")
        first = self._id + 1
        self._id += len(calls) + 1
        batch = [{"jsonrpc": "2.0", "id": first, "method": "eth_chainId", "params": []}]
        batch += [
            {"jsonrpc": "2.0", "id": first + 1 + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        by_id = self._post(batch)
        self._check_chain(by_id.get(first))
        out: list[Any] = []
        for i, (method, _) in enumerate(calls):
            try:
                out.append(self._result(by_id.get(first + 1 + i), method))
            except RpcRefused as exc:
                out.append(exc)
        return out

    def _result(self, answer: Any, method: str) -> Any:
        if not isinstance(answer, dict):
            raise BadRpcResponse(f"{self.url} left {method} unanswered")
        if "error" in answer:
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise RpcRefused(f"the node refused {method}: {str(message)[:300]}")
        if "result" not in answer:
            raise BadRpcResponse(f"{self.url} answered {method} without a result")
        return answer["result"]
