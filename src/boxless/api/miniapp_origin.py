"""The app origin: installed mini-app bundles served on their own port (docs/miniapps.md).

The web UI frames ``<base>/<app id>/<entry>`` in ``<iframe sandbox="allow-scripts">``;
``<base>`` is ``http://127.0.0.1:<port>/a/<random secret>`` so no other local
web page can list or probe installed apps. Every response carries a CSP that
allows nothing but the app's own files: no network (``connect-src 'none'``),
no remote scripts, images only from the bundle, no forms, no plugins, framed
only by the Boxless UI. Files come from a verified bundle in the encrypted
database, never from the disk. The bridge SDK for app authors is public at
``/sdk/boxless-app.js``.

Every HTML page gets the runtime lock (``boxless.miniapps.runtime``) as its first
script and every script gets it as its first line, so any realm that runs app code
has lost WebRTC and frames first; ``script-src`` allows only that app's own files,
the SDK and the runtime. Prepared files are kept per app (the bundle is verified
once, when first served after install or restart).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from importlib import resources
from typing import Any

import trio
from starlette.types import Receive, Scope, Send

from boxless.client.miniapps import MiniApps, NoSuchApp
from boxless.miniapps.manifest import APP_ID_PATTERN as APP_ID
from boxless.miniapps.runtime import RUNTIME_JS, RUNTIME_PATH, RUNTIME_TAG, inject_html, prefix_js

__all__ = ["AppOrigin", "app_csp", "start_app_origin", "version_tag"]

_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "ico": "image/x-icon",
    "woff2": "font/woff2",
    "txt": "text/plain; charset=utf-8",
}


_CACHE_FILES = 256  # prepared (runtime-locked) files kept, all apps together


def version_tag(archive_sha256: bytes) -> str:
    """The version part of an app's versioned folder ``<id>@<tag>`` (the UI builds it
    from the listing's ``sha256``)."""
    return archive_sha256.hex()[:16]


def app_csp(ui_origin: str, scripts: str = "'self'") -> str:
    """The app origin's CSP; ``scripts``: the script sources (one app's files, the
    SDK, the runtime). No child realm of any kind, sandboxed even if framed without
    the attribute."""
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self'; "
        "img-src 'self' data:; font-src 'self'; media-src 'self'; connect-src 'none'; "
        "frame-src 'none'; child-src 'none'; fenced-frame-src 'none'; worker-src 'none'; "
        "object-src 'none'; manifest-src 'none'; form-action 'none'; base-uri 'none'; "
        f"sandbox allow-scripts; frame-ancestors {ui_origin}"
    )


class AppOrigin:
    """The ASGI app of the app origin (GET/HEAD only, Host checked)."""

    def __init__(self, miniapps: MiniApps, ui_origin: str, host: str) -> None:
        self.miniapps, self.ui_origin, self.host = miniapps, ui_origin, host
        self.secret = secrets.token_urlsafe(16)
        self._headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-dns-prefetch-control", b"off"),
            (b"referrer-policy", b"no-referrer"),
            (
                b"permissions-policy",
                b"camera=(), microphone=(), geolocation=(), usb=(), payment=(), "
                b"clipboard-read=(), display-capture=()",
            ),
        ]
        sdk = resources.files("boxless.miniapps").joinpath("sdk/boxless-app.js")
        self._sdk = prefix_js(sdk.read_bytes())
        self._sdk_etag = f'"{hashlib.sha256(self._sdk).hexdigest()[:24]}"'.encode()
        self._prepared: dict[tuple[bytes, str], bytes] = {}

    def _csp(self, folder: str | None) -> bytes:
        """The CSP; ``folder``: the app's folder of the request (``<id>`` or
        ``<id>@<version tag>``), whose scripts may run."""
        origin = f"http://{self.host}"
        scripts = f"{origin}/sdk/boxless-app.js {origin}{RUNTIME_PATH}"
        if folder is not None:
            scripts = f"{origin}/a/{self.secret}/{folder}/ {scripts}"
        return app_csp(self.ui_origin, scripts).encode()

    def _prepare(self, sha: bytes, name: str, data: bytes, ext: str) -> bytes:
        """The file as served: the runtime first in HTML and scripts (kept per file)."""
        if ext not in ("html", "htm", "js", "mjs"):
            return data
        key = (sha, name)
        ready = self._prepared.get(key)
        if ready is None:
            ready = inject_html(data) if ext.startswith("htm") else prefix_js(data)
            if len(self._prepared) >= _CACHE_FILES:
                self._prepared.pop(next(iter(self._prepared)))
            self._prepared[key] = ready
        return ready

    def base(self, bound: str) -> str:
        return f"{bound}/a/{self.secret}"

    async def _send(
        self,
        send: Send,
        status: int,
        body: bytes,
        ctype: str,
        head: bool,
        etag: bytes = b"",
        folder: str | None = None,
        immutable: bool = False,
    ) -> None:
        headers = [*self._headers, (b"content-security-policy", self._csp(folder))]
        headers.append((b"content-type", ctype.encode()))
        # a versioned URL never changes: no revalidation on the next open
        cache = b"max-age=31536000, immutable" if immutable else b"no-cache"
        headers.append((b"cache-control", cache))
        headers.append((b"content-length", str(len(body)).encode()))
        if etag:
            headers.append((b"etag", etag))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})

    def _lookup(self, path: str) -> tuple[int, bytes, str, bytes, str | None]:
        """(status, body, content type, etag: the signed archive's hash and the
        runtime's, the app's folder). A folder ``<id>@<version tag>`` (the UI's URL:
        the archive's hash) serves only that version, cached for good."""
        if path == "/sdk/boxless-app.js":
            return 200, self._sdk, _TYPES["js"], self._sdk_etag, None
        if path == RUNTIME_PATH:
            return 200, RUNTIME_JS, _TYPES["js"], self._sdk_etag, None
        parts = path.split("/", 4)  # "", "a", secret, app id, file
        if len(parts) != 5 or parts[1] != "a" or not hmac.compare_digest(parts[2], self.secret):
            return 404, b"not found", _TYPES["txt"], b"", None
        folder, name = parts[3], parts[4]
        app_id, _, tag = folder.partition("@")
        if len(app_id) > 100 or not APP_ID.fullmatch(app_id):
            return 404, b"not found", _TYPES["txt"], b"", None
        try:
            bundle = self.miniapps.files(app_id)
        except NoSuchApp:
            return 404, b"no such app", _TYPES["txt"], b"", None
        if tag and tag != version_tag(bundle.archive_sha256):
            return 404, b"not this version", _TYPES["txt"], b"", None
        if name == "boxless-app.js":  # the SDK next to the app's files too
            return 200, self._sdk, _TYPES["js"], self._sdk_etag, folder
        data = bundle.files.get(name)
        if data is None or name in ("manifest.json",):
            return 404, b"not found", _TYPES["txt"], b"", folder
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        etag = f'"{bundle.archive_sha256.hex()[:24]}-{RUNTIME_TAG}"'.encode()
        body = self._prepare(bundle.archive_sha256, name, data, ext)
        ctype = "text/html; charset=utf-8" if ext == "htm" else _TYPES.get(ext)
        return 200, body, ctype or "application/octet-stream", etag, folder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        head = scope["method"] == "HEAD"
        if headers.get(b"host", b"").decode("latin-1").lower() != self.host:
            await self._send(send, 421, b"wrong host", _TYPES["txt"], head)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self._send(send, 405, b"read only", _TYPES["txt"], head)
            return
        path = scope["path"]
        status, body, ctype, etag, folder = self._lookup(path)
        immutable = status == 200 and (path == RUNTIME_PATH or "@" in (folder or ""))
        if etag and headers.get(b"if-none-match") == etag:  # unchanged since the last open
            await self._send(send, 304, b"", ctype, True, etag, folder, immutable)
            return
        await self._send(send, status, body, ctype, head, etag, folder, immutable)


async def start_app_origin(
    nursery: trio.Nursery, miniapps: MiniApps, ui_origin: str, bind_host: str = "127.0.0.1"
) -> str:
    """Serve the app origin on a free port of ``bind_host`` in ``nursery``; its base
    URL (also set as ``miniapps.app_origin``)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{bind_host}:0"]
    config.accesslog = None
    config.errorlog = None
    origin_app = AppOrigin(miniapps, ui_origin, "")
    binds: Any = await nursery.start(serve, origin_app, config)
    bound = str(binds[0])
    origin_app.host = bound.removeprefix("http://").lower()
    miniapps.app_origin = origin_app.base(bound)
    return bound
