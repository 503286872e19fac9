"""Run `boxless up` (a user's node + client + API) as a real process in tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.forkserver import popen

PASS = "correct horse battery staple"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["BOXLESS_PASSPHRASE"] = PASS
    e["PYTHONUNBUFFERED"] = "1"
    return e


def init_user(home: Path, name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "boxless", "init", "--home", str(home), "--name", name, "--yes"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def init_users(homes: dict[str, Path]) -> None:
    """The accounts ``boxless init --home HOME --name NAME --yes`` makes, made in this
    process with a cheap Argon2id (the header records it, so `boxless up` unlocks them
    with it too): a `boxless init` costs ~1.5 CPU-seconds (interpreter start-up and the
    production KDF) and `boxless up` another ~0.25 to unlock. The command itself and
    the production KDF are tested by test_identity_cli.py, test_api.py and test_userdb.py.
    """
    from boxless.cli.common import private_dir
    from boxless.identity.account import create_account
    from boxless.identity.keys import Identity
    from boxless.identity.profile import Profile
    from boxless.identity.seed import generate_phrase
    from boxless.storage.userdb import KdfParams

    cheap = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
    for name, home in homes.items():
        now = time.time()
        private_dir(home)
        identity = Identity.from_phrase(generate_phrase())
        profile = Profile(display_name=name, updated_at=int(now))
        create_account(home, PASS, identity, profile, now, kdf=cheap).close()


@dataclass
class UserProcess:
    name: str
    home: Path
    service_peers: list[str]
    proc: Any = None  # subprocess.Popen or a forked process (tests/forkserver.py)
    url: str = ""
    token: str = ""
    extra_args: list[str] = field(default_factory=list)
    """More `boxless up` options (e.g. ``["--relay"]`` and no service peers: offline)."""
    passphrase_in_env: bool = True
    """False: `boxless up` gets no $BOXLESS_PASSPHRASE (and no terminal): it starts locked."""

    def start(self, timeout: float = 60) -> UserProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> UserProcess:
        """Start `boxless up` without waiting for its API (see :meth:`wait_ready`)."""
        api = self.home / "api.json"
        api.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "boxless",
            "up",
            "--home",
            str(self.home),
            "--log-level",
            "INFO",
        ]
        for p in self.service_peers:
            cmd += ["--service-peer", p]
        cmd += self.extra_args
        log = (self.home / "up.log").open("ab")
        e = env()
        if not self.passphrase_in_env:
            del e["BOXLESS_PASSPHRASE"]
        self.proc = popen(
            cmd, env=e, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        return self

    def wait_ready(self, timeout: float = 60) -> UserProcess:
        """Wait until the launched process has written its API address."""
        assert self.proc is not None
        api = self.home / "api.json"
        deadline = time.monotonic() + timeout
        while not api.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not come up:\n{self.logs()}")
            time.sleep(0.1)
        info = json.loads(api.read_text())
        self.url, self.token = info["url"], info["token"]
        return self

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def logs(self, tail: int = 40) -> str:
        try:
            return "\n".join(
                (self.home / "up.log").read_text(errors="replace").splitlines()[-tail:]
            )
        except FileNotFoundError:
            return "(no log)"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """The API's raw response (for tests that expect an error)."""
        return httpx.request(
            method,
            self.url + "/api/v1" + path,
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.request(method, path, body)
        assert r.status_code < 400, r.text
        return r.json() if r.content else None
