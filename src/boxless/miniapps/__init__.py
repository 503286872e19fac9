"""Mini apps: signed static bundles run sandboxed in the web UI (docs/miniapps.md)."""

from boxless.miniapps.bundle import (
    MAX_BUNDLE_BYTES,
    VerifiedBundle,
    pack_dir,
    pack_files,
    verify_bundle,
)
from boxless.miniapps.install import check_install
from boxless.miniapps.manifest import PERMISSIONS, BundleError, Manifest, parse_manifest

__all__ = [
    "MAX_BUNDLE_BYTES",
    "PERMISSIONS",
    "BundleError",
    "Manifest",
    "VerifiedBundle",
    "check_install",
    "pack_dir",
    "pack_files",
    "parse_manifest",
    "verify_bundle",
]
