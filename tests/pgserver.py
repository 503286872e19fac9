"""A throwaway PostgreSQL server for tests and benchmarks.

``PgServer.start()`` runs ``initdb`` in a fresh temporary directory, starts
``postgres`` on 127.0.0.1 at a free port (its Unix socket inside that
directory), creates a database and returns a handle whose ``url`` is
``postgresql://boxless@127.0.0.1:<port>/boxless`` (trust auth, loopback only).
``stop()`` shuts it down and deletes the directory.

PostgreSQL refuses to run as root, so when we are root every server command
runs as the ``postgres`` system user (created by Debian's ``postgresql``
package) through ``runuser``. Binaries are looked up on ``PATH``, then in
``/usr/lib/postgresql/<version>/bin`` (newest first). If they are missing,
:class:`PgUnavailable` names the binary and how to install it
(``scripts/install_postgres.sh``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.orphans import dead_owners

_SERVICE_USER = "postgres"
_ROOT_PREFIX = "boxless-pg-"
_DB_USER = "boxless"
_DB_NAME = "boxless"


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why and what to do."""


def find_bin_dir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise PgUnavailable(
        "PostgreSQL binary 'initdb' not found on PATH or in /usr/lib/postgresql/*/bin; "
        "install it with scripts/install_postgres.sh (Debian package 'postgresql')"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_service_user() -> tuple[list[str], int | None]:
    """The command prefix and uid to run server commands as a non-root user."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam(_SERVICE_USER).pw_uid
    except KeyError:
        raise PgUnavailable(
            f"running as root and there is no '{_SERVICE_USER}' user to run PostgreSQL as; "
            "install the Debian 'postgresql' package (scripts/install_postgres.sh)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PgUnavailable("running as root and 'runuser' (util-linux) is missing")
    return [runuser, "-u", _SERVICE_USER, "--"], uid


@dataclass
class PgServer:
    """A running throwaway PostgreSQL server."""

    root: Path
    port: int
    bin_dir: Path
    prefix: list[str] = field(repr=False)
    stopped: bool = False

    @property
    def url(self) -> str:
        """URL of the server's main test database."""
        return self.url_for(_DB_NAME)

    def url_for(self, dbname: str) -> str:
        """URL of database ``dbname`` on this server."""
        return f"postgresql://{_DB_USER}@127.0.0.1:{self.port}/{dbname}"

    @classmethod
    def start(cls, *, durable: bool = False) -> PgServer:
        """Start a server. ``durable=False`` turns fsync off (fine for tests).

        ``durable=True`` keeps fsync but sets ``synchronous_commit=off``, the
        same guarantee as SQLite's WAL with ``synchronous=NORMAL`` (a crash can
        lose the last commits, never corrupt): use it for fair benchmarks.
        """
        bin_dir = find_bin_dir()
        prefix, uid = _as_service_user()
        _stop_orphans(bin_dir, prefix)
        root = Path(tempfile.mkdtemp(prefix=f"{_ROOT_PREFIX}{os.getpid()}-"))
        if uid is not None:
            os.chown(root, uid, -1)
        server = cls(root=root, port=_free_port(), bin_dir=bin_dir, prefix=prefix)
        try:
            server._initdb()
            server._launch(durable)
            server.create_database(_DB_NAME)
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, *args: str) -> None:
        cmd = [*self.prefix, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PgUnavailable(
                f"{' '.join(args[:2])} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{tail}"
            )

    def _initdb(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.root / "data"),
            "-U",
            _DB_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _launch(self, durable: bool) -> None:
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            "-c max_connections=100",
            "-c shared_buffers=128MB",
        ]
        if durable:
            settings.append("-c synchronous_commit=off")
        else:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "start",
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(settings),
        )

    def create_database(self, dbname: str) -> str:
        """Create database ``dbname`` and return its URL."""
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"'.encode())
        return self.url_for(dbname)

    def drop_database(self, dbname: str) -> None:
        """Drop database ``dbname`` (forcing off leftover connections)."""
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'.encode())

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """Create a uniquely named database for one test; drop it afterwards."""
        name = f"t_{uuid.uuid4().hex}"
        url = self.create_database(name)
        try:
            yield url
        finally:
            self.drop_database(name)

    def stop(self) -> None:
        """Stop the server (immediately) and delete its directory. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*self.prefix, str(self.bin_dir / "pg_ctl"), "stop", "-D", str(data)]
                + ["-m", "immediate", "-w"],
                capture_output=True,
                check=False,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _stop_orphans(bin_dir: Path, prefix: list[str]) -> None:
    """Stop and delete the servers of test processes that died without stopping them
    (pg_ctl runs postgres as a daemon: it outlived a killed pytest worker, with its
    port, memory and directory); each server's directory names its owner's pid."""
    for root in dead_owners(Path(tempfile.gettempdir()), _ROOT_PREFIX):
        PgServer(root=root, port=0, bin_dir=bin_dir, prefix=prefix).stop()


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PgServer]:
    """Context manager: a started server, stopped on exit."""
    server = PgServer.start(durable=durable)
    try:
        yield server
    finally:
        server.stop()
