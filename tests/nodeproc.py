"""Run `boxless node` as a real process for integration tests.

Each node listens on 127.0.0.1 with an OS-chosen port, writes its peer id and
addresses to an info file, and is stopped with SIGTERM (killed only if it
does not stop within the deadline). Logs go to a file in the node's data dir,
shown when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.forkserver import popen

START_TIMEOUT = 90.0  # a service node starts in ~2 s; 30 s failed on a loaded machine
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeProcess:
    """One `boxless node` process and how to reach it."""

    name: str
    data_dir: Path
    args: list[str]
    proc: Any = None  # subprocess.Popen or a forked process (tests/forkserver.py)
    info: dict[str, object] = field(default_factory=dict)
    admin_port: int = 0

    @property
    def addr(self) -> str:
        addrs = self.info["addrs"]
        assert isinstance(addrs, list)
        return str(addrs[0])

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "node.log"

    def start(self, extra: list[str] | None = None) -> NodeProcess:
        info_file = self.data_dir / "info.json"
        info_file.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.admin_port:
            self.admin_port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "boxless",
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--data-dir",
            str(self.data_dir),
            "--info-file",
            str(info_file),
            "--admin",
            f"127.0.0.1:{self.admin_port}",
            *self.args,
            *(extra or []),
        ]
        log = self.log_path.open("ab")
        self.proc = popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env())
        deadline = time.monotonic() + START_TIMEOUT
        while not info_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.logs()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not start in {START_TIMEOUT}s:\n{self.logs()}")
            time.sleep(0.05)
        self.info = json.loads(info_file.read_text())
        return self

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT}s") from None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def logs(self, tail: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-tail:])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BOXLESS_NODE_PASSPHRASE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a `boxless` subcommand to completion and return its output."""
    return subprocess.run(
        [sys.executable, "-m", "boxless", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        check=False,
    )
