"""Web sessions: an HttpOnly cookie that outlives the tab, the node and the token.

Theory of operation
-------------------
``boxless up`` prints a link with a one-time-use-per-run API token. The web UI
trades it (``POST /api/v1/session`` with ``Authorization: Bearer <token>``)
for a **session cookie**: a random 32-byte id, sent back as
``boxless_session_<port>`` with ``HttpOnly; SameSite=Strict; Path=/`` (and
``Secure`` over https). The id itself is never stored: :class:`SessionBook`
keeps the SHA-256 of each id, with when it was made and last used, in
``<home>/web-sessions.json`` (0600), so a session survives a new tab, a browser
restart and a node restart, while a copy of the file opens nothing.

A session ends after :data:`SESSION_IDLE_S` without use, on logout
(``DELETE /api/v1/session``) or on "log out everywhere"
(``DELETE /api/v1/sessions``). At most :data:`MAX_SESSIONS` live; a new one
beyond that pushes out the least recently used.

Without the link, the passphrase also opens a session
(``POST /api/v1/session/unlock {passphrase}``): the only ``/api/`` route that
needs no credential. It is what the lock screen calls, and, after a restart
without the passphrase (``boxless up`` serving the locked app of
:mod:`boxless.api.locked`), it is what opens the account. Guessing is bounded
by :class:`Throttle` (:data:`UNLOCK_FAILURES` wrong passphrases per
:data:`UNLOCK_WINDOW_S`, then 429 whatever is sent) and by Argon2id, run in a
worker thread, one try at a time.

:class:`~boxless.api.guard.Guard` checks the cookie (and CSRF: a cookie
request that changes state must prove it comes from our own page);
:class:`SessionEndpoints` serves the routes above in front of whichever app
:class:`~boxless.api.onboarding.AppSwitch` holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from boxless.api.errors import ApiError, error_response
from boxless.api.params import parse_body
from boxless.errors import BoxlessError
from boxless.storage.userdb import WrongPassphrase

__all__ = [
    "MAX_SESSIONS",
    "SESSION_FILE",
    "SESSION_IDLE_S",
    "UNLOCK_FAILURES",
    "UNLOCK_WINDOW_S",
    "CookieSpec",
    "SessionBook",
    "SessionEndpoints",
    "Throttle",
    "Unlock",
]

logger = logging.getLogger(__name__)

SESSION_FILE = "web-sessions.json"
SESSION_IDLE_S = 30 * 24 * 3600
MAX_SESSIONS = 32
TOUCH_EVERY_S = 3600  # "last used" is written at most hourly (and the cookie renewed)
UNLOCK_FAILURES = 5
UNLOCK_WINDOW_S = 60.0
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)

Unlock = Callable[[str], Awaitable[None]]
"""Open (or, once open, check) the account with a passphrase; raises WrongPassphrase."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


@dataclass(slots=True)
class _Entry:
    created: float
    used: float


class SessionBook:
    """The live sessions, by the SHA-256 of their id, kept in ``path`` (None: memory).

    Times are Unix seconds passed in by the caller.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        idle_s: float = SESSION_IDLE_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.path = path
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._entries: dict[str, _Entry] = {}
        if path is not None and path.exists():
            self._load(path)

    def __len__(self) -> int:
        return len(self._entries)

    def create(self, now: float) -> str:
        """A new session; returns its id (for the cookie only: it is never stored)."""
        self._expire(now)
        while len(self._entries) >= self.max_sessions:
            oldest = min(self._entries, key=lambda d: self._entries[d].used)
            del self._entries[oldest]
        raw = secrets.token_urlsafe(32)
        self._entries[_digest(raw)] = _Entry(now, now)
        self._save()
        return raw

    def check(self, raw: str, now: float) -> tuple[str, bool] | None:
        """``(session digest, renewed)`` if ``raw`` is a live session, else None.

        ``renewed``: its "last used" time just moved (hourly), so the caller
        sends the cookie again with a fresh lifetime.
        """
        if not _ID.match(raw):
            return None
        digest = _digest(raw)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now - entry.used > self.idle_s:
            del self._entries[digest]
            self._save()
            return None
        if now - entry.used < TOUCH_EVERY_S:
            return digest, False
        entry.used = now
        self._save()
        return digest, True

    def revoke(self, digest: str) -> bool:
        """End one session (logout); True if it was live."""
        if self._entries.pop(digest, None) is None:
            return False
        self._save()
        return True

    def revoke_all(self) -> int:
        """End every session (log out everywhere); how many there were."""
        count = len(self._entries)
        self._entries.clear()
        self._save()
        return count

    def _expire(self, now: float) -> None:
        for digest in [d for d, e in self._entries.items() if now - e.used > self.idle_s]:
            del self._entries[digest]

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for item in data["sessions"][: self.max_sessions]:
                digest = str(item["sha256"])
                if not re.fullmatch(r"[0-9a-f]{64}", digest):
                    raise ValueError("not a SHA-256")
                self._entries[digest] = _Entry(float(item["created"]), float(item["used"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Only logins are lost: each browser asks for the passphrase again.
            logger.warning("ignoring the unreadable web session file %s: %s", path, exc)
            self._entries.clear()

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "version": 1,
            "sessions": [
                {"sha256": d, "created": e.created, "used": e.used}
                for d, e in self._entries.items()
            ],
        }
        tmp = self.path.with_name(self.path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


class Throttle:
    """At most ``limit`` failures in any ``window_s``; ``now`` is a monotonic time."""

    def __init__(self, limit: int = UNLOCK_FAILURES, window_s: float = UNLOCK_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: deque[float] = deque(maxlen=limit)

    def retry_after(self, now: float) -> float | None:
        """Seconds to wait before the next try is heard, or None if it may go now."""
        while self._failures and now - self._failures[0] >= self.window_s:
            self._failures.popleft()
        if len(self._failures) < self.limit:
            return None
        return self.window_s - (now - self._failures[0])

    def failed(self, now: float) -> None:
        self._failures.append(now)


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """The session cookie of the API at one origin (its name carries the port:
    cookies ignore ports, so two accounts on one machine would overwrite each
    other's)."""

    name: str
    secure: bool

    @classmethod
    def for_origin(cls, origin: str) -> CookieSpec:
        parts = urlsplit(origin)
        return cls(f"boxless_session_{parts.port or 80}", parts.scheme == "https")

    def header(self, value: str, max_age: int, scope: Scope) -> tuple[bytes, bytes]:
        """The ``Set-Cookie`` header; ``max_age`` 0 clears the cookie."""
        attrs = [f"{self.name}={value}", "HttpOnly", "SameSite=Strict", "Path=/"]
        attrs.append(f"Max-Age={max_age}")
        if self.secure or scope.get("scheme") in ("https", "wss"):
            attrs.append("Secure")
        return b"set-cookie", "; ".join(attrs).encode("latin-1")

    def read(self, cookie_header: str, limit: int = 4) -> list[str]:
        """The values of our cookie in a ``Cookie`` header (the first ``limit``).

        More than one may come: a page on another port of this host can set a
        cookie of the same name for a longer path, which the browser sends first.
        """
        values = []
        for part in cookie_header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name == self.name:
                values.append(value)
                if len(values) == limit:
                    break
        return values


class UnlockBody(BaseModel):
    passphrase: str = Field(min_length=1, max_length=1024)


SESSION_PATHS = frozenset({"/api/v1/session", "/api/v1/sessions", "/api/v1/session/unlock"})
PUBLIC_PATHS = frozenset({"/api/v1/session/unlock"})


class SessionEndpoints:
    """The session routes (see the module), in front of ``app`` for every other path.

    Runs behind :class:`~boxless.api.guard.Guard`, which has already checked
    the caller (except on the unlock route) and put ``boxless.auth``
    (``"token"`` or ``"cookie"``) and ``boxless.session`` (the digest) in the scope.
    """

    def __init__(
        self,
        app: ASGIApp,
        book: SessionBook,
        unlock: Unlock,
        origin: str,
        *,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.book = book
        self.unlock = unlock
        self.cookie = CookieSpec.for_origin(origin)
        self.throttle = throttle or Throttle()
        self.clock = clock
        self.monotonic = monotonic
        self._one_at_a_time = trio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SESSION_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._route(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message)
        await response(scope, receive, send)

    async def _route(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        if path == "/api/v1/session/unlock" and method == "POST":
            return await self._unlock(request)
        if path == "/api/v1/session" and method == "POST":
            return self._open(request, 201, {"session": True})
        if path == "/api/v1/session" and method == "DELETE":
            digest = request.scope.get("boxless.session")
            if digest is not None:
                self.book.revoke(digest)
            return self._closed(request, {"ended": 1 if digest else 0})
        if path == "/api/v1/sessions" and method == "DELETE":
            return self._closed(request, {"ended": self.book.revoke_all()})
        raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")

    def _open(self, request: Request, status: int, body: dict[str, object]) -> Response:
        previous = request.scope.get("boxless.session")
        if previous is not None:
            self.book.revoke(previous)  # a new id whenever a session is (re)opened
        raw = self.book.create(self.clock())
        name, value = self.cookie.header(raw, int(self.book.idle_s), request.scope)
        response = JSONResponse({**body, "idle_days": int(self.book.idle_s // 86400)}, status)
        response.raw_headers.append((name, value))
        response.headers["cache-control"] = "no-store"
        return response

    def _closed(self, request: Request, body: dict[str, object]) -> Response:
        response = JSONResponse(body)
        response.raw_headers.append(self.cookie.header("", 0, request.scope))
        return response

    async def _unlock(self, request: Request) -> Response:
        body = await parse_body(request, UnlockBody)
        async with self._one_at_a_time:  # one Argon2 at a time: guesses queue, then wait
            wait = self.throttle.retry_after(self.monotonic())
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                response = error_response(
                    429,
                    "too_many_tries",
                    f"too many wrong passphrases: wait {seconds} s and try again",
                )
                response.headers["retry-after"] = str(seconds)
                return response
            try:
                await self.unlock(body.passphrase)
            except WrongPassphrase:
                self.throttle.failed(self.monotonic())
                logger.warning("web unlock: wrong passphrase")
                raise ApiError(
                    403,
                    "wrong_passphrase",
                    "that passphrase does not open this account; check it (it is"
                    " case-sensitive) and try again",
                ) from None
            except BoxlessError as exc:
                raise ApiError(409, "cannot_unlock", str(exc)) from None
        logger.info("web unlock: a new session")
        return self._open(request, 201, {"unlocked": True})
