"""Calling the Boxless contracts: ABI encoding, deploy, send, call, logs.

The app cannot import web3/eth-abi (pycryptodome pin), and the contracts use a
handful of ABI types, so this is a small exact encoder: ``uint<N>``, ``bool``,
``address``, ``bytes32`` (static, one word each) and ``bytes`` (dynamic).
Answers from the node are decoded strictly (sizes, ranges, offsets); anything
else is :class:`BadRpcResponse`.

:class:`Signer` sends contract transactions from one key: EIP-1559 fees from
one batch, the nonce from the node's pending count (kept locally between
sends), a bounded wait for the receipt, and a revert turned into
:class:`ContractReverted` with the contract's reason when the node gives one.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any

from boxless.payments.errors import BadRpcResponse, RpcDown, RpcRefused
from boxless.payments.hdwallet import address_bytes, checksum_address, keccak256
from boxless.payments.rpc import Rpc, data, quantity
from boxless.payments.tx import Fees, UnsignedTx, suggest_fees, tx_hash

WORD = 32
RECEIPT_TIMEOUT_S = 30.0
MAX_DYNAMIC = 64 * 1024
READ_RETRIES = 5


class ContractReverted(RpcRefused):
    """The contract refused the call (its reason says why); nothing moved."""


def selector(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


def topic(signature: str) -> bytes:
    return keccak256(signature.encode())


def _word(kind: str, value: Any) -> bytes:
    if kind == "address":
        if not isinstance(value, bytes) or len(value) != 20:
            raise ValueError("an address is 20 bytes")
        return value.rjust(WORD, b"\x00")
    if kind == "bool":
        return (1 if value else 0).to_bytes(WORD, "big")
    if kind == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise ValueError("bytes32 is 32 bytes")
        return value
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        if not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise ValueError(f"{value!r} is not a {kind}")
        return value.to_bytes(WORD, "big")
    raise ValueError(f"unsupported ABI type {kind}")


def encode(types: list[str], values: list[Any]) -> bytes:
    """ABI-encode ``values`` (head/tail layout)."""
    if len(types) != len(values):
        raise ValueError("as many values as types")
    head, tail = b"", b""
    size = WORD * len(types)
    for kind, value in zip(types, values, strict=True):
        if kind == "bytes":
            head += (size + len(tail)).to_bytes(WORD, "big")
            padded = value + b"\x00" * (-len(value) % WORD)
            tail += len(value).to_bytes(WORD, "big") + padded
        else:
            head += _word(kind, value)
    return head + tail


def call_data(signature: str, values: list[Any]) -> bytes:
    """Selector + arguments for ``name(type,...)``."""
    inner = signature[signature.index("(") + 1 : -1]
    types = [t for t in inner.split(",") if t]
    return selector(signature) + encode(types, values)


def _decode_word(kind: str, word: bytes) -> Any:
    number = int.from_bytes(word, "big")
    if kind == "address":
        if number >> 160:
            raise BadRpcResponse("an address answer has high bits set")
        return word[12:]
    if kind == "bool":
        if number > 1:
            raise BadRpcResponse("a bool answer is neither 0 nor 1")
        return number == 1
    if kind == "bytes32":
        return word
    if kind.startswith("uint"):
        if number >> int(kind[4:] or 256):
            raise BadRpcResponse(f"an answer does not fit {kind}")
        return number
    raise ValueError(f"unsupported ABI type {kind}")


def decode(types: list[str], raw: bytes) -> list[Any]:
    """Strictly decode ABI ``raw`` into Python values (bytes for address/bytes*)."""
    if len(raw) < WORD * len(types) or len(raw) % WORD:
        raise BadRpcResponse(f"a contract answer of {len(raw)} bytes does not fit {types}")
    out: list[Any] = []
    for i, kind in enumerate(types):
        word = raw[i * WORD : (i + 1) * WORD]
        if kind != "bytes":
            out.append(_decode_word(kind, word))
            continue
        offset = int.from_bytes(word, "big")
        if offset % WORD or offset + WORD > len(raw):
            raise BadRpcResponse("a bytes answer points outside the data")
        length = int.from_bytes(raw[offset : offset + WORD], "big")
        if length > MAX_DYNAMIC or offset + WORD + length > len(raw):
            raise BadRpcResponse("a bytes answer is longer than the data")
        out.append(raw[offset + WORD : offset + WORD + length])
    return out


def artifact(name: str, runtime: bool = False) -> bytes:
    """The shipped deploy (or ``runtime``: deployed) bytecode of ``contracts/<name>.vy``
    (scripts/build_contracts.sh)."""
    suffix = ".runtime.bin" if runtime else ".bin"
    text = resources.files("boxless.payments").joinpath(f"contracts/{name}{suffix}").read_text()
    return bytes.fromhex(text.strip().removeprefix("0x"))


def abi(name: str) -> list[dict[str, Any]]:
    text = resources.files("boxless.payments").joinpath(f"contracts/{name}.abi.json").read_text()
    parsed: list[dict[str, Any]] = json.loads(text)
    return parsed


@dataclass(frozen=True, slots=True)
class Log:
    address: bytes
    topics: list[bytes]
    data: bytes
    block_number: int
    tx_hash: bytes


def parse_log(entry: Any) -> Log:
    if not isinstance(entry, dict) or not isinstance(entry.get("topics"), list):
        raise BadRpcResponse("a log entry is not an object with topics")
    return Log(
        data(entry.get("address"), "log address", 20),
        [data(t, "log topic", 32) for t in entry["topics"]],
        data(entry.get("data"), "log data"),
        quantity(entry.get("blockNumber"), "log block number"),
        data(entry.get("transactionHash"), "log transaction hash", 32),
    )


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    block_number: int
    contract_address: bytes | None
    logs: list[Log]
    gas_used: int


class Signer:
    """Sends contract transactions from ``private_key``'s account over ``rpc``."""

    def __init__(self, rpc: Rpc, private_key: bytes) -> None:
        self.rpc = rpc
        self._key = private_key
        self.address = address_bytes(private_key)
        self._next_nonce: int | None = None

    @property
    def hex_address(self) -> str:
        return checksum_address(self.address)

    def call(self, to: bytes, payload: bytes, block: str = "latest") -> bytes:
        """``eth_call`` of ``payload`` on ``to`` from this account; a revert raises."""
        request = {
            "from": self.hex_address,
            "to": checksum_address(to),
            "data": "0x" + payload.hex(),
        }
        try:
            return data(self._retry_reads([("eth_call", [request, block])])[0], "call answer")
        except RpcRefused as exc:
            raise ContractReverted(str(exc)) from exc

    def balance(self, account: bytes) -> int:
        answer = self._retry_reads([("eth_getBalance", [checksum_address(account), "latest"])])[0]
        return quantity(answer, "balance")

    def submit(
        self, to: bytes | None, payload: bytes, value: int = 0, gas: int | None = None
    ) -> bytes:
        """Sign and broadcast; return the transaction hash. The node's gas estimate
        runs the call first, so a call the contract would refuse raises
        :class:`ContractReverted` and nothing is sent."""
        request: dict[str, str] = {"from": self.hex_address, "value": hex(value)}
        request["data"] = "0x" + payload.hex()
        if to is not None:
            request["to"] = checksum_address(to)
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_getTransactionCount", [self.hex_address, "pending"]),
        ]
        if gas is None:
            calls.append(("eth_estimateGas", [request]))
        try:
            results = self._retry_reads(calls)
        except RpcRefused as exc:
            raise ContractReverted(str(exc)) from exc
        block = results[0]
        if not isinstance(block, dict):
            raise BadRpcResponse("the node's latest block is not an object")
        limit = gas if gas is not None else quantity(results[3], "gas estimate") * 6 // 5
        fees = suggest_fees(
            quantity(block.get("baseFeePerGas"), "base fee"),
            quantity(results[1], "priority fee"),
            limit,
        )
        nonce = max(quantity(results[2], "nonce"), self._next_nonce or 0)
        raw = UnsignedTx(self.rpc.chain_id, nonce, to, value, payload, fees).sign(self._key)
        self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        self._next_nonce = nonce + 1
        return tx_hash(raw)

    def submit_checked(
        self, to: bytes, chunks: list[list[tuple[bytes, bytes]]], gas: int
    ) -> tuple[list[bytes], list[str]]:
        """Each chunk holds (call, check) pairs: ``check`` is a view call on ``to``
        answering a string, empty when ``call`` would succeed now. One JSON-RPC
        batch per chunk broadcasts the previous chunk's signed calls, then reads
        fees and nonce and runs this chunk's checks; the calls that passed are
        signed (consecutive nonces, the fixed ``gas`` limit: a refused call costs
        nothing) and go out with the next batch; a last batch sends the rest.
        Returns (hashes sent, reasons refused); at most 14 pairs per chunk."""
        dest = checksum_address(to)
        hashes: list[bytes] = []
        refused: list[str] = []
        pending: list[bytes] = []
        seen: Fees | None = None  # the fees of the previous batch
        with ThreadPoolExecutor(1) as io:
            for chunk in chunks:
                if not 1 <= len(chunk) <= 14:
                    raise ValueError("1 to 14 calls per chunk")
                sends = [("eth_sendRawTransaction", ["0x" + r.hex()]) for r in pending]
                calls: list[tuple[str, list[Any]]] = [
                    *sends,
                    ("eth_getBlockByNumber", ["latest", False]),
                    ("eth_maxPriorityFeePerGas", []),
                    ("eth_getTransactionCount", [self.hex_address, "pending"]),
                ]
                calls += [
                    (
                        "eth_call",
                        [{"from": self.hex_address, "to": dest, "data": "0x" + c.hex()}, "latest"],
                    )
                    for _, c in chunk
                ]
                answer = io.submit(self.rpc.batch, calls)
                # While the node answers: sign this chunk as if every check passes
                # and nonce and fees stay; used only if all of that holds.
                guess = self._next_nonce
                ahead = (
                    [
                        UnsignedTx(self.rpc.chain_id, guess + i, to, 0, p, seen).sign(self._key)
                        for i, (p, _) in enumerate(chunk)
                    ]
                    if seen is not None and guess is not None
                    else None
                )
                try:
                    results = answer.result()[len(sends) :]
                except RpcRefused as exc:
                    # anvil --prune-history answers an eth_call on "latest" racing a new
                    # block with BlockOutOfRangeError. The batch's first error raises, so
                    # the sends before it went through: read again without them.
                    if "BlockOutOfRange" not in str(exc):
                        raise
                    results = self._retry_reads(calls[len(sends) :])
                hashes += [tx_hash(r) for r in pending]
                block = results[0]
                if not isinstance(block, dict):
                    raise BadRpcResponse("the node's latest block is not an object")
                fees = suggest_fees(
                    quantity(block.get("baseFeePerGas"), "base fee"),
                    quantity(results[1], "priority fee"),
                    gas,
                )
                nonce = max(quantity(results[2], "nonce"), self._next_nonce or 0)
                reasons = [decode(["bytes"], data(a, "check answer"))[0] for a in results[3:]]
                if len(reasons) != len(chunk):
                    raise BadRpcResponse("the node answered the wrong number of checks")
                if (
                    ahead is not None
                    and seen is not None
                    and nonce == guess
                    and not any(reasons)
                    and seen.max_priority_fee_per_gas == fees.max_priority_fee_per_gas
                    and seen.max_fee_per_gas >= fees.max_fee_per_gas  # still covers the base fee
                ):
                    pending, nonce = ahead, nonce + len(chunk)
                else:
                    pending = []
                    for (payload, _), reason in zip(chunk, reasons, strict=True):
                        if reason:
                            refused.append(reason.decode("utf-8", "replace")[:100])
                            continue
                        pending.append(
                            UnsignedTx(self.rpc.chain_id, nonce, to, 0, payload, fees).sign(
                                self._key
                            )
                        )
                        nonce += 1
                    seen = fees
                self._next_nonce = nonce
        if pending:
            self.rpc.batch([("eth_sendRawTransaction", ["0x" + r.hex()]) for r in pending])
            hashes += [tx_hash(r) for r in pending]
        return hashes, refused

    def _retry_reads(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """``calls`` (reads only), again when anvil --prune-history refuses a
        ``latest`` block that a new block replaced while it answered."""
        for _ in range(READ_RETRIES):
            try:
                return self.rpc.batch(calls)
            except RpcRefused as exc:
                if "BlockOutOfRange" not in str(exc):
                    raise
        raise RpcDown(f"the node kept moving its latest block under {READ_RETRIES} reads")

    def wait(self, hashes: list[bytes], timeout: float = RECEIPT_TIMEOUT_S) -> list[Receipt]:
        """The receipts of ``hashes`` (bounded wait); a reverted one raises."""
        found: dict[bytes, Receipt] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(hashes):
            todo = [h for h in hashes if h not in found][:30]
            answers = self.rpc.batch(
                [("eth_getTransactionReceipt", ["0x" + h.hex()]) for h in todo]
            )
            for h, answer in zip(todo, answers, strict=True):
                if answer is None:
                    continue
                if not isinstance(answer, dict):
                    raise BadRpcResponse("a receipt is neither an object nor null")
                if quantity(answer.get("status"), "receipt status") != 1:
                    raise ContractReverted(f"transaction 0x{h.hex()} reverted on chain")
                created = answer.get("contractAddress")
                found[h] = Receipt(
                    h,
                    quantity(answer.get("blockNumber"), "receipt block"),
                    None if created is None else data(created, "contract address", 20),
                    [parse_log(e) for e in answer.get("logs") or []],
                    quantity(answer.get("gasUsed"), "gas used"),
                )
            if len(found) < len(hashes):
                if time.monotonic() > deadline:
                    raise BadRpcResponse(f"no receipt within {timeout} s; is the chain mining?")
                time.sleep(0.05)
        return [found[h] for h in hashes]

    def transact(self, to: bytes | None, payload: bytes, value: int = 0) -> Receipt:
        return self.wait([self.submit(to, payload, value)])[0]

    def deploy(self, name: str, args: bytes = b"") -> bytes:
        """Deploy ``contracts/<name>``; return its address once mined."""
        receipt = self.transact(None, artifact(name) + args)
        if receipt.contract_address is None:
            raise BadRpcResponse("a deploy receipt has no contract address")
        return receipt.contract_address

    def code(self, address: bytes) -> bytes:
        answer = self._retry_reads([("eth_getCode", [checksum_address(address), "latest"])])[0]
        return data(answer, "contract code")

    def logs(self, address: bytes, topics: list[bytes | None], from_block: int = 0) -> list[Log]:
        query: dict[str, Any] = {
            "address": checksum_address(address),
            "fromBlock": hex(from_block),
            "toBlock": "latest",
            "topics": [None if t is None else "0x" + t.hex() for t in topics],
        }
        answer = self.rpc.call("eth_getLogs", [query])
        if not isinstance(answer, list):
            raise BadRpcResponse("eth_getLogs did not answer a list")
        return [parse_log(e) for e in answer]
