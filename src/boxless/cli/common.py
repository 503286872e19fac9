"""Options and prompts shared by the user commands (no command registration here,
so any command module can import it without an import cycle)."""

from __future__ import annotations

import os
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


def _passphrase(new: bool) -> str:
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env
    prompt = "Choose a passphrase for this device's database" if new else "Passphrase"
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=new)
    return value
