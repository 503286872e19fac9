"""Signed mini-app bundles: a deterministic tar, signed by the developer identity.

Theory of operation (docs/miniapps.md): the archive is a plain USTAR tar whose
entries are sorted by path with every varying header field fixed (mtime 0,
uid/gid 0, mode 0644), so the same files always give the same bytes. The last
member, ``SIGNATURE``, is JSON naming the developer key, the SHA-256 of the tar
of all other members and the Ed25519 signature over a domain tag plus that
hash. :func:`verify_bundle` reads untrusted bytes with every limit checked
before anything is read into memory, re-encodes the members canonically,
recomputes the hash and checks the signature against ``manifest.developer``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from boxless.identity.keys import Identity, verify_ed25519
from boxless.miniapps.manifest import BundleError, Manifest, check_path, parse_manifest

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "SIGNATURE_NAME",
    "VerifiedBundle",
    "pack_dir",
    "pack_files",
    "verify_bundle",
]

MAX_BUNDLE_BYTES = 8 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 512
SIGNATURE_NAME = "SIGNATURE"
_DOMAIN = b"boxless-miniapp-v1\x00"


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    manifest: Manifest
    files: Mapping[str, bytes]
    archive_sha256: bytes  # names this exact content: the hash the developer signed

    def __repr__(self) -> str:
        return (
            f"VerifiedBundle({self.manifest.id} {self.manifest.version}, {len(self.files)} files)"
        )


def _tar(files: Mapping[str, bytes], trailer: tuple[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        items = sorted(files.items())
        if trailer is not None:
            items.append(trailer)
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _check_files(files: Mapping[str, bytes]) -> Manifest:
    if len(files) > MAX_FILES:
        raise BundleError(f"a bundle holds at most {MAX_FILES} files")
    for name, data in files.items():
        check_path(name)
        if len(data) > MAX_FILE_BYTES:
            raise BundleError(f"{name} is over {MAX_FILE_BYTES // 2**20} MiB")
    if "manifest.json" not in files:
        raise BundleError("the bundle has no manifest.json")
    manifest = parse_manifest(files["manifest.json"])
    for field in ("entry", "icon"):
        path = getattr(manifest, field)
        if path not in files:
            raise BundleError(f"manifest.{field} names {path!r}, which is not in the bundle")
    return manifest


def pack_files(files: Mapping[str, bytes], developer: Identity) -> bytes:
    """The signed bundle of ``files`` (path → bytes, ``manifest.json`` among them)."""
    manifest = _check_files(files)
    if manifest.developer != developer.public_key:
        raise BundleError(
            "manifest.developer is not this account's identity key "
            f"({developer.public_key.hex()}); put that key in the manifest"
        )
    digest = hashlib.sha256(_tar(files)).digest()
    sig = {
        "alg": "ed25519",
        "key": developer.public_key.hex(),
        "archive_sha256": digest.hex(),
        "sig": developer.sign(_DOMAIN + digest).hex(),
    }
    data = _tar(files, (SIGNATURE_NAME, json.dumps(sig, sort_keys=True).encode()))
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is over {MAX_BUNDLE_BYTES // 2**20} MiB")
    return data


def pack_dir(root: Path, developer: Identity) -> bytes:
    """Read the bundle directory ``root`` (regular files only) and sign it."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise BundleError(f"{rel}: links are not allowed in a bundle")
        if path.is_dir():
            continue
        if not path.is_file():
            raise BundleError(f"{rel}: only regular files are allowed in a bundle")
        check_path(rel)
        total += path.stat().st_size
        if total > MAX_BUNDLE_BYTES or len(files) >= MAX_FILES:
            raise BundleError(
                f"the bundle is over {MAX_BUNDLE_BYTES // 2**20} MiB or {MAX_FILES} files"
            )
        files[rel] = path.read_bytes()
    return pack_files(files, developer)


def _read_members(data: bytes) -> list[tuple[str, bytes]]:
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as exc:
        raise BundleError(f"not a bundle file (a tar archive): {exc}") from None
    out: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    total = 0
    try:
        while True:
            info = tar.next()
            if info is None:
                break
            name = info.name
            if name != SIGNATURE_NAME:
                check_path(name)
            if not info.isreg():
                raise BundleError(f"{name[:60]!r}: only regular files are allowed (no links)")
            if name in seen:
                raise BundleError(f"{name[:60]!r} appears twice in the bundle")
            seen.add(name)
            if len(out) >= MAX_FILES + 1:
                raise BundleError(f"a bundle holds at most {MAX_FILES} files")
            if info.size > MAX_FILE_BYTES:
                raise BundleError(f"{name[:60]!r} is over {MAX_FILE_BYTES // 2**20} MiB")
            total += info.size
            if total > MAX_BUNDLE_BYTES:
                raise BundleError(f"the bundle is over {MAX_BUNDLE_BYTES // 2**20} MiB")
            f = tar.extractfile(info)
            assert f is not None  # a regular file
            content = f.read()
            if len(content) != info.size:
                raise BundleError("the bundle is truncated")
            out.append((name, content))
    except (tarfile.TarError, EOFError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"a damaged bundle: {exc}") from None
    return out


def verify_bundle(data: bytes) -> VerifiedBundle:
    """Check untrusted bundle bytes: limits, paths, manifest, signature by the
    manifest's developer. BundleError says why a bundle is refused."""
    if len(data) > MAX_BUNDLE_BYTES + 1024 * 1024:  # headers: 512 bytes per file
        raise BundleError(f"the bundle is over {MAX_BUNDLE_BYTES // 2**20} MiB")
    members = _read_members(data)
    if not members or members[-1][0] != SIGNATURE_NAME:
        raise BundleError("the bundle is not signed (no SIGNATURE as its last entry)")
    if any(name == SIGNATURE_NAME for name, _ in members[:-1]):
        raise BundleError("SIGNATURE appears twice in the bundle")
    files = dict(members[:-1])
    manifest = _check_files(files)
    try:
        sig = json.loads(members[-1][1])
        key = bytes.fromhex(sig["key"])
        claimed = bytes.fromhex(sig["archive_sha256"])
        signature = bytes.fromhex(sig["sig"])
        ok_alg = sig["alg"] == "ed25519"
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"a damaged SIGNATURE: {exc!s:.80}") from None
    if not ok_alg:
        raise BundleError("SIGNATURE: unknown algorithm (ed25519 only)")
    if key != manifest.developer:
        raise BundleError("signed by another key than manifest.developer")
    digest = hashlib.sha256(_tar(files)).digest()
    if claimed != digest:
        raise BundleError("bad signature: the files were changed after signing")
    if not verify_ed25519(key, _DOMAIN + digest, signature):
        raise BundleError("bad signature: it does not check against manifest.developer")
    return VerifiedBundle(manifest, files, digest)
