"""TURN on a service node: coturn (Debian ``turnserver``) as a child process.

``boxless node --turn`` writes a coturn config into the node's data dir and runs
``turnserver -c <config>`` until the node stops (cancelling the task kills it).
Credentials follow coturn's TURN REST API (``use-auth-secret``): whoever knows
the node's shared secret (``<data dir>/turn_secret``, mode 0600) mints
short-lived credentials, ``username = "<expiry unix s>:<label>"`` and
``password = base64(HMAC-SHA1(secret, username))``; coturn checks the HMAC and
the expiry, so nothing per user is stored and a leaked credential dies with its
expiry. The relay port range is bounded, multicast and (unless
``allow_loopback``, for tests on one machine) private and loopback peers are
denied, so the relay can't be used to reach the node's own network. TURN only
relays DTLS-SRTP: the fingerprints in the E2EE SDP keep it out of the media.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

from boxless._trio_compat import TaskStatus
from boxless.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "CREDENTIAL_TTL",
    "TurnConfig",
    "load_secret",
    "run_turnserver",
    "turn_credentials",
    "write_turn_config",
]

CREDENTIAL_TTL: Final = 6 * 3600
"""Seconds a minted credential stays valid (a call can outlive the ring)."""
SECRET_FILE: Final = "turn_secret"
CONFIG_FILE: Final = "turnserver.conf"
START_TIMEOUT: Final = 10.0
STOP_GRACE: Final = 5.0
"""Seconds coturn has to exit after SIGTERM before it is killed."""

PRIVATE_RANGES: Final = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "240.0.0.0-255.255.255.255",
    "::",
    "::1",
    # IPv4 inside IPv6: mapped (::ffff:127.0.0.1 is the node's loopback), NAT64, 6to4
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
    "64:ff9b::-64:ff9b::ffff:ffff",
    "2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Where coturn listens and relays; ``host`` is also the advertised address."""

    data_dir: Path
    host: str = "0.0.0.0"
    port: int = 3478
    public_host: str | None = None
    min_port: int = 49152
    max_port: int = 49407
    realm: str = "boxless"
    user_quota: int = 16
    total_quota: int = 512
    allow_loopback: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError("--turn-port must be 1-65535")
        if not 1024 <= self.min_port <= self.max_port < 65536:
            raise ConfigError("the TURN relay port range must be within 1024-65535, min <= max")
        if self.max_port - self.min_port > 16383:
            raise ConfigError("the TURN relay port range is limited to 16,384 ports")

    @property
    def url(self) -> str:
        """``turn:<host>:<port>`` as browsers take it."""
        host = self.public_host or ("127.0.0.1" if self.host == "0.0.0.0" else self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"turn:{host}:{self.port}"


def load_secret(path: Path) -> bytes:
    """The shared secret in ``path`` (created, 32 random bytes hex, mode 0600, if missing)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    value = path.read_text().strip()
    if len(value) < 32:
        raise ConfigError(f"{path}: the TURN secret is too short (32+ characters); delete it")
    return value.encode()


def turn_credentials(
    secret: bytes, label: str, now: float | None = None, ttl: int = CREDENTIAL_TTL
) -> tuple[str, str]:
    """``(username, password)`` per coturn's TURN REST API, valid ``ttl`` seconds."""
    expiry = int(time.time() if now is None else now) + ttl
    username = f"{expiry}:{label}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def write_turn_config(config: TurnConfig) -> Path:
    """Write ``turnserver.conf`` (mode 0600: it holds the secret); its path."""
    secret = load_secret(config.data_dir / SECRET_FILE).decode()
    lines = [
        f"listening-ip={config.host}",
        f"listening-port={config.port}",
        f"min-port={config.min_port}",
        f"max-port={config.max_port}",
        f"realm={config.realm}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        "fingerprint",
        "no-cli",
        "no-tls",
        "no-dtls",
        "no-rfc5780",
        "no-software-attribute",
        "no-multicast-peers",
        f"user-quota={config.user_quota}",
        f"total-quota={config.total_quota}",
        "stale-nonce=600",
        f"pidfile={config.data_dir / 'turnserver.pid'}",
        f"userdb={config.data_dir / 'turndb'}",
        f"log-file={config.data_dir / 'turnserver.log'}",
        "simple-log",
    ]
    if config.host not in ("0.0.0.0", "::"):
        lines.append(f"relay-ip={config.host}")
    if config.allow_loopback:
        lines.append("allow-loopback-peers")
    else:
        lines += [f"denied-peer-ip={r}" for r in PRIVATE_RANGES]
    path = config.data_dir / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def _binary() -> str:
    found = shutil.which("turnserver") or (
        "/usr/bin/turnserver" if os.access("/usr/bin/turnserver", os.X_OK) else None
    )
    if found is None:
        raise ConfigError(
            "--turn needs coturn's turnserver: run scripts/install_coturn.sh "
            "(apt-get install coturn)"
        )
    return found


def _listening(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host == "0.0.0.0" else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((probe, port), timeout=0.5):
            return True
    except OSError:
        return False


async def run_turnserver(
    config: TurnConfig, *, task_status: TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run coturn until cancelled; ``task_status`` gets the TURN URL once it listens.

    Cancelling stops coturn (SIGTERM, then SIGKILL after ``STOP_GRACE`` seconds);
    if this process dies without that (kill -9), coturn gets SIGTERM (see
    :func:`_spawn`)."""
    conf = write_turn_config(config)
    proc = _spawn([_binary(), "-c", str(conf)])
    try:
        with trio.move_on_after(START_TIMEOUT) as waited:
            while not await trio.to_thread.run_sync(_listening, config.host, config.port):
                if proc.poll() is not None:
                    raise ConfigError(
                        f"turnserver exited ({proc.returncode}); see "
                        f"{config.data_dir / 'turnserver.log'}"
                    )
                await trio.sleep(0.05)
        if waited.cancelled_caught:
            raise ConfigError(f"turnserver did not listen on port {config.port} in 10 s")
        task_status.started(config.url)
        await _exited(proc)
        raise ConfigError(
            f"turnserver exited ({proc.returncode}); see {config.data_dir / 'turnserver.log'}"
        )
    finally:
        with trio.CancelScope(shield=True):
            await _stop(proc)


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` so that it dies with this process, however this one dies.

    ``setpriv --pdeathsig TERM`` (util-linux, in every Debian) sets the child's
    PR_SET_PDEATHSIG before it execs coturn: the kernel sends SIGTERM when the
    *thread* that forked it exits. ``trio.run_process`` forks from a worker
    thread, which exits after 10 s idle -- coturn would be killed then -- so
    the fork happens here, on the thread that runs trio, which lives as long as
    the trio run (a fork+exec: a millisecond or two of blocking, once). No
    ``preexec_fn``: it is not safe with threads. Without setpriv coturn still
    runs, and can outlive a kill -9 of the node (a warning says so)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        logger.warning("setpriv (util-linux) not found: coturn may outlive a killed node")
    else:
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    return subprocess.Popen(  # noqa: ASYNC220 - on the trio thread on purpose (docstring)
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # the log is in the data dir
        stderr=subprocess.DEVNULL,
    )


async def _exited(proc: subprocess.Popen[bytes]) -> None:
    """Until ``proc`` exits (a pidfd trio waits on; cancellation leaves it running)."""
    fd = os.pidfd_open(proc.pid)
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)
    proc.wait()


async def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if ``proc`` is still there after ``STOP_GRACE`` s; reaped."""
    if proc.poll() is None:
        proc.terminate()
        with trio.move_on_after(STOP_GRACE):
            await _exited(proc)
        if proc.poll() is None:
            proc.kill()
            await _exited(proc)
