"""All the SQL of mini apps (:mod:`boxless.client.miniapps`): installed bundles,
permission decisions and each app's storage. Removing an app removes the rest
(foreign keys cascade)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from boxless.client.store import Cursor
from boxless.miniapps import Manifest, parse_manifest

__all__ = [
    "AppRow",
    "delete_app",
    "get_app",
    "get_bundle",
    "list_apps",
    "permissions",
    "put_app",
    "set_permission",
    "storage_get",
    "storage_set",
    "storage_used",
    "touch_app",
]


@dataclass(frozen=True, slots=True)
class AppRow:
    manifest: Manifest
    archive_sha256: bytes
    size: int
    installed_at_ms: int
    used_at_ms: int | None


_COLS = "manifest, archive_sha256, length(bundle), installed_at_ms, used_at_ms"


def _row(r: tuple[Any, ...]) -> AppRow:
    return AppRow(
        parse_manifest(str(r[0]).encode()),
        bytes(r[1]),
        int(r[2]),
        int(r[3]),
        None if r[4] is None else int(r[4]),
    )


def put_app(cur: Cursor, manifest: Manifest, bundle: bytes, sha256: bytes, now_ms: int) -> None:
    """Install or replace (an update keeps permissions and storage)."""
    cur.execute(
        "INSERT INTO client_miniapps (app_id, manifest, developer, bot, version, bundle,"
        " archive_sha256, installed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (app_id) DO UPDATE SET manifest = excluded.manifest,"
        " bot = excluded.bot, version = excluded.version, bundle = excluded.bundle,"
        " archive_sha256 = excluded.archive_sha256, installed_at_ms = excluded.installed_at_ms",
        (
            manifest.id,
            json.dumps(manifest.to_json()),
            manifest.developer,
            manifest.bot,
            manifest.version,
            bundle,
            sha256,
            now_ms,
        ),
    )
    # a permission the new version no longer asks for is forgotten
    marks = ",".join("?" * len(manifest.permissions))
    cur.execute(
        f"DELETE FROM client_miniapp_permissions WHERE app_id = ? AND permission NOT IN ({marks})",
        (manifest.id, *manifest.permissions),
    )


def get_app(cur: Cursor, app_id: str) -> AppRow | None:
    cur.execute(f"SELECT {_COLS} FROM client_miniapps WHERE app_id = ?", (app_id,))
    r = cur.fetchone()
    return None if r is None else _row(r)


def get_bundle(cur: Cursor, app_id: str) -> bytes | None:
    cur.execute("SELECT bundle FROM client_miniapps WHERE app_id = ?", (app_id,))
    r = cur.fetchone()
    return None if r is None else bytes(r[0])


def list_apps(cur: Cursor) -> list[AppRow]:
    """Installed apps, recently used first."""
    cur.execute(
        f"SELECT {_COLS} FROM client_miniapps"
        " ORDER BY coalesce(used_at_ms, 0) DESC, installed_at_ms DESC"
    )
    return [_row(r) for r in cur.fetchall()]


def touch_app(cur: Cursor, app_id: str, now_ms: int) -> None:
    cur.execute("UPDATE client_miniapps SET used_at_ms = ? WHERE app_id = ?", (now_ms, app_id))


def delete_app(cur: Cursor, app_id: str) -> bool:
    cur.execute("DELETE FROM client_miniapp_storage WHERE app_id = ?", (app_id,))
    cur.execute("DELETE FROM client_miniapp_permissions WHERE app_id = ?", (app_id,))
    cur.execute("DELETE FROM client_miniapps WHERE app_id = ?", (app_id,))
    return bool(cur.rowcount)


def permissions(cur: Cursor, app_id: str) -> dict[str, bool]:
    cur.execute(
        "SELECT permission, granted FROM client_miniapp_permissions WHERE app_id = ?", (app_id,)
    )
    return {str(p): bool(g) for p, g in cur.fetchall()}


def set_permission(
    cur: Cursor, app_id: str, permission: str, granted: bool | None, now_ms: int
) -> None:
    """Record the user's decision; ``None`` forgets it (asked again at next use)."""
    if granted is None:
        cur.execute(
            "DELETE FROM client_miniapp_permissions WHERE app_id = ? AND permission = ?",
            (app_id, permission),
        )
        return
    cur.execute(
        "INSERT INTO client_miniapp_permissions (app_id, permission, granted, decided_at_ms)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (app_id, permission) DO UPDATE"
        " SET granted = excluded.granted, decided_at_ms = excluded.decided_at_ms",
        (app_id, permission, int(granted), now_ms),
    )


def storage_get(cur: Cursor, app_id: str, key: str) -> str | None:
    cur.execute(
        "SELECT value FROM client_miniapp_storage WHERE app_id = ? AND key = ?", (app_id, key)
    )
    r = cur.fetchone()
    return None if r is None else str(r[0])


def storage_used(cur: Cursor, app_id: str, except_key: str = "") -> int:
    cur.execute(
        "SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0)"
        " FROM client_miniapp_storage WHERE app_id = ? AND key != ?",
        (app_id, except_key),
    )
    return int(cur.fetchone()[0])


def storage_set(cur: Cursor, app_id: str, key: str, value: str | None) -> None:
    if value is None:
        cur.execute(
            "DELETE FROM client_miniapp_storage WHERE app_id = ? AND key = ?", (app_id, key)
        )
        return
    cur.execute(
        "INSERT INTO client_miniapp_storage (app_id, key, value) VALUES (?, ?, ?)"
        " ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value",
        (app_id, key, value),
    )
