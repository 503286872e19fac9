"""Attachments from the command line, and the blob service of `boxless up`.

- :func:`start_blobs`: `boxless up` runs a blob service (Bitswap + a block store
  in ``HOME/blobs``) on its node's host and gives the client's attachments
  feature a transfer that pins on the service peers.
- :func:`send_file`: ``boxless send NAME --file PATH [CAPTION]`` streams the file to
  the local API (which encrypts it as it arrives) with a rich progress bar on
  stderr, then waits while the service nodes pin it.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import trio
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from boxless.cli.api_client import Api
from boxless.cli.app import console
from boxless.errors import NetworkError, UsageError

if TYPE_CHECKING:
    from boxless.client.core import Client

__all__ = ["send_file", "start_blobs"]

READ_SIZE = 1024 * 1024
MAX_FILE = 2 * 1024**3
PHOTO_SUFFIXES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}


async def start_blobs(
    nursery: trio.Nursery, client: Client, host: Any, home: Path, peers: Sequence[str]
) -> None:
    """Run a blob service on ``host`` in ``nursery``; attachments then pin on ``peers``."""
    from boxless.blobs import BlobService
    from boxless.client.attachment_transfer import AttachmentTransfer

    service = BlobService(host, home / "blobs")
    await nursery.start(service.run)
    client.attachments.use_transfer(AttachmentTransfer(service.client, list(peers)))


def _chunks(path: Path, bar: Progress, task: Any) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(READ_SIZE):
            bar.advance(task, len(chunk))
            yield chunk
    bar.update(task, description="pinning on service nodes")


def send_file(
    api: Api, key: str, path: Path, caption: str = "", *, original: bool = False
) -> dict[str, Any]:
    """Upload ``path`` to contact ``key`` through the local API; the API's answer."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if size > MAX_FILE:
        raise UsageError(f"{path.name} is over 2 GiB: split it or share it another way")
    mime = (
        PHOTO_SUFFIXES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )
    params = {
        "name": path.name,
        "mime": mime.lower(),
        "caption": caption,
        "original": "1" if original else "0",
    }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"sending {path.name}", total=size)
        try:
            r = api.http.post(
                f"/api/v1/contacts/{key}/attachments",
                params=params,
                content=_chunks(path, bar, task),
                headers={"Content-Length": str(size)},
                timeout=httpx.Timeout(30, read=900),
            )
        except httpx.HTTPError as exc:
            raise NetworkError(f"`boxless up` does not answer at {api.url}: {exc}") from exc
    if r.status_code >= 400:
        raise UsageError(r.json()["error"]["message"])
    result: dict[str, Any] = r.json()
    return result
