"""Backups from the web UI: /api/v1/backup (docs/devices.md, "Backup and restore").

- ``POST /api/v1/backup {attachments?}`` -> 201 ``{name, bytes, rows, files, seconds}``:
  writes an encrypted backup of the account into ``<home>/backups/`` (only the
  recovery phrase opens it);
- ``GET /api/v1/backup/files/{name}`` -> the file (a download), ``GET
  /api/v1/backup/files`` -> ``[{name, bytes, created_at_ms}]`` newest first;
- ``GET /api/v1/backup/schedule`` -> ``{scheduled, folder, every_hours, keep,
  attachments, last_at_ms, last_file, last_error}``; ``PUT`` the same fields to
  schedule automatic backups (``boxless up`` writes them), ``DELETE`` to stop.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.backup import create_backup
from boxless.client.backup_schedule import (
    MAX_KEEP,
    MIN_EVERY_S,
    Schedule,
    file_name,
    get_schedule,
    set_schedule,
)
from boxless.client.core import Client
from boxless.errors import UsageError

_NAME = re.compile(r"^boxless-backup-\d{8}-\d{6}-[0-9a-f]{8}\.bxbk$")


class NewBackup(BaseModel):
    attachments: bool = False


class ScheduleBody(BaseModel):
    folder: str = Field(min_length=1, max_length=1024)
    every_hours: float = Field(ge=MIN_EVERY_S / 3600, le=24 * 365)
    keep: int = Field(ge=1, le=MAX_KEEP)
    attachments: bool = False


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/backup"): NewBackup,
    ("PUT", "/api/v1/backup/schedule"): ScheduleBody,
}


def _schedule_json(s: Schedule | None) -> dict[str, Any]:
    if s is None:
        return {"scheduled": False}
    return {
        "scheduled": True,
        "folder": str(s.folder),
        "every_hours": s.every_s / 3600,
        "keep": s.keep,
        "attachments": s.attachments,
        "last_at_ms": s.last_at_ms,
        "last_file": s.last_file,
        "last_error": s.last_error,
    }


def _listing(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    found = sorted((p for p in folder.iterdir() if _NAME.match(p.name)), reverse=True)[:100]
    return [
        {"name": p.name, "bytes": p.stat().st_size, "created_at_ms": int(p.stat().st_mtime * 1000)}
        for p in found
    ]


def backup_routes(client: Client) -> list[Route]:
    """The backup routes over ``client`` (files go to the account's home/backups)."""
    home = Path(client.db.path).parent
    folder = home / "backups"

    async def create(request: Request) -> Response:
        """Write an encrypted backup of the whole account; download it with its name."""
        body = await parse_body(request, NewBackup)
        out = folder / file_name(time.time(), client.me.hex())
        try:
            stats = await trio.to_thread.run_sync(
                lambda: create_backup(
                    client.db, out, files_root=home / "blobs" if body.attachments else None
                )
            )
        except UsageError as exc:
            raise ApiError(422, "cannot_back_up", str(exc)) from None
        return JSONResponse(
            {
                "name": out.name,
                "bytes": stats.bytes,
                "rows": stats.rows,
                "files": stats.files,
                "seconds": round(stats.seconds, 2),
            },
            status_code=201,
        )

    async def files(request: Request) -> Response:
        """The backups in the account's backups folder, newest first."""
        return JSONResponse(_listing(folder))

    async def download(request: Request) -> Response:
        name = request.path_params["name"]
        if not _NAME.match(name) or not (folder / name).is_file():
            raise ApiError(404, "not_found", "no such backup; make one first")
        return FileResponse(folder / name, media_type="application/octet-stream", filename=name)

    async def schedule(request: Request) -> Response:
        """Automatic backups: where, how often, how many kept, and how the last went."""
        return JSONResponse(_schedule_json(get_schedule(client.db)))

    async def put_schedule(request: Request) -> Response:
        body = await parse_body(request, ScheduleBody)
        target = Path(body.folder)
        if not target.is_absolute():
            raise ApiError(422, "invalid_body", "folder: give a full path, e.g. /home/me/backups")
        try:
            set_schedule(
                client.db,
                Schedule(target, int(body.every_hours * 3600), body.keep, body.attachments),
            )
        except UsageError as exc:
            raise ApiError(422, "invalid_body", str(exc)) from None
        return JSONResponse(_schedule_json(get_schedule(client.db)))

    async def stop_schedule(request: Request) -> Response:
        set_schedule(client.db, None)
        return Response(status_code=204)

    return [
        Route("/api/v1/backup", create, methods=["POST"]),
        Route("/api/v1/backup/files", files, methods=["GET"]),
        Route("/api/v1/backup/files/{name}", download, methods=["GET"]),
        Route("/api/v1/backup/schedule", schedule, methods=["GET"]),
        Route("/api/v1/backup/schedule", put_schedule, methods=["PUT"]),
        Route("/api/v1/backup/schedule", stop_schedule, methods=["DELETE"]),
    ]
