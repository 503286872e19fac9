"""``boxless wallet ...``: the account's Ethereum wallet, and ``boxless devnet-chain``.

The wallet key is derived from the account's BIP-39 seed (kept in the encrypted
user database); commands open the database directly, so they work with or
without ``boxless up`` running. The passphrase comes from the prompt or
``$BOXLESS_PASSPHRASE``. Nothing is sent without showing amount, fee and total
and a confirmation (``--yes`` skips the question, for scripts).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from mnemonic import Mnemonic

from boxless.cli.app import app, fail
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase
from boxless.errors import BoxlessError
from boxless.identity.account import LocalAccount, open_account
from boxless.identity.contact_code import qr_terminal
from boxless.identity.keys import Identity
from boxless.identity.seed import validate_phrase
from boxless.payments.amounts import ETH, Asset, format_amount, parse_amount
from boxless.payments.devnet import (
    ANVIL_MNEMONIC,
    DEVNET_CHAIN_ID,
    TOKEN_DECIMALS,
    TOKEN_SYMBOL,
    Anvil,
    deploy_token,
    fund_account,
)
from boxless.payments.errors import BadAmount
from boxless.payments.hdwallet import (
    WALLET_PATH,
    address_bytes,
    checksum_address,
    derive_private_key,
    parse_address,
)
from boxless.payments.rpc import Rpc, quantity
from boxless.payments.store import ChainConfig, PaymentStore
from boxless.payments.uri import payment_uri
from boxless.payments.wallet import Wallet

RECOVERY_PHRASE_ENV = "BOXLESS_RECOVERY_PHRASE"

wallet_app = typer.Typer(help="Your Ethereum wallet (derived from your recovery phrase)")
app.add_typer(wallet_app, name="wallet")


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def _account(home: Path) -> Iterator[LocalAccount]:
    with open_account(home, ask_passphrase(new=False)) as account:
        yield account


@contextmanager
def _wallet(home: Path) -> Iterator[Wallet]:
    with _account(home) as account:
        key = derive_private_key(account.keystore.load_wallet_seed())
        store = PaymentStore(account.db)
        wallet = Wallet(store, store.chain(), key)
        try:
            yield wallet
        finally:
            wallet.close()


def _asset(wallet: Wallet, symbol: str) -> Asset:
    asset = wallet.assets().get(symbol.upper())
    if asset is None:
        raise BadAmount(
            f"unknown asset {symbol[:12]!r}; this wallet knows {', '.join(wallet.assets())}"
        )
    return asset


@wallet_app.command("address")
def wallet_address_cmd(home: HomeOption = USER_HOME) -> None:
    """Print the wallet address (the same words show it in any BIP-44 wallet)."""
    try:
        with _account(home) as account:
            key = derive_private_key(account.keystore.load_wallet_seed())
        typer.echo(checksum_address(address_bytes(key)))
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("import")
def wallet_import(home: HomeOption = USER_HOME) -> None:
    """Enter the recovery phrase once, for an account made before the wallet existed."""
    try:
        with _account(home) as account:
            phrase = os.environ.get(RECOVERY_PHRASE_ENV)
            if phrase is None:
                phrase = typer.prompt("Recovery phrase (24 words)", hide_input=True)
            account.keystore.save_wallet_seed(
                Identity.from_phrase(validate_phrase(phrase)), time.time()
            )
            key = derive_private_key(account.keystore.load_wallet_seed())
        typer.echo(f"wallet ready: {checksum_address(address_bytes(key))} ({WALLET_PATH})")
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("escrow")
def wallet_escrow(
    address: Annotated[str, typer.Argument(help="The escrow contract (Escrow.vy), 0x…")],
    home: HomeOption = USER_HOME,
) -> None:
    """Set the escrow contract mini apps' pay() uses on the wallet's chain."""
    from boxless.client.miniapp_pay import set_escrow_address
    from boxless.storage.userdb import migration_files

    try:
        contract = parse_address(address)
        with _account(home) as account:
            account.db.migrate("miniapps", migration_files("boxless.client", "migrations_miniapps"))
            chain_id = PaymentStore(account.db).chain().chain_id
            set_escrow_address(account.db, chain_id, contract)
        typer.echo(f"mini apps pay into escrow {checksum_address(contract)} on chain {chain_id}")
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("config")
def wallet_config(
    rpc: Annotated[str, typer.Option(help="The chain's JSON-RPC URL")],
    chain_id: Annotated[int, typer.Option(help="The chain id you expect (checked on every call)")],
    token: Annotated[str | None, typer.Option(help="An ERC-20 token contract address")] = None,
    token_symbol: Annotated[str, typer.Option(help="The token's symbol")] = "TOKEN",
    token_decimals: Annotated[int, typer.Option(help="The token's decimals")] = 18,
    confirmations: Annotated[int, typer.Option(min=1, help="Blocks until confirmed")] = 2,
    home: HomeOption = USER_HOME,
) -> None:
    """Set the chain the wallet uses (checked now: a node on another chain is refused)."""
    try:
        client = Rpc(rpc, chain_id)
        try:
            head = quantity(client.call("eth_blockNumber", []), "block number")
        finally:
            client.close()
        token_address = checksum_address(parse_address(token)) if token else None
        config = ChainConfig(
            rpc,
            chain_id,
            token_address,
            token_symbol if token else None,
            token_decimals if token else None,
            confirmations,
        )
        with _account(home) as account:
            PaymentStore(account.db).set_chain(config)
        typer.echo(f"wallet uses chain {chain_id} at {rpc} (head block {head})")
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("balance")
def wallet_balance(home: HomeOption = USER_HOME) -> None:
    """Balances of ETH and the configured token."""
    try:
        with _wallet(home) as wallet:
            for asset in wallet.assets().values():
                amount = format_amount(wallet.balance(asset), asset.decimals)
                typer.echo(f"{amount} {asset.symbol}")
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("send")
def wallet_send(
    to: Annotated[str, typer.Argument(help="Recipient address (0x...)")],
    amount: Annotated[str, typer.Argument(help="Amount, like 0.1")],
    symbol: Annotated[str, typer.Argument(help="ETH or the configured token")] = "ETH",
    note: Annotated[str, typer.Option(help="A note kept in your history")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Send ETH or the token: shows amount, fee and total, then asks to confirm."""
    try:
        with _wallet(home) as wallet:
            wallet.refresh(_now_ms())
            asset = _asset(wallet, symbol)
            quote = wallet.quote(parse_address(to), parse_amount(amount, asset.decimals), asset)
            for line in quote.describe():
                typer.echo(line)
            if not yes and not typer.confirm("Send?", default=False):
                typer.echo("nothing was sent")
                raise typer.Exit(1)
            record = wallet.send(quote, _now_ms(), note)
        typer.echo(f"sent: 0x{record.hash.hex()} (nonce {record.nonce}); "
                   "`boxless wallet history` follows it")  # fmt: skip
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("history")
def wallet_history(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    home: HomeOption = USER_HOME,
) -> None:
    """Your sent transactions, refreshed from the chain (pending ones re-broadcast)."""
    try:
        with _wallet(home) as wallet:
            wallet.refresh(_now_ms())
            decimals = {a.symbol: a.decimals for a in wallet.assets().values()}
            for tx in wallet.store.history(wallet.config.chain_id, limit):
                when = datetime.fromtimestamp(tx.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
                amount = format_amount(tx.amount, decimals.get(tx.symbol, ETH.decimals))
                confs = f" ({tx.confirmations} conf.)" if tx.confirmations else ""
                typer.echo(
                    f"{when}  {tx.state:<9}{confs}  {amount} {tx.symbol} → "
                    f"{checksum_address(tx.recipient)}  0x{tx.hash.hex()}"
                    + (f"  {tx.note}" if tx.note else "")
                )
    except BoxlessError as exc:
        fail(exc)


@wallet_app.command("receive")
def wallet_receive(
    amount: Annotated[str | None, typer.Argument(help="Amount to request")] = None,
    symbol: Annotated[str, typer.Argument(help="ETH or the configured token")] = "ETH",
    home: HomeOption = USER_HOME,
) -> None:
    """A payment request: the EIP-681 URI and its QR code."""
    try:
        with _wallet(home) as wallet:
            asset = _asset(wallet, symbol)
            value = None if amount is None else parse_amount(amount, asset.decimals)
            uri = payment_uri(wallet.address, wallet.config.chain_id, value, asset)
        typer.echo(uri)
        typer.echo(qr_terminal(uri))
    except BoxlessError as exc:
        fail(exc)


@app.command("devnet-chain")
def devnet_chain(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8545,
    fund: Annotated[
        list[str] | None,
        typer.Option(help="An address to give 100 ETH and 1000 BXD (repeatable)"),
    ] = None,
) -> None:
    """Run a local test chain (anvil) with the BXD test token until Ctrl-C."""
    try:
        with Anvil(port=port) as chain:
            rpc = Rpc(chain.url, DEVNET_CHAIN_ID)
            key = derive_private_key(Mnemonic.to_seed(ANVIL_MNEMONIC, ""))
            token = deploy_token(rpc, key, 10**6 * 10**TOKEN_DECIMALS)
            for text in fund or []:
                fund_account(rpc, key, token, parse_address(text), 100 * 10**18, 1000 * 10**6)
                typer.echo(f"funded {checksum_address(parse_address(text))}")
            rpc.close()
            typer.echo(f"chain {DEVNET_CHAIN_ID} at {chain.url}, test token {token} (Ctrl-C stops)")
            typer.echo(
                f"boxless wallet config --rpc {chain.url} --chain-id {DEVNET_CHAIN_ID} "
                f"--token {token} --token-symbol {TOKEN_SYMBOL} --token-decimals {TOKEN_DECIMALS}"
            )
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)
            signal.sigwait(stop)
    except BoxlessError as exc:
        fail(exc)
