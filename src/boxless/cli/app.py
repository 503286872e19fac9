"""The typer app objects and the helpers every command module shares.

Command modules import from here (never from :mod:`boxless.cli.main`), and
``main`` imports the command modules to register their commands: the import
graph runs one way only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import trio
import typer
from rich.console import Console

from boxless.cli.safe import markup
from boxless.errors import BoxlessError

T = TypeVar("T")

app = typer.Typer(
    help="Boxless: a self-sovereign, end-to-end encrypted, peer-to-peer messenger on Waku v2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# emoji=False: ":name:" in a contact's name or text must print as typed, not as an emoji.
console = Console(stderr=True, emoji=False)
out = Console(highlight=False, soft_wrap=True, emoji=False)


def setup_logging(level: str, json_logs: bool) -> None:
    """Structured logging to stderr: key=value text, or one JSON object a line."""
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        from boxless.cli.logfmt import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # py-libp2p logs routine peer churn (a peer lacking a protocol, a reset
    # stream) at WARNING/ERROR, several lines each; show it only when debugging.
    logging.getLogger("libp2p").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL
    )


def fail(exc: BoxlessError) -> NoReturn:
    """Print ``exc`` as the one-line error (it may quote a peer's words) and exit 2."""
    console.print(f"[red]error:[/red] {markup(str(exc))}")
    raise typer.Exit(2)


def run_trio(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``trio.run``, turning a nursery's group of one BoxlessError back into that error."""
    try:
        return trio.run(fn, *args)
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        for leaf in leaves:
            if isinstance(leaf, BoxlessError):
                raise leaf from None
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            raise KeyboardInterrupt from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found
