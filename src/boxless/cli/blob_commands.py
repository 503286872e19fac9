"""``boxless blob add|get``: debug commands for the blob service (like publish/query).

Each runs a short-lived libp2p host with its own block store (``--data-dir``,
default ``~/.boxless/blob-cli``), dials ``--peer`` (a node started with
``boxless node --blobs``), and either puts a file and asks the peer to pin it
(the peer fetches it from us over Bitswap), or streams a file from the peer to
``-o``. Both show a rich progress bar on stderr; the CID goes to stdout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import trio
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from boxless.blobs.cid import Cid
from boxless.cli.app import app, console, fail, run_trio, setup_logging
from boxless.cli.common import DEFAULT_HOME
from boxless.errors import BoxlessError, NetworkError, UsageError

if TYPE_CHECKING:
    from libp2p.peer.id import ID

    from boxless.blobs.service import BlobService

blob_app = typer.Typer(help="Put files on and get files from a blob service node (Bitswap).")
app.add_typer(blob_app, name="blob")

READ_SIZE = 1024 * 1024


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await trio.open_file(path, "rb") as f:
        while chunk := await f.read(READ_SIZE):
            yield chunk


async def _session(data_dir: Path, addr: str, job: str, path: Path, cid: Cid | None) -> str:
    # py-libp2p loads here, not at import: every `boxless` command imports this module.
    import multiaddr
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from boxless.blobs.service import BlobService
    from boxless.node.host import build_host, parse_multiaddrs
    from boxless.node.libp2p_shims import DIAL_ERRORS

    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except (ValueError, multiaddr.exceptions.Error) as exc:
        raise UsageError(f"--peer must be a multiaddr ending in /p2p/<id>: {addr!r}") from exc
    listen = parse_multiaddrs(["/ip4/0.0.0.0/tcp/0"])
    host = build_host(create_new_key_pair(), listen)
    async with host.run(listen), trio.open_nursery() as nursery:
        service = BlobService(host, data_dir)
        await nursery.start(service.run)
        with trio.move_on_after(15) as scope:
            try:
                await host.connect(info)
            except DIAL_ERRORS as exc:
                raise NetworkError(f"cannot reach {addr}: {exc}") from exc
        if scope.cancelled_caught:
            raise NetworkError(f"cannot reach {addr} within 15 s")
        try:
            if job == "add":
                return await _add(service, info.peer_id, path)
            assert cid is not None
            return await _get(service, info.peer_id, cid, path)
        finally:
            nursery.cancel_scope.cancel()


async def _add(service: BlobService, peer: ID, path: Path) -> str:
    size = (await trio.Path(path).stat()).st_size
    with _bar() as bar:
        task = bar.add_task(f"adding {path.name}", total=size)
        put = await service.client.put(
            _file_chunks(path), progress=lambda done, _t: bar.update(task, completed=done)
        )
        bar.update(task, description="pinning at the peer", completed=0, total=put.stored)
        sent0 = service.bitswap.stats.served_bytes

        async def watch() -> None:
            while True:
                bar.update(task, completed=service.bitswap.stats.served_bytes - sent0)
                await trio.sleep(0.2)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            result = await service.client.pin(put.root, [peer])
            nursery.cancel_scope.cancel()
        bar.update(task, completed=put.stored)
    if not result.pinned_by:
        raise NetworkError(
            f"{put.root} is stored here but the peer did not pin it: "
            f"{result.errors.get(peer, 'no answer')}"
        )
    return str(put.root)


async def _get(service: BlobService, peer: ID, cid: Cid, out: Path) -> str:
    tmp = out.with_name(out.name + ".part")
    with _bar() as bar:
        task = bar.add_task(f"getting {cid}", total=None)
        async with await trio.open_file(tmp, "wb") as f:
            async for data in service.client.get(
                cid, [peer], progress=lambda d, t: bar.update(task, completed=d, total=t)
            ):
                await f.write(data)
    tmp.replace(out)
    return str(out)


@blob_app.command("add")
def add(
    file: Annotated[Path, typer.Argument(help="The file to put", exists=True, dir_okay=False)],
    peer: Annotated[str, typer.Option(help="Blob service node's multiaddr with /p2p/<id>")],
    data_dir: Annotated[Path, typer.Option(help="Local block store")] = DEFAULT_HOME / "blob-cli",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "WARNING",
) -> None:
    """Chunk FILE into a UnixFS DAG, have --peer pin it, print its CID."""
    setup_logging(log_level, False)
    try:
        print(run_trio(_session, data_dir, peer, "add", file, None), flush=True)
    except BoxlessError as exc:
        fail(exc)


@blob_app.command("get")
def get(
    cid: Annotated[str, typer.Argument(help="The file's CID (bafy…, bafk… or Qm…)")],
    peer: Annotated[str, typer.Option(help="A node holding it: multiaddr with /p2p/<id>")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the file")],
    data_dir: Annotated[Path, typer.Option(help="Local block store")] = DEFAULT_HOME / "blob-cli",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "WARNING",
) -> None:
    """Stream the file CID from --peer into -o, verifying every block."""
    setup_logging(log_level, False)
    try:
        parsed = Cid.parse(cid)
        print(run_trio(_session, data_dir, peer, "get", output, parsed), flush=True)
    except BoxlessError as exc:
        fail(exc)
