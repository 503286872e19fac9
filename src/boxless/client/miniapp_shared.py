"""Mini apps shared in chats that are not installed (Discover → Mini apps, issue 16).

A shared app is a ``*.boxapp`` file attachment (docs/miniapps.md, App cards). The
descriptor carries no manifest, so a shared app is shown by its (receiver-sanitised)
file name; it counts as installed when an installed bundle is byte-for-byte that file
(the attachment's ``plaintext_sha256`` is the SHA-256 of the bundle file). The same
file shared in several chats is listed once, the most recent share. All the SQL of
this read lives here; it reads attachments and installed bundles, writes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from boxless.chat.attachment import AttachmentRef
from boxless.client.store import Cursor
from boxless.miniapps import MAX_BUNDLE_BYTES
from boxless.storage.userdb import UserDB
from boxless.wire import attachment_pb2

__all__ = ["SCAN_ROWS", "installed_hashes", "list_shared", "shared_apps"]

SCAN_ROWS = 2000  # the most recent files of bundle size looked at (bounded scan)
MAX_SHARED = 50  # at most this many listed


def installed_hashes(cur: Cursor) -> set[bytes]:
    """SHA-256 of every installed bundle file."""
    cur.execute("SELECT bundle FROM client_miniapps")
    return {hashlib.sha256(bytes(r[0])).digest() for r in cur.fetchall()}


def shared_apps(cur: Cursor, limit: int = MAX_SHARED) -> list[dict[str, Any]]:
    """``.boxapp`` attachments in chats whose bundle is not installed, newest first:
    ``{message_id, index, chat, outgoing, name, size, state, shared_at_ms}``
    (``message_id`` as the API names it: hex for 1:1, the group message's id)."""
    installed = installed_hashes(cur)
    cur.execute(
        "SELECT message_id, idx, chat, outgoing, descriptor, state, updated_ms"
        " FROM client_attachments WHERE size <= ? ORDER BY updated_ms DESC, rowid DESC LIMIT ?",
        (MAX_BUNDLE_BYTES + 1024 * 1024, SCAN_ROWS),
    )
    seen: set[bytes] = set()
    out: list[dict[str, Any]] = []
    for mid, idx, chat, outgoing, descriptor, state, updated_ms in cur.fetchall():
        pb = attachment_pb2.Attachment()
        pb.ParseFromString(descriptor)
        ref = AttachmentRef.from_proto(pb)
        if not ref.name.lower().endswith(".boxapp"):
            continue
        digest = ref.plaintext_sha256
        if digest in installed or digest in seen:
            continue
        seen.add(digest)
        chat = str(chat)
        mid = bytes(mid)
        name = ref.name[: -len(".boxapp")] or ref.name
        out.append(
            {
                "message_id": mid.decode() if chat.startswith("group:") else mid.hex(),
                "index": int(idx),
                "chat": chat,
                "outgoing": bool(outgoing),
                "name": name,
                "file_name": ref.name,
                "size": ref.size,
                "state": str(state),
                "shared_at_ms": int(updated_ms),
            }
        )
        if len(out) >= limit:
            break
    return out


def list_shared(db: UserDB, limit: int = MAX_SHARED) -> list[dict[str, Any]]:
    """:func:`shared_apps` in its own read transaction."""
    with db.transaction() as cur:
        return shared_apps(cur, limit)
