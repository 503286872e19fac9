"""The wallet: balances, quoting and sending ETH or an ERC-20 token, tracking.

Sending is two steps so nothing moves without a confirmation: :meth:`Wallet.quote`
builds the transaction and shows amount, fee cap and total; :meth:`Wallet.send`
signs exactly that quote, stores it, then broadcasts. :meth:`Wallet.refresh`
re-reads every open transaction's fate from the chain (:mod:`.tracker`) and
re-broadcasts those the node forgot (after a restart, a reorg, a node swap).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from boxless.payments.amounts import ETH, Asset, format_amount
from boxless.payments.broadcast import Broadcaster, already_known
from boxless.payments.errors import BadRpcResponse, InsufficientFunds, RpcDown, RpcRefused
from boxless.payments.hdwallet import address_bytes, checksum_address
from boxless.payments.rpc import Rpc, data, quantity
from boxless.payments.store import ChainConfig, PaymentStore, TxRecord
from boxless.payments.tracker import PENDING, Decision, Observation, Receipt, decide
from boxless.payments.tx import (
    ETH_TRANSFER_GAS,
    UnsignedTx,
    erc20_balance_of_data,
    erc20_transfer_data,
    suggest_fees,
    tx_hash,
)


@dataclass(frozen=True, slots=True)
class Quote:
    """A transfer ready to sign: what the user confirms."""

    tx: UnsignedTx
    recipient: bytes
    amount: int
    asset: Asset

    @property
    def fee_cap(self) -> int:
        return self.tx.fees.max_cost

    def describe(self) -> list[str]:
        d = self.asset.decimals
        lines = [
            f"to:      {checksum_address(self.recipient)}",
            f"amount:  {format_amount(self.amount, d)} {self.asset.symbol}",
            f"fee:     at most {format_amount(self.fee_cap, 18)} ETH "
            f"({self.tx.fees.gas} gas × {format_amount(self.tx.fees.max_fee_per_gas, 9)} gwei)",
        ]
        if self.asset.token is None:
            lines.append(f"total:   at most {format_amount(self.amount + self.fee_cap, 18)} ETH")
        return lines


@dataclass(slots=True)
class _View:
    """Balances, nonces and fees read at one block, and what our transactions not in
    that block may spend (from the user DB at the read, plus each send since)."""

    at: float
    token: str | None
    results: list[Any]
    reserved_asset: int
    reserved_eth: int

    def reserve(self, record: TxRecord) -> None:
        if record.token == self.token:
            self.reserved_asset += record.amount
        self.reserved_eth += record.max_fee + (record.amount if record.token is None else 0)


VIEW_ATTEMPTS = 3
VIEW_TTL_S = 1.0  # how long one consistent read of balances, nonces and fees is reused
REFRESH_CHUNK = 14  # 2 + 2 x 14 calls: within rpc.MAX_BATCH


class Wallet:
    def __init__(
        self,
        store: PaymentStore,
        config: ChainConfig,
        private_key: bytes,
        *,
        view_ttl: float = VIEW_TTL_S,
    ) -> None:
        self.store = store
        self.config = config
        self.rpc = Rpc(config.rpc_url, config.chain_id)
        self.view_ttl = view_ttl
        self._views: dict[str | None, _View] = {}  # asset token -> a consistent read
        self._broadcaster: Broadcaster | None = None
        self._next_nonce = 0  # past our signed transactions not stored yet (pipelined)
        self._key = private_key
        self.address = address_bytes(private_key)
        self._plain_accounts: set[str] = set()  # recipients seen without code

    def __repr__(self) -> str:
        return f"Wallet({checksum_address(self.address)}, {self.rpc!r})"

    def close(self) -> None:
        """Close the connections (after the queued broadcasts, if any)."""
        if self._broadcaster is not None:
            self._broadcaster.close()
            self._broadcaster = None
        self.rpc.close()

    def assets(self) -> dict[str, Asset]:
        assets = {"ETH": ETH}
        c = self.config
        if c.token and c.token_symbol and c.token_decimals is not None:
            assets[c.token_symbol.upper()] = Asset(c.token_symbol, c.token_decimals, c.token)
        return assets

    # -- reads

    def balance(self, asset: Asset = ETH) -> int:
        if asset.token is None:
            return quantity(self.rpc.call("eth_getBalance", [self._hex_addr, "latest"]), "balance")
        method, params = self._balance_call(asset)
        return self._token_balance(self.rpc.call(method, params), asset)

    def _balance_call(self, asset: Asset) -> tuple[str, list[Any]]:
        payload = "0x" + erc20_balance_of_data(self.address).hex()
        return "eth_call", [{"to": asset.token, "data": payload}, "latest"]

    def _token_balance(self, result: Any, asset: Asset) -> int:
        raw = data(result, f"{asset.symbol} balanceOf answer")
        if len(raw) != 32:
            raise BadRpcResponse(
                f"the {asset.symbol} contract answered balanceOf with {len(raw)} bytes, not 32: "
                "is the configured token address really an ERC-20?"
            )
        return int.from_bytes(raw, "big")

    @property
    def _hex_addr(self) -> str:
        return checksum_address(self.address)

    # -- sending

    def quote(self, recipient: bytes, amount: int, asset: Asset = ETH) -> Quote:
        """Build (not sign) a transfer; InsufficientFunds if it cannot be paid.

        One round trip: the mined nonce is read before and after the balances in
        the same batch (a node answers a batch in order), so what our unmined
        nonces may still spend is reserved exactly once; then the fee inputs and
        the pending nonce. (Block-pinned reads would fail on pruned nodes such as
        anvil --prune-history.)"""
        if asset.token is None:
            to, value, payload = recipient, amount, b""
        else:
            to, value = bytes.fromhex(asset.token[2:]), 0
            payload = erc20_transfer_data(recipient, amount)
        me = self._hex_addr
        call = {"from": me, "to": checksum_address(to), "value": hex(value)}
        call["data"] = "0x" + payload.hex()
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getTransactionCount", [me, "latest"]),
            ("eth_getBalance", [me, "latest"]),
            ("eth_getTransactionCount", [me, "latest"]),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_getTransactionCount", [me, "pending"]),
        ]
        if asset.token is not None:
            calls.insert(2, self._balance_call(asset))
        view = self._view(asset, calls)
        results = view.results
        eth = quantity(results[1], "balance")
        token_balance = eth if asset.token is None else self._token_balance(results[2], asset)
        reserved_asset, reserved_eth = view.reserved_asset, view.reserved_eth
        local = self.store.next_local_nonce(self.config.chain_id, self.address)
        eth -= reserved_eth
        held = eth if asset.token is None else token_balance - reserved_asset
        pending = " after your pending transactions" if reserved_eth else ""
        if held < amount:
            raise InsufficientFunds(
                f"you hold {format_amount(max(held, 0), asset.decimals)} {asset.symbol}{pending}, "
                f"less than the {format_amount(amount, asset.decimals)} {asset.symbol} to send; "
                "nothing was sent"
            )
        block, tip = results[-3], quantity(results[-2], "priority fee")
        if not isinstance(block, dict) or "baseFeePerGas" not in block:
            raise BadRpcResponse("the node's latest block has no base fee: not an EIP-1559 chain?")
        fees = suggest_fees(quantity(block["baseFeePerGas"], "base fee"), tip, self._gas(call))
        if eth < value + fees.max_cost:
            raise InsufficientFunds(
                f"you hold {format_amount(max(eth, 0), 18)} ETH{pending}; this needs up to "
                f"{format_amount(value + fees.max_cost, 18)} ETH with the fee; nothing was sent"
            )
        nonce = max(quantity(results[-1], "nonce"), local or 0, self._next_nonce)
        tx = UnsignedTx(self.config.chain_id, nonce, to, value, payload, fees)
        return Quote(tx, recipient, amount, asset)

    def _view(self, asset: Asset, calls: list[tuple[str, list[Any]]]) -> _View:
        """One consistent read of ``calls`` (the mined nonce the same before and after
        the balances), reused for ``view_ttl`` seconds: a burst of sends costs one
        round trip each (the broadcast), not two. What our own sends since then may
        spend is reserved from the user DB, and their nonces come from it, so a
        reused read never overdraws or repeats a nonce; funds that arrived since
        show up at the next read."""
        now = time.monotonic()
        cached = self._views.get(asset.token)
        if cached is not None and now - cached.at < self.view_ttl:
            return cached
        for _ in range(VIEW_ATTEMPTS):
            results = self.rpc.batch(calls)
            mined = quantity(results[0], "nonce")
            if quantity(results[-4], "nonce") == mined:
                reserved_asset, reserved_eth = self.store.reserved(
                    self.config.chain_id, self.address, asset.token, mined
                )
                view = _View(now, asset.token, results, reserved_asset, reserved_eth)
                self._views[asset.token] = view
                return view
        raise RpcDown(
            f"our own transactions kept being mined while reading balances "
            f"({VIEW_ATTEMPTS} tries); try again in a moment"
        )

    def forget_view(self) -> None:
        """Read balances, nonces and fees afresh at the next quote."""
        self._views.clear()

    def _gas(self, call: dict[str, str]) -> int:
        """The gas limit: 21,000 for ETH to an account without code (no call needed
        to know), else the node's estimate."""
        if call["data"] == "0x" and call["to"] in self._plain_accounts:
            return ETH_TRANSFER_GAS
        code, gas = self.rpc.batch(
            [("eth_getCode", [call["to"], "latest"]), ("eth_estimateGas", [call])]
        )
        if call["data"] == "0x" and data(code, "account code") == b"":
            self._plain_accounts.add(call["to"])
        return quantity(gas, "gas estimate")

    def send(self, quote: Quote, now_ms: int, note: str = "") -> TxRecord:
        """Sign ``quote``, store it, broadcast it. A node that refuses it leaves no trace;
        an unreachable node leaves it pending, to be re-broadcast by :meth:`refresh`."""
        return self._broadcast(self.rpc, self._sign_and_store(quote, now_ms, note))

    def send_pipelined(self, quote: Quote, now_ms: int, note: str = "") -> Future[TxRecord]:
        """:meth:`send`, with storing and broadcasting queued: the transaction is signed
        now (its nonce and spending taken in memory); a worker stores what is queued in
        one DB transaction, then broadcasts it as one JSON-RPC batch, in nonce order,
        on its own connection, while the caller prepares the next (:mod:`.broadcast`).
        Nothing is broadcast before it is stored. The future raises what
        :meth:`send` would (a refused transaction is forgotten). For batches (payouts,
        a bill's shares); :meth:`close` waits for the queue."""
        record = self._sign(quote, now_ms, note)
        if self._broadcaster is None:
            rpc = Rpc(self.config.rpc_url, self.config.chain_id)
            self._broadcaster = Broadcaster(rpc, self._refused, self.store.add_many)
        return self._broadcaster.submit(record)

    def _refused(self, record: TxRecord) -> None:
        self.store.forget(record.hash)
        self.forget_view()
        self._next_nonce = 0  # its nonce is free again: ask the node and the DB

    def _sign(self, quote: Quote, now_ms: int, note: str) -> TxRecord:
        """Sign ``quote``; its nonce and spending count from now on (in memory)."""
        raw = quote.tx.sign(self._key)
        record = TxRecord(
            tx_hash(raw), self.config.chain_id, self.address, quote.tx.nonce, quote.recipient,
            quote.amount, quote.asset.symbol, quote.asset.token, quote.fee_cap, raw, PENDING,
            None, 0, note[:200], now_ms,
        )  # fmt: skip
        for view in self._views.values():  # reads from before it: it spends from them
            view.reserve(record)
        self._next_nonce = max(self._next_nonce, record.nonce + 1)
        return record

    def _sign_and_store(self, quote: Quote, now_ms: int, note: str) -> TxRecord:
        record = self._sign(quote, now_ms, note)
        self.store.add(record, now_ms)
        return record

    def _broadcast(self, rpc: Rpc, record: TxRecord) -> TxRecord:
        try:
            rpc.call("eth_sendRawTransaction", ["0x" + record.raw.hex()])
        except RpcRefused as exc:
            if already_known(exc):  # a refresh (the watcher) re-broadcast it first
                return record
            self._refused(record)  # e.g. funds spent elsewhere: read afresh next time
            raise
        except RpcDown as exc:
            raise RpcDown(
                f"{exc} The signed transaction 0x{record.hash.hex()} is saved and is sent "
                "again on the next refresh (`boxless wallet history`); do not send it twice"
            ) from exc
        return record

    # -- tracking

    def observe(self, records: list[TxRecord]) -> list[Observation]:
        """What the node says about each of ``records`` (all sent by this wallet), in
        two round trips: head, mined nonce, receipts and lookups; then the canonical
        hashes of the receipts' blocks."""
        me = checksum_address(self.address)
        calls: list[tuple[str, list[Any]]] = [
            ("eth_blockNumber", []),
            ("eth_getTransactionCount", [me, "latest"]),
        ]
        for record in records:
            h = "0x" + record.hash.hex()
            calls += [("eth_getTransactionReceipt", [h]), ("eth_getTransactionByHash", [h])]
        results = self.rpc.batch(calls)
        head = quantity(results[0], "block number")
        mined = quantity(results[1], "nonce")
        receipts: list[Receipt | None] = []
        for receipt_json in results[2::2]:
            if receipt_json is None:
                receipts.append(None)
            elif isinstance(receipt_json, dict):
                receipts.append(
                    Receipt(
                        quantity(receipt_json.get("blockNumber"), "receipt block number"),
                        data(receipt_json.get("blockHash"), "receipt block hash", 32),
                        quantity(receipt_json.get("status"), "receipt status") == 1,
                    )
                )
            else:
                raise BadRpcResponse("the node's receipt is neither an object nor null")
        numbers = sorted({r.block_number for r in receipts if r is not None})
        canonical: dict[int, bytes] = {}
        if numbers:
            blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
            for number, block in zip(numbers, blocks, strict=True):
                if isinstance(block, dict):
                    canonical[number] = data(block.get("hash"), "block hash", 32)
        return [
            Observation(
                receipt,
                None if receipt is None else canonical.get(receipt.block_number),
                head,
                known is not None,
                mined,
            )
            for receipt, known in zip(receipts, results[3::2], strict=True)
        ]

    def refresh(self, now_ms: int) -> list[tuple[TxRecord, Decision]]:
        """Re-read every open transaction's state; re-broadcast those the node lost."""
        changes = []
        records = self.store.open_txs(self.config.chain_id)
        observations: list[Observation] = []
        for i in range(0, len(records), REFRESH_CHUNK):
            observations += self.observe(records[i : i + REFRESH_CHUNK])
        for record, observation in zip(records, observations, strict=True):
            decision = decide(record.nonce, observation, self.config.confirmations)
            if decision.rebroadcast:
                try:
                    self.rpc.call("eth_sendRawTransaction", ["0x" + record.raw.hex()])
                except RpcRefused:
                    pass  # e.g. "nonce too low": the next refresh sees it replaced or mined
            self.store.apply(record.hash, decision, now_ms)
            changes.append((record, decision))
        return changes
