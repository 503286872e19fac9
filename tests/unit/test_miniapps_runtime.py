"""The runtime lock goes first in every page and script the app origin serves."""

from __future__ import annotations

from boxless.miniapps.runtime import RUNTIME_JS, RUNTIME_PATH, RUNTIME_TAG, inject_html, prefix_js

TAG = f'<script src="{RUNTIME_PATH}?v={RUNTIME_TAG}"></script>'.encode()


def test_the_runtime_script_is_the_first_script_of_a_page() -> None:
    assert inject_html(b"<!doctype html><html><script src=a.js></script>") == (
        b"<!doctype html>" + TAG + b"<html><script src=a.js></script>"
    )
    # a comment before the doctype, odd case, a BOM: still after the doctype
    page = b"\xef\xbb\xbf <!-- x --> <!DOCTYPE HTML>\n<script src=a.js></script>"
    out = inject_html(page)
    assert out.index(TAG) < out.index(b"a.js") and out.index(b"<!DOCTYPE") < out.index(TAG)
    # no doctype: the very first bytes; a doctype later in the page does not count
    assert inject_html(b"<script src=a.js></script><!doctype html>").startswith(TAG)


def test_every_script_starts_with_the_lock_and_keeps_its_strict_mode() -> None:
    assert b"\n" not in RUNTIME_JS  # one line: the app's line numbers do not move
    assert prefix_js(b"let x = 1;") == RUNTIME_JS + b";let x = 1;"
    strict = prefix_js(b"// app\n/* c */ 'use strict';\nx = 1;")
    assert strict.startswith(b'"use strict";' + RUNTIME_JS)
    assert not prefix_js(b"x('use strict');").startswith(b'"use strict"')
    for name in ("RTCPeerConnection", "webkitRTCPeerConnection", "WebTransport", "iframe"):
        assert name.encode() in RUNTIME_JS
