"""``boxless app pack|install|list|remove``: mini-app bundles (docs/miniapps.md).

``pack`` signs a bundle directory with this account's identity (the passphrase
is asked, or read from $BOXLESS_PASSPHRASE); the others go through the running
node's API (``boxless up``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

from boxless.cli.api_client import api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, NetworkError, UsageError

miniapp_app = typer.Typer(help="Mini apps: pack, install, list, remove.", no_args_is_help=True)
app.add_typer(miniapp_app, name="app")


@miniapp_app.command("pack")
def pack(
    directory: Annotated[Path, typer.Argument(help="The bundle directory (with manifest.json)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The signed bundle file")],
    home: HomeOption = USER_HOME,
) -> None:
    """Sign DIRECTORY with this account's identity key into a bundle file."""
    from boxless.identity.account import open_account
    from boxless.miniapps import pack_dir, verify_bundle

    try:
        if not (directory / "manifest.json").is_file():
            raise UsageError(f"{directory} has no manifest.json")
        with open_account(home, ask_passphrase(new=False)) as account:
            data = pack_dir(directory, account.identity)
        bundle = verify_bundle(data)
        output.write_bytes(data)
        m = bundle.manifest
        out.print(
            f"packed {markup(m.id)} {markup(m.version)}: {len(bundle.files)} files, "
            f"{len(data)} bytes, sha256 {bundle.archive_sha256.hex()[:16]}… -> {output}"
        )
    except OSError as exc:
        fail(UsageError(f"cannot read or write the bundle: {exc}"))
    except BoxlessError as exc:
        fail(exc)


@miniapp_app.command("install")
def install(
    bundle: Annotated[Path, typer.Argument(help="A bundle file made by `boxless app pack`")],
    home: HomeOption = USER_HOME,
) -> None:
    """Verify and install (or update) a mini app from a bundle file."""
    try:
        data = bundle.read_bytes()
        api = api_for(home)
        try:
            r = api.http.post(
                "/api/v1/miniapps",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=120,
            )
        except httpx.HTTPError as exc:
            raise NetworkError(f"`boxless up` does not answer at {api.url}: {exc}") from exc
        if r.status_code >= 400:
            raise UsageError(f"not installed: {r.json()['error']['message']}")
        app_json = r.json()
        out.print(f"installed {markup(app_json['id'])} {markup(app_json['version'])}")
    except OSError as exc:
        fail(UsageError(f"cannot read the bundle: {exc}"))
    except BoxlessError as exc:
        fail(exc)


@miniapp_app.command("list")
def list_apps(home: HomeOption = USER_HOME) -> None:
    """The installed mini apps."""
    try:
        apps = api_for(home).call("GET", "/miniapps")["apps"]
        for a in apps:
            out.print(
                f"{markup(a['id'])}  {markup(a['name'])} {markup(a['version'])}"
                f"  permissions: {', '.join(a['permissions']) or '-'}"
            )
        if not apps:
            out.print("no mini apps installed")
    except BoxlessError as exc:
        fail(exc)


@miniapp_app.command("remove")
def remove(
    app_id: Annotated[str, typer.Argument(help="The app's id, e.g. org.example.coffee")],
    home: HomeOption = USER_HOME,
) -> None:
    """Uninstall a mini app and delete its data (storage, permissions)."""
    try:
        api_for(home).call("DELETE", f"/miniapps/{app_id}")
        out.print(f"removed {markup(app_id)} and its data")
    except BoxlessError as exc:
        fail(exc)
