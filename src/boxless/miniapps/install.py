"""Who may install or update an app: one pure decision (docs/miniapps.md)."""

from __future__ import annotations

from boxless.miniapps.manifest import BundleError, Manifest

__all__ = ["check_install"]


def check_install(installed: Manifest | None, new: Manifest) -> None:
    """Allow installing ``new`` over ``installed`` (None: a first install), else
    BundleError with the reason: an update must be signed by the same developer
    key and may not go back to an older version."""
    if installed is None:
        return
    if installed.id != new.id:
        raise BundleError("an update must carry the installed app's id")
    if installed.developer != new.developer:
        raise BundleError(
            f"update refused: {new.id} is signed by another developer key than the installed one"
        )
    if new.version_key() < installed.version_key():
        raise BundleError(
            f"update refused: version {new.version} is older than the installed {installed.version}"
        )
