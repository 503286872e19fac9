"""A chat's files, newest first: what the web UI's media gallery and bubbles list.

Read-only over the attachments feature's table (``client_attachments``, owned by
:mod:`boxless.client.attachment_store`, whose row decoder is reused so a
descriptor is checked the same way). Kept apart so the UI's listing does not
touch the feature's send/receive code. Bounded: at most :data:`MAX_LIMIT` rows
per call; ``before`` (an opaque cursor from the last row) pages further back.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.client import attachment_store as store
from boxless.storage.userdb import UserDB

__all__ = ["MAX_LIMIT", "ChatFile", "chat_files"]

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ChatFile:
    cursor: int  # pass as ``before`` to get the files older than this one
    row: store.AttachmentRow


def chat_files(
    db: UserDB, chat: str, *, limit: int = 200, before: int | None = None
) -> list[ChatFile]:
    """The files of ``chat`` (``contact:<hex>``/``group:<hex>``), newest first."""
    limit = max(1, min(limit, MAX_LIMIT))
    sql = f"SELECT rowid, {store._COLS} FROM client_attachments WHERE chat = ?"  # noqa: SLF001
    args: list[object] = [chat]
    if before is not None:
        sql += " AND rowid < ?"
        args.append(before)
    sql += " ORDER BY rowid DESC LIMIT ?"
    args.append(limit)
    with db.transaction() as cur:
        rows = cur.execute(sql, args).fetchall()
    return [ChatFile(int(r[0]), store._row(tuple(r[1:]))) for r in rows]  # noqa: SLF001
