"""The checks every request to the local API passes before any route runs.

Theory of operation
-------------------
:class:`Guard` is the one ASGI middleware in front of both the full API and the
onboarding app. In order, for HTTP and WebSocket alike:

1. **Host** (DNS-rebinding defence). A page on ``rebind.evil`` whose name
   later resolves to 127.0.0.1 reaches this server as same-origin for the
   browser, but its requests carry ``Host: rebind.evil:PORT``. Only the
   loopback names (``127.0.0.1``, ``localhost``, ``[::1]``) and the configured
   bind host, each at our port, are answered. With a wildcard bind (only with
   ``--api-unsafe-public``) any IP literal at our port is too: an IP address
   cannot be rebound, only a name can.
2. **Origin**: a request with an ``Origin`` must come from the API's own
   origin (``http://`` + the checked Host, or the origin we were given).
   No CORS for anyone else, and no cookies, so a page elsewhere can neither
   read nor write.
3. **Size**: a body whose ``Content-Length`` exceeds :data:`MAX_REQUEST_BYTES`
   is refused at once (413); a chunked one is counted while it streams and
   stops with the same 413 as soon as it passes the limit. Handlers cap
   further (:func:`boxless.api.params.parse_body`: 1 MiB of JSON).
4. **Credential** for ``/api/``: the token (``Authorization: Bearer``, or
   ``?token=`` for WebSockets; what the CLI uses), or, when the guard is given
   a :class:`~boxless.api.session.SessionBook`, the session cookie of
   :mod:`boxless.api.session`. A wrong token is refused even with a good
   cookie. Static UI files carry no secrets.
5. **CSRF** (cookie only: a browser attaches cookies by itself, a token never):
   a cookie request that may change state (any method but GET/HEAD/OPTIONS,
   and every WebSocket, which no CORS protects) must show it comes from our
   own page: an ``Origin`` (already checked to be ours in step 2) or, where a
   browser sends none, ``Sec-Fetch-Site: same-origin``. SameSite=Strict alone
   is not enough: another port of 127.0.0.1 is the *same site*. The unlock
   route, the one ``/api/`` path open without a credential, is held to the
   same rule (no login CSRF, no guessing from other pages). Any cookie request
   that Fetch Metadata marks ``same-site`` or ``cross-site`` (made by another
   page, a read included) is refused too.

A cookie that passed is turned into the token for the app behind (so the
full API and the onboarding and locked apps, each with its own token-only
guard, need not know about cookies), and the session's digest goes in the
scope as ``boxless.session`` for logout.

Every HTTP response, refusals included, gets the security headers of
:func:`security_headers`: a strict Content-Security-Policy (scripts, styles,
connections only from this origin; nothing may frame the UI), ``nosniff`` and
``no-referrer``.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxless.api.errors import error_response
from boxless.api.params import too_large
from boxless.api.session import PUBLIC_PATHS, CookieSpec, SessionBook

__all__ = ["MAX_REQUEST_BYTES", "Guard", "allowed_hosts", "security_headers"]

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # the largest handler limit (2 MiB QR upload) and room
MAX_UPLOAD_BYTES = 2 * 1024**3 + 1024 * 1024  # an attachment (api/attachments.py caps it exactly)
_UPLOAD_PATH = re.compile(r"/api/v1/(contacts|groups)/[0-9a-f]{64}/attachments")


def request_limit(scope: Scope) -> int:
    """The body size a request may have: a file upload, or everything else (JSON, a QR picture)."""
    if scope.get("method") == "POST" and _UPLOAD_PATH.fullmatch(scope.get("path", "")):
        return MAX_UPLOAD_BYTES
    if scope.get("method") == "PUT" and scope.get("path") == "/api/v1/onboarding/backup":
        return MAX_UPLOAD_BYTES  # a backup file (first run: restore it)
    if scope.get("method") == "POST" and scope.get("path") == "/api/v1/miniapps":
        return 9 * 1024 * 1024  # a mini-app bundle (8 MiB and its tar headers)
    return MAX_REQUEST_BYTES
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "[::]", "::", "")


def allowed_hosts(origin: str) -> tuple[frozenset[str], int, bool]:
    """``(Host values we answer to, our port, whether the bind is a wildcard)`` for
    the API served at ``origin`` (e.g. ``http://127.0.0.1:8765``)."""
    parts = urlsplit(origin)
    port = parts.port or 80
    bind = (parts.hostname or "").lower()
    bind = f"[{bind}]" if ":" in bind else bind
    names = {*LOOPBACK_NAMES, bind} - set(WILDCARD_HOSTS)
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(hosts), port, bind in WILDCARD_HOSTS


def _is_ip_literal_at(host: str, port: int) -> bool:
    name, sep, given = host.rpartition(":")
    if not sep or given != str(port):
        return False
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") else name)
    except ValueError:
        return False
    return True


FRAME_SOURCES: list[str] = []  # the mini-app origin(s) the UI frames (api/miniapp_origin.py)


def security_headers(host: str) -> list[tuple[bytes, bytes]]:
    """The headers every response carries; ``host`` is the (checked) Host header."""
    websocket = f" ws://{host}" if host else ""  # CSP2 browsers: 'self' does not cover ws:
    # frames: only the mini-app origin (not 'self': an app may not navigate its frame here)
    frames = f"frame-src {' '.join(FRAME_SOURCES)}; " if FRAME_SOURCES else ""
    csp = (
        f"{frames}"
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"connect-src 'self' blob:{websocket}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return [
        (b"content-security-policy", csp.encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


Denial = tuple[int, str, str]


class Guard:
    """Host, Origin, size and credential checks, and the security headers (see the module).

    With ``sessions``, the session cookie is a credential too (``clock``: Unix
    seconds, for session expiry).
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        origin: str,
        sessions: SessionBook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.token = token
        self.origin = origin
        self.sessions = sessions
        self.clock = clock
        self.cookie = CookieSpec.for_origin(origin)
        self.hosts, self.port, self.wildcard = allowed_hosts(origin)

    def host_allowed(self, host: str) -> bool:
        return host in self.hosts or (self.wildcard and _is_ip_literal_at(host, self.port))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope["headers"])
        host = headers.get("host", "").lower()
        if scope["type"] == "http":
            send = _with_headers(send, security_headers(host if self.host_allowed(host) else ""))
        denial = self._check(scope, headers, host)
        if denial is None and (scope["type"] == "websocket" or scope["path"].startswith("/api/")):
            denial, scope, renewed = self._authenticate(scope, headers)
            if renewed is not None and self.sessions is not None:
                max_age = int(self.sessions.idle_s)
                send = _with_headers(send, [self.cookie.header(renewed, max_age, scope)])
        if denial is not None:
            await _deny(scope, receive, send, *denial)
            return
        if scope["type"] == "http":
            receive = _counted(receive, request_limit(scope))
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, headers: dict[str, str], host: str) -> Denial | None:
        if not self.host_allowed(host):
            return (
                403,
                "bad_host",
                f"this API answers only at {self.origin} (Host {host or 'missing'} refused, a "
                "defence against DNS rebinding): open the URL `boxless up` printed",
            )
        origin = headers.get("origin")
        if origin is not None and origin not in (self.origin, f"http://{host}"):
            return 403, "bad_origin", "requests from other sites are refused"
        length, limit = headers.get("content-length", "0"), request_limit(scope)
        if not length.isdigit() or int(length) > limit:
            return 413, "too_large", too_large(limit).message
        return None  # static UI files (no secrets in them) need nothing more

    def _authenticate(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[Denial | None, Scope, str | None]:
        """``(denial, scope for the app, session id whose cookie to renew)``."""
        supplied = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not supplied:
            query = scope.get("query_string", b"").decode("latin-1")
            supplied = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("token", "")
        if supplied:
            if not hmac.compare_digest(supplied.encode(), self.token.encode()):
                return _UNAUTHORIZED, scope, None
            return None, {**scope, "boxless.auth": "token"}, None
        if self.sessions is None:
            return _UNAUTHORIZED, scope, None
        public = scope["type"] == "http" and scope["path"] in PUBLIC_PATHS
        values = self.cookie.read(headers.get("cookie", ""))
        if not values and not public:
            return _UNAUTHORIZED, scope, None
        changes = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if (changes and not _same_origin(headers)) or _from_elsewhere(headers):
            return (
                (
                    403,
                    "origin_required",
                    "this request must come from the Boxless page itself (no Origin header)",
                ),
                scope,
                None,
            )
        if not values:
            return None, scope, None  # the unlock route
        now = self.clock()
        found, raw = None, ""
        for raw in values:
            found = self.sessions.check(raw, now)
            if found is not None:
                break
        if found is None:
            if public:
                return None, scope, None  # a stale cookie may still unlock
            return (
                (
                    401,
                    "session_expired",
                    "your login has ended (logged out, or unused for 30 days): enter your"
                    " passphrase, or open the link `boxless up` printed",
                ),
                scope,
                None,
            )
        digest, renewed = found
        inner = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
        inner.append((b"authorization", f"Bearer {self.token}".encode("latin-1")))
        scope = {**scope, "headers": inner, "boxless.auth": "cookie", "boxless.session": digest}
        return None, scope, raw if renewed else None


_UNAUTHORIZED: Denial = (
    401,
    "unauthorized",
    "missing or wrong API token: open the URL `boxless up` printed",
)


def _from_elsewhere(headers: dict[str, str]) -> bool:
    """Fetch Metadata says another page made this request (even a read: an
    image or a script tag on another port of this host carries our cookie)."""
    return headers.get("sec-fetch-site") in ("same-site", "cross-site")


def _same_origin(headers: dict[str, str]) -> bool:
    """Whether a request shows it comes from our own page. A present Origin has
    already been checked to be ours; without one, Fetch Metadata must say so."""
    return "origin" in headers or headers.get("sec-fetch-site") == "same-origin"


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            added = [(k, v) for k, v in extra if k not in present]
            message = {**message, "headers": [*message.get("headers", []), *added]}
        await send(message)

    return wrapped


def _counted(receive: Receive, limit: int = MAX_REQUEST_BYTES) -> Receive:
    """``receive`` raising a 413 ApiError once the body passes ``limit`` bytes (a
    chunked upload has no Content-Length to check up front)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return wrapped


async def _deny(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4000 + status})
        return
    await error_response(status, code, message)(scope, receive, send)
