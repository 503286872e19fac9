"""Temporary directories whose owner process died before its teardown.

A fixture that keeps state outside pytest's tmp (``/dev/shm``, a daemonised
PostgreSQL) names each directory ``<prefix><owner pid>-<random>``; the next
one to start cleans up after owners that were killed (a worker stopped by a
timeout runs no teardown).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def dead_owners(parent: Path, prefix: str) -> Iterator[Path]:
    """The ``<prefix><pid>-*`` directories in ``parent`` whose process is gone."""
    if not Path("/proc/self").exists():  # no way to tell who is alive
        return
    for path in parent.glob(f"{prefix}*-*"):
        pid = path.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            yield path
