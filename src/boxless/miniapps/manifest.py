"""A mini app's ``manifest.json``: parsed and checked (docs/miniapps.md).

Every string comes from whoever wrote the bundle: a stranger. A manifest that
would put markup in the UI (``<``, ``>``), a control character, a path outside
the bundle or an unknown permission is refused with the reason, never cleaned.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from boxless.errors import ValidationError

__all__ = [
    "APP_ID_PATTERN",
    "PERMISSIONS",
    "BundleError",
    "Manifest",
    "check_path",
    "parse_manifest",
]

PERMISSIONS = ("user.name", "user.avatar", "backend", "pay", "share", "storage")
MAX_MANIFEST_BYTES = 8 * 1024
APP_ID_PATTERN = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)+"
)
_SEMVER = re.compile(
    r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(-[0-9A-Za-z.-]{1,32})?"
)
_KEY = re.compile(r"[0-9a-f]{64}")
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_BAD_TEXT = re.compile(r"[<>\x00-\x1f\x7f\u2028\u2029]")
_FIELDS = {"id", "name", "version", "icon", "entry", "permissions", "developer", "bot"}


class BundleError(ValidationError):
    """A bundle or manifest refused; the message says why."""


def check_path(path: str) -> str:
    """``path`` if it is a plain relative path inside a bundle, else BundleError:
    no ``..``, no absolute path, no backslash, no hidden or odd characters."""
    if not 0 < len(path) <= 100:
        raise BundleError(f"a file name in the bundle is 1 to 100 characters: {path[:60]!r}")
    if path.startswith("/") or "\\" in path:
        raise BundleError(f"path traversal refused: {path[:60]!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"path traversal refused: {path[:60]!r}")
    for p in parts:
        if not _PATH_PART.fullmatch(p):
            raise BundleError(
                f"a file name may use letters, digits, '_', '-' and '.' only: {path[:60]!r}"
            )
    return path


def _text(doc: dict[str, Any], field: str, limit: int) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BundleError(f"manifest.{field} must be a non-empty string")
    if len(value) > limit:
        raise BundleError(f"manifest.{field} is at most {limit} characters")
    if _BAD_TEXT.search(value):
        raise BundleError(f"manifest.{field} may not hold markup ('<', '>') or control characters")
    return value


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    name: str
    version: str
    icon: str
    entry: str
    permissions: tuple[str, ...]
    developer: bytes
    bot: bytes

    def version_key(self) -> tuple[int, int, int]:
        m = _SEMVER.fullmatch(self.version)
        assert m is not None  # checked when parsed
        return int(m[1]), int(m[2]), int(m[3])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "icon": self.icon,
            "entry": self.entry,
            "permissions": list(self.permissions),
            "developer": self.developer.hex(),
            "bot": self.bot.hex(),
        }


def parse_manifest(data: bytes) -> Manifest:
    """Parse untrusted ``manifest.json`` bytes (BundleError with the reason)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(f"manifest.json is at most {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"manifest.json is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BundleError("manifest.json must be a JSON object")
    unknown = set(doc) - _FIELDS
    if unknown:
        raise BundleError(f"manifest.json has unknown fields: {', '.join(sorted(unknown))[:100]}")
    app_id = _text(doc, "id", 100)
    if not APP_ID_PATTERN.fullmatch(app_id):
        raise BundleError("manifest.id must be reverse-DNS, e.g. org.example.coffee")
    name = _text(doc, "name", 64)
    version = _text(doc, "version", 40)
    if not _SEMVER.fullmatch(version):
        raise BundleError("manifest.version must be semver MAJOR.MINOR.PATCH")
    icon = check_path(_text(doc, "icon", 200))
    entry = check_path(_text(doc, "entry", 200))
    if not entry.endswith(".html"):
        raise BundleError("manifest.entry must name an .html file")
    perms = doc.get("permissions")
    if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
        raise BundleError("manifest.permissions must be a list of strings")
    bad = [p for p in perms if p not in PERMISSIONS]
    if bad:
        raise BundleError(f"unknown permission {bad[0][:40]!r}; allowed: {', '.join(PERMISSIONS)}")
    if len(set(perms)) != len(perms):
        raise BundleError("manifest.permissions lists a permission twice")
    keys = []
    for field in ("developer", "bot"):
        value = _text(doc, field, 64)
        if not _KEY.fullmatch(value):
            raise BundleError(f"manifest.{field} must be an identity key (64 lowercase hex)")
        keys.append(bytes.fromhex(value))
    return Manifest(app_id, name, version, icon, entry, tuple(sorted(perms)), keys[0], keys[1])
