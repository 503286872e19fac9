"""The runtime lock the app origin puts first in every realm (docs/miniapps.md).

``sdk/boxless-runtime.js`` removes WebRTC and the other socket APIs the CSP does not
govern, non-configurably, and keeps frames (fresh realms) out of the page. The app
origin serves it as the first ``<script>`` of every HTML file (:func:`inject_html`)
and as the first line of every script (:func:`prefix_js`): the CSP lets only the
app origin's scripts run (no inline, no eval), so whatever realm runs app code has
run the lock first. Pure functions over bytes.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

__all__ = ["RUNTIME_JS", "RUNTIME_PATH", "RUNTIME_TAG", "inject_html", "prefix_js"]

RUNTIME_PATH = "/rt/boxless-runtime.js"


def _compact(source: str) -> bytes:
    """The runtime on one line (so an app script's line numbers move by none):
    whole-line and trailing ``//`` comments dropped, lines joined by a space."""
    lines = []
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        lines.append(re.sub(r"\s+//\s.*$", "", stripped))
    return " ".join(lines).encode()


RUNTIME_JS = _compact(
    resources.files("boxless.miniapps").joinpath("sdk/boxless-runtime.js").read_text("utf-8")
)
RUNTIME_TAG = hashlib.sha256(RUNTIME_JS).hexdigest()[:8]  # part of the served files' ETag

# versioned: the app origin serves it cached for good
_SCRIPT = f'<script src="{RUNTIME_PATH}?v={RUNTIME_TAG}"></script>'.encode()
_DOCTYPE = re.compile(rb"^(\xef\xbb\xbf)?\s*(<!--.*?-->\s*)*<!doctype[^>]*>", re.I | re.S)
_STRICT = re.compile(rb"^(\xef\xbb\xbf)?(\s|//[^\n]*\n|/\*.*?\*/)*(['\"])use strict\3", re.S)


def inject_html(body: bytes) -> bytes:
    """The page with the runtime's ``<script>`` first: right after the doctype (the
    page stays in standards mode), before anything the app wrote."""
    m = _DOCTYPE.match(body)
    at = m.end() if m else 0
    return body[:at] + _SCRIPT + body[at:]


def prefix_js(body: bytes) -> bytes:
    """The script with the runtime on its first line. A script that starts with a
    ``"use strict"`` directive keeps it: the directive goes first again."""
    head = b'"use strict";' if _STRICT.match(body) else b""
    return head + RUNTIME_JS + b";" + body
