"""The on-disk block store: blocks as files, pins and reference counts in SQLite.

Theory of operation: a block lives in ``blocks/<2 chars>/<cid>`` (written to a
temporary name, then renamed, so a crash never leaves a half block under its
name) and has a row in ``blocks`` with its size, a reference count and when it
arrived. A *pin* keeps a whole DAG: it records its root, who asked (``owner``),
its bytes and when it expires (retention, default 30 days), and lists its
distinct blocks in ``pin_blocks``; pinning adds one to each block's ``refs``,
unpinning or expiry takes it away. :meth:`BlockStore.gc` deletes blocks nobody
references once they are older than a grace period (blocks of a fetch or a
``put`` still under way are unpinned for a moment). The quota bounds the bytes
of all blocks; :meth:`owner_bytes` lets the pin service bound each requester.

Every ``put`` verifies the bytes against the CID, so the store never holds a
block under a name it does not hash to. All methods are synchronous and quick
(one small file, one small transaction); the SQL lives only here.

Lost blocks: a block file can vanish behind the store's back (a disk error, an
operator's ``rm``) while its row stays. :meth:`lost_names` finds such blocks by
the presence of their files (a ``stat`` each, no re-hash; bounded per call), and
:meth:`forget` drops their rows: :meth:`has` then stops claiming them (Bitswap no
longer answers HAVE) and the next ``put`` of one writes it again, its reference
count rebuilt from the pins that list it (a pin record keeps its block list, so
a re-pin of the same DAG repairs it; see ``pin.py``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from boxless.blobs.cid import Cid
from boxless.errors import StorageError, UsageError

DAY_S = 86_400
DEFAULT_RETENTION_S = 30 * DAY_S
DEFAULT_QUOTA = 10 * 1024**3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    name TEXT PRIMARY KEY, size INTEGER NOT NULL, refs INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pins (
    id INTEGER PRIMARY KEY, root TEXT NOT NULL, owner TEXT NOT NULL, bytes INTEGER NOT NULL,
    created_at REAL NOT NULL, expires_at REAL);
CREATE INDEX IF NOT EXISTS pins_owner ON pins(owner);
CREATE INDEX IF NOT EXISTS pins_root ON pins(root);
CREATE TABLE IF NOT EXISTS pin_blocks (
    pin INTEGER NOT NULL REFERENCES pins(id) ON DELETE CASCADE, name TEXT NOT NULL,
    PRIMARY KEY (pin, name));
CREATE INDEX IF NOT EXISTS pin_blocks_name ON pin_blocks(name);
"""


class QuotaExceeded(StorageError):
    """Storing this would pass the store's byte quota."""


def _name(cid: Cid) -> str:
    return str(Cid(1, cid.codec, cid.digest))  # v0 and v1 of a block share a file


class BlockStore:
    """Blocks on disk under ``root`` with pins; ``quota`` caps the bytes of all blocks."""

    def __init__(self, root: Path, *, quota: int = DEFAULT_QUOTA) -> None:
        self.root = root
        self.quota = quota
        (root / "blocks").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "blobs.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: no fsync per block row (3.7 ms each under load, most of a
        # put's time); a power cut may lose the last rows, never corrupt the
        # index, and a block file without its row is just rewritten on the next put
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM blocks").fetchone()
        self._used = int(row[0])

    def close(self) -> None:
        self._db.close()

    def _path(self, name: str) -> Path:
        return self.root / "blocks" / name[-2:] / name

    @property
    def used(self) -> int:
        """Bytes of all blocks held."""
        return self._used

    def has(self, cid: Cid) -> bool:
        row = self._db.execute("SELECT 1 FROM blocks WHERE name = ?", (_name(cid),)).fetchone()
        return row is not None

    def size(self, cid: Cid) -> int | None:
        row = self._db.execute("SELECT size FROM blocks WHERE name = ?", (_name(cid),)).fetchone()
        return None if row is None else int(row[0])

    def get(self, cid: Cid) -> bytes | None:
        """The block's bytes, or None if we do not hold it."""
        try:
            return self._path(_name(cid)).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, cid: Cid, data: bytes, now: float) -> None:
        """Store a block after checking it hashes to ``cid``; a no-op if held."""
        if not cid.matches(data):
            raise UsageError(f"block does not hash to {cid}")
        name = _name(cid)
        if self.has(cid):
            if self._path(name).exists():
                return
            self.forget([name])  # its file was lost behind our back: written again below
        if self._used + len(data) > self.quota:
            raise QuotaExceeded(f"block store is full ({self._used} of {self.quota} bytes)")
        path = self._path(name)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        # refs: the pins that list it (0 for a new block; more for a lost one written again)
        self._db.execute(
            "INSERT INTO blocks (name, size, refs, added_at) VALUES"
            " (?, ?, (SELECT COUNT(*) FROM pin_blocks WHERE name = ?), ?)",
            (name, len(data), name, now),
        )
        self._used += len(data)

    def pin(
        self,
        root: Cid,
        owner: str,
        blocks: Iterable[Cid],
        nbytes: int,
        now: float,
        retention_s: float | None = DEFAULT_RETENTION_S,
    ) -> int:
        """Pin the DAG at ``root`` (whose blocks are ``blocks``, all held); return the pin id."""
        names = sorted({_name(c) for c in blocks})
        expires = None if retention_s is None else now + retention_s
        cur = self._db.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute(
                "INSERT INTO pins (root, owner, bytes, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (_name(root), owner, nbytes, now, expires),
            )
            pin_id = int(cur.lastrowid or 0)
            cur.executemany(
                "INSERT INTO pin_blocks (pin, name) VALUES (?, ?)", [(pin_id, n) for n in names]
            )
            cur.executemany(
                "UPDATE blocks SET refs = refs + 1 WHERE name = ?", [(n,) for n in names]
            )
            missing = cur.execute(
                "SELECT COUNT(*) FROM pin_blocks p LEFT JOIN blocks b ON b.name = p.name"
                " WHERE p.pin = ? AND b.name IS NULL",
                (pin_id,),
            ).fetchone()[0]
            if missing:
                raise UsageError(f"cannot pin {root}: {missing} of its blocks are not held")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return pin_id

    def unpin(self, pin_id: int) -> bool:
        """Drop a pin (its blocks lose a reference); False if there was none."""
        cur = self._db.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute(
                "UPDATE blocks SET refs = refs - 1 WHERE name IN"
                " (SELECT name FROM pin_blocks WHERE pin = ?)",
                (pin_id,),
            )
            cur.execute("DELETE FROM pin_blocks WHERE pin = ?", (pin_id,))
            gone = cur.execute("DELETE FROM pins WHERE id = ?", (pin_id,)).rowcount
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return bool(gone)

    def renew(self, pin_id: int, expires_at: float | None) -> None:
        """Set a pin's expiry (a repeated pin request extends it)."""
        self._db.execute("UPDATE pins SET expires_at = ? WHERE id = ?", (expires_at, pin_id))

    def pins(self, root: Cid | None = None) -> list[tuple[int, str, str, int, float | None]]:
        """(id, root, owner, bytes, expires_at) of every pin, or of ``root``'s."""
        sql = "SELECT id, root, owner, bytes, expires_at FROM pins"
        args: tuple[str, ...] = ()
        if root is not None:
            sql, args = sql + " WHERE root = ?", (_name(root),)
        return [(int(a), b, c, int(d), e) for a, b, c, d, e in self._db.execute(sql, args)]

    def pin_blocks_of(self, root: Cid, limit: int) -> list[tuple[str, int | None]]:
        """(name, size) of the distinct blocks the pins of ``root`` list, at most
        ``limit``; size None: the block's row is gone (forgotten as lost)."""
        rows = self._db.execute(
            "SELECT DISTINCT pb.name, b.size FROM pin_blocks pb JOIN pins p ON p.id = pb.pin"
            " LEFT JOIN blocks b ON b.name = pb.name WHERE p.root = ? LIMIT ?",
            (_name(root), limit),
        )
        return [(r[0], None if r[1] is None else int(r[1])) for r in rows]

    def block_sizes(self, after: str, limit: int) -> list[tuple[str, int | None]]:
        """(name, size) of held blocks in name order after ``after`` (a rolling
        check's next batch)."""
        rows = self._db.execute(
            "SELECT name, size FROM blocks WHERE name > ? ORDER BY name LIMIT ?", (after, limit)
        )
        return [(r[0], int(r[1])) for r in rows]

    def lost_names(self, blocks: Iterable[tuple[str, int | None]]) -> list[str]:
        """Names of those ``(name, size)`` whose row is gone (size None), whose file is
        gone or whose file has another size: a ``stat`` each, no re-hash and no
        database access (safe in a worker thread)."""
        lost = []
        for name, size in blocks:
            try:
                ok = size is not None and self._path(name).stat().st_size == size
            except FileNotFoundError:
                ok = False
            if not ok:
                lost.append(name)
        return lost

    def forget(self, names: Iterable[str], *, recheck: bool = True) -> int:
        """Drop the rows of lost blocks (their pins keep listing them) and their files
        if any; return bytes no longer counted. A later ``put`` of one writes it again.
        ``recheck``: each must still be lost (one a ``put`` wrote since a check in a
        worker thread stays); without, as named (damaged ones a re-hash found)."""
        freed = 0
        for name in set(names):
            row = self._db.execute("SELECT size FROM blocks WHERE name = ?", (name,)).fetchone()
            if row is None or (recheck and not self.lost_names([(name, int(row[0]))])):
                continue
            self._db.execute("DELETE FROM blocks WHERE name = ?", (name,))
            self._path(name).unlink(missing_ok=True)  # a damaged file, if any
            freed += int(row[0])
        self._used -= freed
        return freed

    def owner_bytes(self, owner: str) -> int:
        """Bytes of the pins ``owner`` asked for (what its quota counts)."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(bytes), 0) FROM pins WHERE owner = ?", (owner,)
        ).fetchone()
        return int(row[0])

    def expire(self, now: float) -> int:
        """Drop pins past their retention; return how many."""
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT id FROM pins WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            )
        ]
        for pin_id in ids:
            self.unpin(pin_id)
        return len(ids)

    def discard(self, cids: Iterable[Cid]) -> int:
        """Delete these blocks now if no pin holds them (a failed fetch's
        leftovers); return bytes freed."""
        freed = 0
        for name in {_name(c) for c in cids}:
            row = self._db.execute(
                "DELETE FROM blocks WHERE name = ? AND refs <= 0 RETURNING size", (name,)
            ).fetchone()
            if row is not None:
                self._path(name).unlink(missing_ok=True)
                freed += int(row[0])
        self._used -= freed
        return freed

    def gc(self, now: float, grace_s: float = 600.0) -> int:
        """Delete unreferenced blocks older than ``grace_s``; return bytes freed."""
        rows = self._db.execute(
            "SELECT name, size FROM blocks WHERE refs <= 0 AND added_at <= ?", (now - grace_s,)
        ).fetchall()
        freed = 0
        for name, size in rows:
            self._db.execute("DELETE FROM blocks WHERE name = ? AND refs <= 0", (name,))
            self._path(name).unlink(missing_ok=True)
            freed += int(size)
        self._used -= freed
        return freed
