"""Options and prompts shared by the user commands (no command registration here,
so any command module can import it without an import cycle)."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_HOME = Path(os.environ.get("BOXLESS_HOME", Path.home() / ".boxless"))
PASSPHRASE_ENV = "BOXLESS_PASSPHRASE"
USER_HOME = DEFAULT_HOME / "user"

HomeOption = Annotated[
    Path,
    typer.Option(
        help="Account directory (default: $BOXLESS_HOME/user, or ~/.boxless/user)",
        file_okay=False,
    ),
]


def ask_passphrase(new: bool) -> str:
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env
    prompt = "Choose a passphrase for this device's database" if new else "Passphrase"
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=new)
    return value


def private_dir(path: Path) -> bool:
    """Make ``path`` (and any missing parents) a directory only this user can open
    (0700). An existing one readable by others is tightened; True when that
    happened, so the caller can say so (its files were exposed until now)."""
    for parent in reversed(path.parents):
        if not parent.exists() and parent != parent.parent:
            parent.mkdir(mode=0o700, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(mode & 0o700)
        return True
    return False


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP, IPv6 in brackets or not) is this machine only."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
