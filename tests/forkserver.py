"""A fork server for the `python -m boxless ...` processes the tests start (test code).

Each `boxless up`, `boxless node` or CLI command a test starts was a fresh interpreter
that imported Boxless and its libraries again: ~1.5 of the ~2.8 CPU-s a `boxless up`
costs to start and stop, for some hundreds of processes a suite. The server is one
Python per pytest worker that imported them once (no threads, no event loop, no open
files: checked); a start is a fork of it that runs ``python -m boxless ARGS`` the way
the interpreter does (``runpy``, ``sys.argv``) with the test's environment, working
directory and standard streams. The product code runs unchanged and the process is a
real process (its own pid, signals, exit status); only the interpreter start-up and
the imports are shared.

:func:`popen` starts a fresh interpreter instead (``subprocess.Popen``) when the
server cannot be used: not a ``-m boxless`` command, an environment that differs
from the server's in more than the per-process ``BOXLESS_*`` variables (a variable
read at import time would not take effect), pipes asked for, or
``BOXLESS_TEST_FORKSERVER=0``.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# What a process may set for itself: read at run time, not when a module is imported.
PER_PROCESS = ("BOXLESS_PASSPHRASE", "BOXLESS_NODE_PASSPHRASE", "BOXLESS_GROUP_TIMINGS")
# The server runs unbuffered (-u); pytest names the running test in PYTEST_CURRENT_TEST
# (the child gets the test's value, as every variable of its environment).
_IGNORED = {"PYTHONUNBUFFERED", "PYTEST_CURRENT_TEST"}
started = {"forked": 0, "fresh": 0}
"""How many processes :func:`popen` forked and how many it started afresh."""


class Forked:
    """A forked `boxless` process, with the part of ``subprocess.Popen`` tests use."""

    stdin = stdout = stderr = None

    def __init__(self, args: list[str], pid: int, status_fd: int) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self._status = status_fd  # the server writes the exit status here, then closes it

    def _read_status(self, timeout: float | None) -> bool:
        if self.returncode is not None:
            return True
        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return False
        data = b""
        while chunk := os.read(self._status, 64):
            data += chunk
        os.close(self._status)
        # No status: the server died and the process went with it (killed below).
        self.returncode = int(data) if data.strip() else -signal.SIGKILL
        return True

    def poll(self) -> int | None:
        self._read_status(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._read_status(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:  # exited since the poll; its status is on its way
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Client:
    """This process's connection to its fork server (started on first use)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.env = dict(os.environ)
        self.server = subprocess.Popen(
            [sys.executable, "-u", "-m", "tests.forkserver", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=ROOT,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = mine
        self.sock.settimeout(300)  # the imports took ~20 s at load 40
        try:
            reply = self.sock.recv(4096)  # "ready" once the imports are done
        except OSError:
            reply = b"(no answer)"
        self.sock.settimeout(None)
        if reply != b"ready":
            self.server.kill()
            self.server.wait()
            raise RuntimeError(f"the fork server did not start: {reply!r}")

    def spawn(self, args: list[str], env: dict[str, str], cwd: str, fds: list[int]) -> Forked:
        status_r, status_w = os.pipe()
        try:
            request = json.dumps({"args": args, "env": env, "cwd": cwd}).encode()
            with self.lock:
                socket.send_fds(self.sock, [request], [*fds, status_w])
                reply = self.sock.recv(4096)
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        if not reply:
            os.close(status_r)
            raise RuntimeError("the fork server has gone")
        return Forked(args, int(reply), status_r)

    def close(self) -> None:
        self.sock.close()  # the server kills what it still runs, then exits
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()


_client: _Client | None = None
_client_lock = threading.Lock()


_failed: list[str] = []  # the server could not start in this process: not again


def _get_client() -> _Client:
    global _client
    with _client_lock:
        if _failed:
            raise RuntimeError(_failed[0])
        if _client is None or _client.pid != os.getpid() or _client.server.poll() is not None:
            try:
                _client = _Client()
            except (OSError, RuntimeError) as exc:
                _failed.append(str(exc))
                raise
            atexit.register(_client.close)
        return _client


def _forkable(cmd: list[str], env: dict[str, str], server_env: dict[str, str]) -> bool:
    if cmd[:3] != [sys.executable, "-m", "boxless"]:
        return False
    keys = (set(env) | set(server_env)) - _IGNORED - set(PER_PROCESS)
    return all(env.get(k) == server_env.get(k) for k in keys)


def popen(
    cmd: list[str],
    *,
    env: dict[str, str],
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    cwd: str | None = None,
) -> Any:
    """``subprocess.Popen(cmd, env=env, stdin=..., stdout=..., stderr=...)``, forked
    from the fork server when it can be (see the module's docstring)."""
    pipes = subprocess.PIPE in (stdin, stdout, stderr)
    fresh = os.environ.get("BOXLESS_TEST_FORKSERVER", "1") == "0" or pipes
    try:
        client = None if fresh else _get_client()
    except (OSError, RuntimeError) as exc:  # no server: the process starts as it always did
        print(f"tests/forkserver.py: starting a fresh interpreter ({exc})", file=sys.stderr)
        client = None
    if client is None or not _forkable(cmd, env, client.env):
        started["fresh"] += 1
        return subprocess.Popen(cmd, env=env, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd)
    started["forked"] += 1
    opened: list[int] = []

    def fd_of(stream: int | IO[Any] | None, default: int) -> int:
        if stream is None:
            return default
        if stream == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR)
            opened.append(fd)
            return fd
        if stream == subprocess.STDOUT:
            return -1  # filled in below
        return stream if isinstance(stream, int) else stream.fileno()

    try:
        fds = [fd_of(stdin, 0), fd_of(stdout, 1), fd_of(stderr, 2)]
        if fds[2] == -1:
            fds[2] = fds[1]
        return client.spawn(cmd[3:], env, cwd or os.getcwd(), fds)
    finally:
        for fd in opened:
            os.close(fd)


# ---------------------------------------------------------------- the server


def _preload() -> None:
    """Import every Boxless module (what `boxless up`, `node` and the CLI import)."""
    import importlib
    import pkgutil

    import boxless

    for module in pkgutil.walk_packages(boxless.__path__, "boxless."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    if threading.active_count() != 1:
        raise RuntimeError(f"an import started a thread: {threading.enumerate()}")
    # What is imported now lives as long as every child: out of the collector's sight,
    # so a child's full collections neither walk it nor write to (copy) its pages.
    gc.collect()
    gc.freeze()


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become ``python -m boxless ARGS``; never returns."""
    code = 1
    try:
        stdin, stdout, stderr = fds[:3]
        for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
            os.dup2(fd, target)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        import runpy

        sys.argv = ["boxless", *request["args"]]
        try:
            runpy.run_module("boxless", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except KeyboardInterrupt:
            # as the interpreter does: die of the signal
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        threading._shutdown()  # type: ignore[attr-defined]  # wait for non-daemon threads
        atexit._run_exitfuncs()
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve(sock: socket.socket) -> None:
    children: dict[int, int] = {}  # pid -> the fd its exit status goes to

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = children.pop(pid, None)
            if fd is not None:
                try:
                    os.write(fd, str(os.waitstatus_to_exitcode(status)).encode())
                except OSError:
                    pass
                os.close(fd)

    try:
        while True:
            ready, _, _ = select.select([sock], [], [], 0.02 if children else 1.0)
            reap()
            if not ready:
                continue
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
            if not message:
                break  # the test process has gone
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                sock.close()
                for fd in children.values():
                    os.close(fd)
                os.close(fds[3])
                _run_child(request, fds[:3])
            for fd in fds[:3]:
                os.close(fd)
            children[pid] = fds[3]
            sock.send(str(pid).encode())
    finally:
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while children and time.monotonic() < deadline:
            reap()
            time.sleep(0.01)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        _preload()
    except BaseException as exc:
        sock.send(f"import failed: {exc!r}".encode()[:4000])
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    sock.send(b"ready")
    serve(sock)


if __name__ == "__main__":
    main()
