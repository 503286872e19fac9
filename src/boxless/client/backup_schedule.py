"""Scheduled automatic backups to a folder, keeping the newest N (run by ``boxless up``).

The decisions are pure (:func:`due`, :func:`to_prune`, with ``now`` passed
in); :func:`run_scheduled_backups` is the trio loop that applies them: it reads
the schedule, writes a backup when one is due (in a worker thread: the
database lock is held while the rows are read, a few seconds for a large
account), deletes the oldest files beyond ``keep`` and records how it went.
Only files this module named (``boxless-backup-*.bxbk``) are ever deleted.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from boxless.client.backup import create_backup
from boxless.errors import BoxlessError, UsageError
from boxless.storage.userdb import UserDB, migration_files

__all__ = [
    "Schedule",
    "due",
    "get_schedule",
    "run_scheduled_backups",
    "set_schedule",
    "to_prune",
]

log = logging.getLogger(__name__)

COMPONENT = "backup"
MIN_EVERY_S = 60
MAX_KEEP = 1000
CHECK_EVERY_S = 60.0
FILE_NAME = re.compile(r"^boxless-backup-(\d{8}-\d{6})-[0-9a-f]{8}\.bxbk$")


@dataclass(frozen=True, slots=True)
class Schedule:
    folder: Path
    every_s: int
    keep: int
    attachments: bool = False
    last_at_ms: int | None = None
    last_file: str | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        if self.every_s < MIN_EVERY_S:
            raise UsageError(f"back up at most once a minute (every {MIN_EVERY_S} s or more)")
        if not 1 <= self.keep <= MAX_KEEP:
            raise UsageError(f"keep between 1 and {MAX_KEEP} backups")


def _migrate(db: UserDB) -> None:
    db.migrate(COMPONENT, migration_files("boxless.client", "migrations_backup"))


def get_schedule(db: UserDB) -> Schedule | None:
    _migrate(db)
    with db.transaction() as cur:
        cur.execute(
            "SELECT folder, every_s, keep, attachments, last_at_ms, last_file, last_error"
            " FROM backup_schedule WHERE id = 1"
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Schedule(Path(row[0]), int(row[1]), int(row[2]), bool(row[3]), row[4], row[5], row[6])


def set_schedule(db: UserDB, schedule: Schedule | None) -> None:
    """Schedule backups (or stop them with ``None``); the last run is kept."""
    _migrate(db)
    with db.transaction() as cur:
        if schedule is None:
            cur.execute("DELETE FROM backup_schedule")
            return
        cur.execute(
            "INSERT INTO backup_schedule (id, folder, every_s, keep, attachments)"
            " VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET folder = excluded.folder,"
            " every_s = excluded.every_s, keep = excluded.keep,"
            " attachments = excluded.attachments",
            (str(schedule.folder), schedule.every_s, schedule.keep, int(schedule.attachments)),
        )


def _record(db: UserDB, at_ms: int, file: str | None, error: str | None) -> None:
    with db.transaction() as cur:
        cur.execute(
            "UPDATE backup_schedule SET last_at_ms = ?, last_file = ?, last_error = ? WHERE id = 1",
            (at_ms, file, error),
        )


def due(schedule: Schedule, now: float) -> bool:
    """Whether a backup is due at ``now`` (Unix seconds); a failed run retries after
    a tenth of the period (at least a minute), not at once."""
    if schedule.last_at_ms is None:
        return True
    wait = (
        schedule.every_s
        if schedule.last_error is None
        else max(MIN_EVERY_S, schedule.every_s // 10)
    )
    return now * 1000 - schedule.last_at_ms >= wait * 1000


def to_prune(names: list[str], keep: int) -> list[str]:
    """Which of the files in a folder to delete: ours beyond the ``keep`` newest."""
    ours = sorted((n for n in names if FILE_NAME.match(n)), reverse=True)
    return ours[keep:]


def file_name(now: float, identity_hex: str) -> str:
    return (
        f"boxless-backup-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{identity_hex[:8]}.bxbk"
    )


def backup_now(db: UserDB, schedule: Schedule, home: Path, identity_hex: str, now: float) -> Path:
    """One scheduled backup, then the pruning (blocking; run it in a thread)."""
    schedule.folder.mkdir(parents=True, exist_ok=True)
    out = schedule.folder / file_name(now, identity_hex)
    create_backup(db, out, files_root=home / "blobs" if schedule.attachments else None, now=now)
    for name in to_prune([p.name for p in schedule.folder.iterdir()], schedule.keep):
        (schedule.folder / name).unlink(missing_ok=True)
    return out


async def run_scheduled_backups(
    db: UserDB, home: Path, identity_hex: str, *, clock: Callable[[], float] = time.time
) -> None:
    """Forever: every :data:`CHECK_EVERY_S`, make the backup that is due (cancel to stop;
    a backup being written when cancelled finishes in its thread, under its .part name)."""
    while True:
        schedule = get_schedule(db)
        now = clock()
        if schedule is not None and due(schedule, now):
            try:
                out = await trio.to_thread.run_sync(
                    backup_now, db, schedule, home, identity_hex, now
                )
            except (BoxlessError, OSError) as exc:
                log.warning("the scheduled backup failed: %s", exc)
                _record(db, int(now * 1000), None, str(exc)[:500])
            else:
                log.info("scheduled backup written to %s", out)
                _record(db, int(now * 1000), str(out), None)
        await trio.sleep(CHECK_EVERY_S)
