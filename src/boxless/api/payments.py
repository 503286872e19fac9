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
- ``GET /api/v1/wallet/qr.png?amount=&symbol=`` -> the EIP-681 receive URI as a QR code.

Payments in chat (a chat is ``contact:<key hex>`` or ``group:<gid hex>``):

- ``GET /api/v1/payments/cards?chat=`` -> ``{cards: [...]}`` (client/payments.py
  ``card_json``: transfers with their chain status, requests with who paid).
- ``POST /api/v1/payments/quote {chat, amount?, symbol?, request?}`` -> the quote
  (as the wallet's, plus ``request``); paying a request takes its amount and asset.
  A contact whose address is unknown: 409 ``address_unknown`` (it was asked for).
- ``POST /api/v1/payments/transfer {chat, amount?, symbol?, request?, note,
  max_fee_cap}`` -> 201 ``{message_id, tx}``: sent, and its card posted.
- ``POST /api/v1/payments/request {chat, amount, symbol, note}`` -> 201
  ``{message_id}``: a money request (1:1), or a bill split among the group.

The chain calls block, so they run in a worker thread; the SQL is in
:mod:`boxless.payments.store`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.api.web import qr_png
from boxless.chat.payment import TransferCard
from boxless.client.core import Client
from boxless.client.payments import FeesRose, Target
from boxless.errors import UsageError
from boxless.payments.amounts import ETH, Asset, format_amount, parse_amount
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
from boxless.payments.uri import payment_uri
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


CHAT = r"^(contact|group):[0-9a-f]{64}$"


class ChatQuoteBody(BaseModel):
    chat: str = Field(pattern=CHAT)
    amount: str | None = Field(default=None, pattern=AMOUNT)
    symbol: str = Field(default="ETH", min_length=1, max_length=11)
    request: str | None = Field(default=None, pattern=r"^[0-9a-zA-Z:_-]{1,128}$")


class ChatTransferBody(ChatQuoteBody):
    note: str = Field(default="", max_length=200)
    max_fee_cap: str = Field(pattern=r"^[0-9]{1,78}$")


class ChatRequestBody(BaseModel):
    chat: str = Field(pattern=CHAT)
    amount: str = Field(pattern=AMOUNT)
    symbol: str = Field(default="ETH", min_length=1, max_length=11)
    note: str = Field(default="", max_length=200)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/wallet/chain"): ChainBody,
    ("POST", "/api/v1/wallet/quote"): QuoteBody,
    ("POST", "/api/v1/wallet/send"): SendBody,
    ("POST", "/api/v1/wallet/verify"): VerifyBody,
    ("POST", "/api/v1/payments/quote"): ChatQuoteBody,
    ("POST", "/api/v1/payments/transfer"): ChatTransferBody,
    ("POST", "/api/v1/payments/request"): ChatRequestBody,
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
    payments = client.payments

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
            uri = payment_uri(address_bytes(key()), config.chain_id, None, ETH)
            return {
                "address": address,
                "path": WALLET_PATH,
                "chain": chain,
                "balances": balances,
                "uri": uri,
            }

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

    def _chat_amount(body: ChatQuoteBody) -> tuple[Target, int, Asset]:
        """(blocking) where the payment goes, how much, of what."""
        target = payments.target(body.chat, body.request)
        if target.amount is not None and target.asset is not None:
            return target, target.amount, target.asset
        asset = payments.asset(body.symbol)
        if body.amount is None:
            raise ApiError(422, "invalid_body", "say how much to send")
        amount = parse_amount(body.amount, asset.decimals)
        if amount == 0:
            raise ApiError(422, "invalid_body", "the amount must be more than zero")
        return target, amount, asset

    async def _ask_if_unknown(chat: str) -> None:
        contact = bytes.fromhex(chat[8:]) if chat.startswith("contact:") else None
        if contact is not None and payments.address_of(contact) is None:
            payments.store.chain()  # no wallet: say so, not "address unknown"
            client.conversations.accepted(contact)
            await payments.ask_address(contact)
            raise ApiError(
                409,
                "address_unknown",
                "their wallet address was asked for; try again in a moment "
                "(their Boxless must be online and have a wallet set up)",
            )

    async def chat_cards(request: Request) -> Response:
        """A chat's payment cards with their chain status."""
        chat = request.query_params.get("chat", "")
        if not re.fullmatch(CHAT, chat):
            raise ApiError(422, "invalid_query", "chat is contact:<key> or group:<id>")
        return JSONResponse({"cards": payments.cards(chat)})

    async def chat_quote(request: Request) -> Response:
        """What a payment from a chat costs, before the user confirms it."""
        body: ChatQuoteBody = await parse_body(request, ChatQuoteBody)
        if body.request is None:
            await _ask_if_unknown(body.chat)

        def run() -> dict[str, Any]:
            target, amount, asset = _chat_amount(body)
            out = _quote_json(payments.quote(target, amount, asset))
            out["request"] = body.request
            return out

        return JSONResponse(await trio.to_thread.run_sync(run))

    async def chat_transfer(request: Request) -> Response:
        """Send a confirmed payment from a chat and post its card there."""
        body: ChatTransferBody = await parse_body(request, ChatTransferBody)
        if body.request is None:
            await _ask_if_unknown(body.chat)
        now = now_ms()

        def run() -> TransferCard:
            target, amount, asset = _chat_amount(body)
            try:
                return payments.send_quoted(
                    target, amount, asset, int(body.max_fee_cap), body.note, now
                )[1]
            except FeesRose as exc:
                raise ApiError(409, "fees_rose", str(exc)) from None

        card = await trio.to_thread.run_sync(run)
        message_id = await payments.post(body.chat, card)
        tx = "0x" + card.claim.tx_hash.hex()
        return JSONResponse({"message_id": message_id, "tx": tx}, status_code=201)

    async def chat_request(request: Request) -> Response:
        """Ask a contact for money, or split a bill in a group."""
        body: ChatRequestBody = await parse_body(request, ChatRequestBody)
        asset = await trio.to_thread.run_sync(payments.asset, body.symbol)
        amount = parse_amount(body.amount, asset.decimals)
        if amount == 0:
            raise ApiError(422, "invalid_body", "the amount must be more than zero")
        message_id = await payments.request(body.chat, amount, asset, body.note)
        return JSONResponse({"message_id": message_id}, status_code=201)

    async def receive_qr(request: Request) -> Response:
        """The EIP-681 URI to pay this wallet, as a QR code (PNG)."""
        config = store.chain()
        symbol = request.query_params.get("symbol", "ETH").upper()
        assets = {"ETH": ETH}
        if config.token and config.token_symbol and config.token_decimals is not None:
            assets[config.token_symbol.upper()] = Asset(
                config.token_symbol, config.token_decimals, config.token
            )
        asset = assets.get(symbol)
        if asset is None:
            raise ApiError(422, "unknown_asset", f"this wallet knows {', '.join(assets)}")
        text = request.query_params.get("amount")
        amount = None if not text else parse_amount(text, asset.decimals)
        uri = payment_uri(address_bytes(key()), config.chain_id, amount, asset)
        png = await trio.to_thread.run_sync(qr_png, uri)
        return Response(png, media_type="image/png", headers={"X-Payment-URI": uri})

    return [
        Route("/api/v1/wallet", overview, methods=["GET"]),
        Route("/api/v1/wallet/qr.png", receive_qr, methods=["GET"]),
        Route("/api/v1/payments/cards", chat_cards, methods=["GET"]),
        Route("/api/v1/payments/quote", chat_quote, methods=["POST"]),
        Route("/api/v1/payments/transfer", chat_transfer, methods=["POST"]),
        Route("/api/v1/payments/request", chat_request, methods=["POST"]),
        Route("/api/v1/wallet/chain", set_chain, methods=["PUT"]),
        Route("/api/v1/wallet/quote", quote, methods=["POST"]),
        Route("/api/v1/wallet/send", send, methods=["POST"]),
        Route("/api/v1/wallet/history", history, methods=["GET"]),
        Route("/api/v1/wallet/verify", verify_card, methods=["POST"]),
    ]
