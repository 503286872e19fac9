"""The wallet over the local API: /api/v1/wallet...

- ``GET /api/v1/wallet`` -> ``{address, path, chain: {rpc_url, chain_id, token,
  token_symbol, token_decimals, confirmations} | null, balances: [{symbol, amount,
  decimals, display}]}`` (amounts are decimal strings of base units: never floats).
- ``PUT /api/v1/wallet/chain {rpc_url, chain_id, token?, token_symbol?,
  token_decimals?, confirmations?}`` -> the chain, after checking the node's chain id.
- ``POST /api/v1/wallet/quote {to, amount, symbol}`` -> ``{to, amount, symbol,
  fee_cap, total, lines}``: what the UI shows before the user confirms.
- ``POST /api/v1/wallet/send {to, amount, symbol, note, max_fee_cap}`` -> 201 the
  transaction; re-quoted, and refused (409 ``fees_rose``) if the fee cap is now
  above the one the user confirmed.
- ``GET /api/v1/wallet/history?limit=`` -> ``{transactions: [...]}`` (refreshed
  from the chain first; pending ones re-broadcast).
- ``POST /api/v1/wallet/verify {card}`` -> ``{status, reason}`` for a transfer card.

The chain calls block, so they run in a worker thread; the SQL is in
:mod:`boxless.payments.store`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.core import Client
from boxless.errors import UsageError
from boxless.payments.amounts import format_amount, parse_amount
from boxless.payments.hdwallet import (
    WALLET_PATH,
    address_bytes,
    checksum_address,
    derive_private_key,
    parse_address,
)
from boxless.payments.rpc import Rpc, quantity
from boxless.payments.store import ChainConfig, PaymentStore, TxRecord
from boxless.payments.transfer import decode_claim, fetch_facts, verify
from boxless.payments.wallet import Quote, Wallet

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
AMOUNT = r"^[0-9]{1,78}(\.[0-9]{1,78})?$"


class ChainBody(BaseModel):
    rpc_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    chain_id: int = Field(gt=0, lt=2**63)
    token: str | None = Field(default=None, pattern=ADDRESS)
    token_symbol: str = Field(default="TOKEN", min_length=1, max_length=11)
    token_decimals: int = Field(default=18, ge=0, le=36)
    confirmations: int = Field(default=2, ge=1, le=1000)


class QuoteBody(BaseModel):
    to: str = Field(pattern=ADDRESS)
    amount: str = Field(pattern=AMOUNT)
    symbol: str = Field(default="ETH", min_length=1, max_length=11)


class SendBody(QuoteBody):
    note: str = Field(default="", max_length=200)
    max_fee_cap: str = Field(pattern=r"^[0-9]{1,78}$")


class VerifyBody(BaseModel):
    card: dict[str, Any]


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/wallet/chain"): ChainBody,
    ("POST", "/api/v1/wallet/quote"): QuoteBody,
    ("POST", "/api/v1/wallet/send"): SendBody,
    ("POST", "/api/v1/wallet/verify"): VerifyBody,
}


def _chain_json(c: ChainConfig) -> dict[str, Any]:
    return {
        "rpc_url": c.rpc_url,
        "chain_id": c.chain_id,
        "token": c.token,
        "token_symbol": c.token_symbol,
        "token_decimals": c.token_decimals,
        "confirmations": c.confirmations,
    }


def _tx_json(tx: TxRecord, decimals: int) -> dict[str, Any]:
    return {
        "hash": "0x" + tx.hash.hex(),
        "nonce": tx.nonce,
        "to": checksum_address(tx.recipient),
        "amount": str(tx.amount),
        "display": f"{format_amount(tx.amount, decimals)} {tx.symbol}",
        "symbol": tx.symbol,
        "token": tx.token,
        "fee_cap": str(tx.max_fee),
        "state": tx.state,
        "block_number": tx.block_number,
        "confirmations": tx.confirmations,
        "note": tx.note,
        "created_ms": tx.created_ms,
    }


def _quote_json(q: Quote) -> dict[str, Any]:
    total = q.amount + q.fee_cap if q.asset.token is None else None
    return {
        "to": checksum_address(q.recipient),
        "amount": str(q.amount),
        "symbol": q.asset.symbol,
        "fee_cap": str(q.fee_cap),
        "total": None if total is None else str(total),
        "lines": q.describe(),
    }


def payment_routes(client: Client) -> list[Route]:
    store = PaymentStore(client.db)

    def key() -> bytes:
        return derive_private_key(client.account.keystore.load_wallet_seed())

    def open_wallet() -> Wallet:
        return Wallet(store, store.chain(), key())

    def now_ms() -> int:
        return int(time.time() * 1000)

    def _quote(wallet: Wallet, body: QuoteBody) -> Quote:
        asset = wallet.assets().get(body.symbol.upper())
        if asset is None:
            raise ApiError(422, "unknown_asset", f"this wallet knows {', '.join(wallet.assets())}")
        amount = parse_amount(body.amount, asset.decimals)
        if amount == 0:
            raise ApiError(422, "invalid_body", "the amount must be more than zero")
        return wallet.quote(parse_address(body.to), amount, asset)

    async def overview(request: Request) -> Response:
        """The wallet's address, chain and balances."""

        def read() -> dict[str, Any]:
            address = checksum_address(address_bytes(key()))
            try:
                config = store.chain()
            except UsageError:
                return {"address": address, "path": WALLET_PATH, "chain": None, "balances": []}
            wallet = Wallet(store, config, key())
            try:
                balances = []
                for asset in wallet.assets().values():
                    amount = wallet.balance(asset)
                    balances.append(
                        {
                            "symbol": asset.symbol,
                            "amount": str(amount),
                            "decimals": asset.decimals,
                            "display": f"{format_amount(amount, asset.decimals)} {asset.symbol}",
                        }
                    )
            finally:
                wallet.close()
            chain = _chain_json(config)
            return {"address": address, "path": WALLET_PATH, "chain": chain, "balances": balances}

        return JSONResponse(await trio.to_thread.run_sync(read))

    async def set_chain(request: Request) -> Response:
        """Choose the chain (its node must serve the given chain id)."""
        body: ChainBody = await parse_body(request, ChainBody)

        def check() -> ChainConfig:
            rpc = Rpc(body.rpc_url, body.chain_id)
            try:
                quantity(rpc.call("eth_blockNumber", []), "block number")
            finally:
                rpc.close()
            token = checksum_address(parse_address(body.token)) if body.token else None
            config = ChainConfig(
                body.rpc_url,
                body.chain_id,
                token,
                body.token_symbol if token else None,
                body.token_decimals if token else None,
                body.confirmations,
            )
            store.set_chain(config)
            return config

        return JSONResponse(_chain_json(await trio.to_thread.run_sync(check)))

    async def quote(request: Request) -> Response:
        """Amount, fee cap and total of a transfer, before the user confirms it."""
        body: QuoteBody = await parse_body(request, QuoteBody)

        def run() -> dict[str, Any]:
            wallet = open_wallet()
            try:
                return _quote_json(_quote(wallet, body))
            finally:
                wallet.close()

        return JSONResponse(await trio.to_thread.run_sync(run))

    async def send(request: Request) -> Response:
        """Send a confirmed transfer (refused if the fee cap rose above the confirmed one)."""
        body: SendBody = await parse_body(request, SendBody)

        def run() -> dict[str, Any]:
            wallet = open_wallet()
            try:
                wallet.refresh(now_ms())
                q = _quote(wallet, body)
                if q.fee_cap > int(body.max_fee_cap):
                    raise ApiError(
                        409,
                        "fees_rose",
                        f"the fee cap is now {q.fee_cap} wei, above the {body.max_fee_cap} you "
                        "confirmed; nothing was sent. Quote again",
                    )
                record = wallet.send(q, now_ms(), body.note)
                return _tx_json(record, q.asset.decimals)
            finally:
                wallet.close()

        return JSONResponse(await trio.to_thread.run_sync(run), status_code=201)

    async def history(request: Request) -> Response:
        """Sent transactions, refreshed from the chain."""
        try:
            limit = min(max(int(request.query_params.get("limit", "50")), 1), 500)
        except ValueError:
            raise ApiError(422, "invalid_query", "limit must be a number") from None

        def run() -> dict[str, Any]:
            wallet = open_wallet()
            try:
                wallet.refresh(now_ms())
                decimals = {a.symbol: a.decimals for a in wallet.assets().values()}
                txs = store.history(wallet.config.chain_id, limit)
                return {"transactions": [_tx_json(t, decimals.get(t.symbol, 18)) for t in txs]}
            finally:
                wallet.close()

        return JSONResponse(await trio.to_thread.run_sync(run))

    async def verify_card(request: Request) -> Response:
        """Whether the chain confirms a transfer card: received, pending, forged or failed."""
        body: VerifyBody = await parse_body(request, VerifyBody)
        claim = decode_claim(json.dumps(body.card).encode())

        def run() -> dict[str, Any]:
            config = store.chain()
            rpc = Rpc(config.rpc_url, config.chain_id)
            try:
                verdict = verify(claim, fetch_facts(rpc, claim.tx_hash), config.confirmations)
            finally:
                rpc.close()
            return {"status": verdict.status, "reason": verdict.reason}

        return JSONResponse(await trio.to_thread.run_sync(run))

    return [
        Route("/api/v1/wallet", overview, methods=["GET"]),
        Route("/api/v1/wallet/chain", set_chain, methods=["PUT"]),
        Route("/api/v1/wallet/quote", quote, methods=["POST"]),
        Route("/api/v1/wallet/send", send, methods=["POST"]),
        Route("/api/v1/wallet/history", history, methods=["GET"]),
        Route("/api/v1/wallet/verify", verify_card, methods=["POST"]),
    ]
