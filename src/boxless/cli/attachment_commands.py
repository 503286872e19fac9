"""Attachments from the command line, and the blob service of `boxless up`.

- :func:`start_blobs`: `boxless up` runs a blob service (Bitswap + a block store
  in ``HOME/blobs``) on its node's host and gives the client's attachments
  feature a transfer that pins on the service peers.
- :func:`send_file`: ``boxless send NAME --file PATH [CAPTION]`` streams the file to
  the local API (which encrypts it as it arrives) with a rich progress bar on
  stderr, then waits while the service nodes pin it.
- :func:`send_files`: ``--file A --file B ...`` sends them in one message (an album
  of up to 9 photos/videos) as one streamed ``multipart/form-data`` body.
"""

from __future__ import annotations

import mimetypes
import secrets
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

__all__ = ["send_file", "send_files", "start_blobs"]

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


def _check_file(path: Path) -> tuple[int, str]:
    """The size and MIME type of a file to send; raises UsageError saying what is wrong."""
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
    return size, mime.lower()


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _answer(r: httpx.Response) -> dict[str, Any]:
    if r.status_code >= 400:
        raise UsageError(r.json()["error"]["message"])
    result: dict[str, Any] = r.json()
    return result


def send_files(
    api: Api, key: str, paths: Sequence[Path], caption: str = "", *, original: bool = False
) -> dict[str, Any]:
    """Send ``paths`` to contact ``key`` in one message (one file: :func:`send_file`)."""
    if len(paths) == 1:
        return send_file(api, key, paths[0], caption, original=original)
    if len(paths) > 9:
        raise UsageError("one message carries at most 9 files: send the rest in another")
    described = [(p, *_check_file(p)) for p in paths]
    boundary = "boxless-" + secrets.token_hex(12)

    def field(name: str, value: str) -> bytes:
        return (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()

    def file_head(path: Path, mime: str) -> bytes:
        name = path.name.replace("\\", "_").replace('"', "_").replace("\r", "").replace("\n", "")
        return (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
            f"\r\nContent-Type: {mime}\r\n\r\n"
        ).encode()

    head = field("caption", caption) + field("original", "1" if original else "0")
    tail = f"--{boundary}--\r\n".encode()
    total = sum(size for _, size, _ in described)
    length = len(head) + len(tail)
    length += sum(len(file_head(p, mime)) + size + 2 for p, size, mime in described)

    with _bar() as bar:
        task = bar.add_task(f"sending {len(paths)} files", total=total)

        def body() -> Iterator[bytes]:
            yield head
            for path, _size, mime in described:
                bar.update(task, description=f"sending {path.name}")
                yield file_head(path, mime)
                with path.open("rb") as f:
                    while chunk := f.read(READ_SIZE):
                        bar.advance(task, len(chunk))
                        yield chunk
                yield b"\r\n"
            bar.update(task, description="pinning on service nodes")
            yield tail

        try:
            r = api.http.post(
                f"/api/v1/contacts/{key}/attachments",
                content=body(),
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(length),
                },
                timeout=httpx.Timeout(30, read=900),
            )
        except httpx.HTTPError as exc:
            raise NetworkError(f"`boxless up` does not answer at {api.url}: {exc}") from exc
    return _answer(r)


def send_file(
    api: Api, key: str, path: Path, caption: str = "", *, original: bool = False
) -> dict[str, Any]:
    """Upload ``path`` to contact ``key`` through the local API; the API's answer."""
    size, mime = _check_file(path)
    params = {
        "name": path.name,
        "mime": mime,
        "caption": caption,
        "original": "1" if original else "0",
    }
    with _bar() as bar:
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
    return _answer(r)
