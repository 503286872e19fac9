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
4. **Token** for ``/api/`` (``Authorization: Bearer``, or ``?token=`` for
   WebSockets and the web UI's first load). Static UI files carry no secrets.

Every HTTP response, refusals included, gets the security headers of
:func:`security_headers`: a strict Content-Security-Policy (scripts, styles,
connections only from this origin; nothing may frame the UI), ``nosniff`` and
``no-referrer``.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boxless.api.errors import error_response
from boxless.api.params import too_large

__all__ = ["MAX_REQUEST_BYTES", "Guard", "allowed_hosts", "security_headers"]

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # the largest handler limit (2 MiB QR upload) and room
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


def security_headers(host: str) -> list[tuple[bytes, bytes]]:
    """The headers every response carries; ``host`` is the (checked) Host header."""
    websocket = f" ws://{host}" if host else ""  # CSP2 browsers: 'self' does not cover ws:
    csp = (
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


class Guard:
    """Host, Origin, size and token checks, and the security headers (see the module)."""

    def __init__(self, app: ASGIApp, token: str, origin: str) -> None:
        self.app = app
        self.token = token
        self.origin = origin
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
        if denial is not None:
            await _deny(scope, receive, send, *denial)
            return
        if scope["type"] == "http":
            receive = _counted(receive)
        await self.app(scope, receive, send)

    def _check(
        self, scope: Scope, headers: dict[str, str], host: str
    ) -> tuple[int, str, str] | None:
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
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
            return 413, "too_large", too_large(MAX_REQUEST_BYTES).message
        if scope["type"] == "http" and not scope["path"].startswith("/api/"):
            return None  # static UI files: no secrets in them
        supplied = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not supplied:
            query = scope.get("query_string", b"").decode("latin-1")
            supplied = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("token", "")
        if not hmac.compare_digest(supplied.encode(), self.token.encode()):
            return (
                401,
                "unauthorized",
                "missing or wrong API token: open the URL `boxless up` printed",
            )
        return None


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
