"""``boxless stealth ...``: private receiving with ERC-5564 stealth addresses.

Keys come from the account's recovery phrase (docs/redenvelopes.md), so the
commands open the encrypted user database directly (with or without ``boxless
up``); the chain is the wallet's (``boxless wallet config``). The registry
(ERC-6538) and announcer (ERC-5564) contract addresses are options: on a real
network, the ERCs' deployments; on the devnet, ``boxless stealth deploy``.
Nothing is paid without showing it and asking (``--yes`` for scripts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from boxless.cli.app import app, fail
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase
from boxless.errors import BoxlessError
from boxless.identity.account import open_account
from boxless.payments.amounts import format_amount, parse_amount
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import checksum_address, derive_private_key, parse_address
from boxless.payments.rpc import Rpc
from boxless.payments.stealth import MetaAddress, Scanner, StealthKeys
from boxless.payments.stealth_chain import Announcer, Registry, spend
from boxless.payments.store import PaymentStore

stealth_app = typer.Typer(help="Private receiving: stealth addresses (ERC-5564, ERC-6538)")
app.add_typer(stealth_app, name="stealth")

Contract = Annotated[str, typer.Option(help="Contract address (0x...)")]


@contextmanager
def _keys(home: Path) -> Iterator[tuple[StealthKeys, Signer]]:
    with open_account(home, ask_passphrase(new=False)) as account:
        seed = account.keystore.load_wallet_seed()
        config = PaymentStore(account.db).chain()
    rpc = Rpc(config.rpc_url, config.chain_id)
    try:
        yield StealthKeys.from_seed(seed), Signer(rpc, derive_private_key(seed))
    finally:
        rpc.close()


@stealth_app.command("address")
def stealth_address(home: HomeOption = USER_HOME) -> None:
    """Print your stealth meta-address (st:eth:0x…): payers derive fresh addresses from it."""
    try:
        with open_account(home, ask_passphrase(new=False)) as account:
            keys = StealthKeys.from_seed(account.keystore.load_wallet_seed())
        typer.echo(keys.meta.uri())
    except BoxlessError as exc:
        fail(exc)


@stealth_app.command("deploy")
def stealth_deploy(home: HomeOption = USER_HOME) -> None:
    """Deploy a registry and an announcer from your wallet (a devnet has none)."""
    try:
        with _keys(home) as (_, signer):
            registry, announcer = Registry.deploy(signer), Announcer.deploy(signer)
        typer.echo(f"registry  {checksum_address(registry.address)}")
        typer.echo(f"announcer {checksum_address(announcer.address)}")
    except BoxlessError as exc:
        fail(exc)


@stealth_app.command("register")
def stealth_register(registry: Contract, home: HomeOption = USER_HOME) -> None:
    """Publish your meta-address in the registry, under your wallet address."""
    try:
        with _keys(home) as (keys, signer):
            Registry(signer, parse_address(registry)).register(keys.meta)
            typer.echo(f"registered {keys.meta.uri()} for {signer.hex_address}")
    except BoxlessError as exc:
        fail(exc)


@stealth_app.command("pay")
def stealth_pay(
    to: Annotated[
        str, typer.Argument(help="A meta-address (st:eth:0x…) or a registered 0x address")
    ],
    amount: Annotated[str, typer.Argument(help="ETH, like 0.1")],
    announcer: Contract,
    registry: Annotated[str, typer.Option(help="Registry, to look up a 0x address")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Pay without asking")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Pay ETH to a fresh stealth address of the recipient and announce it (one transaction)."""
    try:
        with _keys(home) as (_, signer):
            if to.startswith("st:"):
                meta = MetaAddress.parse(to)
            else:
                found = Registry(signer, parse_address(registry)).lookup(parse_address(to))
                if found is None:
                    raise BoxlessError(f"{to} has no stealth meta-address in that registry")
                meta = found
            wei = parse_amount(amount, 18)
            typer.echo(
                f"pay {format_amount(wei, 18)} ETH to a fresh stealth address of {meta.uri()[:24]}…"
            )
            if not yes and not typer.confirm("Pay?", default=False):
                typer.echo("nothing was sent")
                raise typer.Exit(1)
            payment = Announcer(signer, parse_address(announcer)).pay(meta, wei)
        typer.echo(f"paid {checksum_address(payment.address)} (view tag {payment.view_tag})")
    except BoxlessError as exc:
        fail(exc)


@stealth_app.command("scan")
def stealth_scan(
    announcer: Contract,
    from_block: Annotated[int, typer.Option(min=0, help="First block to scan")] = 0,
    home: HomeOption = USER_HOME,
) -> None:
    """Find the announcements that pay you, with each stealth address's balance."""
    try:
        with _keys(home) as (keys, signer):
            anns = Announcer(signer, parse_address(announcer)).announcements(from_block)
            mine = Scanner.for_keys(keys).scan(anns)
            for ann in mine:
                balance = format_amount(signer.balance(ann.stealth_address), 18)
                typer.echo(
                    f"{checksum_address(ann.stealth_address)}  {balance} ETH  block {ann.block_number}"
                )
        typer.echo(f"{len(mine)} of {len(anns)} announcements are yours")
    except BoxlessError as exc:
        fail(exc)


@stealth_app.command("sweep")
def stealth_sweep(
    announcer: Contract,
    to: Annotated[str, typer.Option(help="Where to send the funds (0x...)")],
    from_block: Annotated[int, typer.Option(min=0)] = 0,
    yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Move everything your stealth addresses hold to ``--to`` (each pays its own gas)."""
    try:
        with _keys(home) as (keys, signer):
            anns = Announcer(signer, parse_address(announcer)).announcements(from_block)
            mine = [
                a for a in Scanner.for_keys(keys).scan(anns) if signer.balance(a.stealth_address)
            ]
            typer.echo(f"{len(mine)} stealth addresses hold ETH; sweep them to {to}?")
            if not yes and not typer.confirm("Sweep?", default=False):
                typer.echo("nothing was sent")
                raise typer.Exit(1)
            for ann in mine:
                tx, amount = spend(signer.rpc, keys, ann, parse_address(to))
                typer.echo(
                    f"{format_amount(amount, 18)} ETH from {checksum_address(ann.stealth_address)}: 0x{tx.hex()}"
                )
    except BoxlessError as exc:
        fail(exc)
