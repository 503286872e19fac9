"""The test suite's fork server (tests/forkserver.py) behaves as a fresh `python -m
boxless` would: output, exit status, signals, environment; and starts a fresh
interpreter when a forked one could differ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forkserver
from tests.forkserver import Forked, popen


def _run(args: list[str], env: dict[str, str], out: Path) -> tuple[object, int, str]:
    with out.open("wb") as f:
        proc = popen(
            [sys.executable, "-m", "boxless", *args], env=env, stdout=f, stderr=subprocess.STDOUT
        )
        code = proc.wait(60)
    return proc, code, out.read_text()


@pytest.mark.skipif(os.environ.get("BOXLESS_TEST_FORKSERVER") == "0", reason="forking is off")
def test_a_forked_boxless_is_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ)
    proc, code, text = _run(["--help"], env, tmp_path / "help.txt")
    assert isinstance(proc, Forked) and code == 0 and "Usage: boxless" in text
    proc, code, text = _run(["no-such-command"], env, tmp_path / "bad.txt")
    assert isinstance(proc, Forked) and code == 2 and "No such command" in text

    # A per-process variable is the child's own; the server's stays as it was.
    env_with = {**env, "BOXLESS_PASSPHRASE": "only for this child"}
    proc, code, _ = _run(["--help"], env_with, tmp_path / "env.txt")
    assert isinstance(proc, Forked) and code == 0
    assert forkserver._get_client().env.get("BOXLESS_PASSPHRASE") == env.get("BOXLESS_PASSPHRASE")

    # Any other difference could be read at import time: a fresh interpreter.
    proc, code, text = _run(["--help"], {**env, "BOXLESS_HOME": str(tmp_path)}, tmp_path / "h.txt")
    assert isinstance(proc, subprocess.Popen) and code == 0 and "Usage: boxless" in text

    # Signals reach the process itself, and its status says which one ended it.
    node = popen(
        [sys.executable, "-m", "boxless", "node", "--listen", "/ip4/127.0.0.1/tcp/0",
         "--data-dir", str(tmp_path / "node")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert isinstance(node, Forked) and node.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        node.wait(0.2)
    node.send_signal(signal.SIGKILL)
    assert node.wait(30) == -signal.SIGKILL and node.poll() == -signal.SIGKILL
