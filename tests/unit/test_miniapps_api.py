"""The mini-app API and the app origin of a real client (ASGI, virtual time): install
refusals, the bridge's permission flow and flood suspension, the app origin's CSP,
Host check and what it will not serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import trio
import trio.testing

from boxless.api.miniapp_origin import AppOrigin, version_tag
from boxless.identity.keys import Identity
from boxless.miniapps import pack_files
from boxless.miniapps.runtime import RUNTIME_PATH, RUNTIME_TAG
from tests.asgi_api import ORIGIN, api_client
from tests.memnet_fixtures import memnet

APP = "org.example.shop"
DEV = Identity.from_private_bytes(bytes(range(32)))


def _signed_anyway(files: dict[str, bytes], dev: Identity) -> bytes:
    """What an attacker's own packer makes: signed, with no check of the manifest."""
    import hashlib

    from boxless.miniapps.bundle import _DOMAIN, _tar

    digest = hashlib.sha256(_tar(files)).digest()
    sig = {
        "alg": "ed25519",
        "key": dev.public_key.hex(),
        "archive_sha256": digest.hex(),
        "sig": dev.sign(_DOMAIN + digest).hex(),
    }
    return _tar(files, ("SIGNATURE", json.dumps(sig).encode()))


def _bundle(
    dev: Identity = DEV, version: str = "1.0.0", name: str = "Shop", check: bool = True
) -> bytes:
    manifest = {
        "id": APP,
        "name": name,
        "version": version,
        "icon": "icon.png",
        "entry": "index.html",
        "permissions": ["storage", "user.name"],
        "developer": dev.public_key.hex(),
        "bot": "00" * 32,
    }
    files = {
        "manifest.json": json.dumps(manifest).encode(),
        "index.html": b"<p>hi</p>",
        "icon.png": b"\x89PNG",
        "js/a.js": b"1",
    }
    return pack_files(files, dev) if check else _signed_anyway(files, dev)


async def test_install_bridge_and_app_origin(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice",)) as (_net, (alice,)), api_client(alice.client) as api:
        r = await api.post(
            "/miniapps", content=_bundle(name="<img src=x onerror=alert(1)>", check=False)
        )
        assert r.status_code == 422 and "markup" in r.json()["error"]["message"]
        r = await api.post("/miniapps", content=b"not a bundle")
        assert r.status_code == 422 and "bundle" in r.json()["error"]["message"]
        assert (await api.post("/miniapps", content=_bundle())).status_code == 201
        other = Identity.from_private_bytes(bytes(range(3, 35)))
        r = await api.post("/miniapps", content=_bundle(other, "9.0.0"))
        assert r.status_code == 422 and "another developer key" in r.json()["error"]["message"]

        async def bridge(method: str, params: Any = None) -> httpx.Response:
            return await api.post(
                f"/miniapps/{APP}/bridge", json={"method": method, "params": params}
            )

        r = await bridge("storage.set", {"key": "k", "value": "v"})
        assert r.status_code == 403 and r.json()["error"]["permission"] == "storage"
        r = await bridge("backend.request", {"payload": {}})
        assert r.json()["error"]["code"] == "permission_denied"  # not in the manifest
        r = await api.put(f"/miniapps/{APP}/permissions/pay", json={"granted": True})
        assert r.status_code == 400  # cannot allow what the manifest does not ask for
        await api.put(f"/miniapps/{APP}/permissions/storage", json={"granted": True})
        assert (await bridge("storage.set", {"key": "k", "value": "v"})).status_code == 200
        assert (await bridge("storage.get", {"key": "k"})).json() == {"result": "v"}
        user = (await bridge("getUser")).json()["result"]
        assert set(user) == {"id"}
        r = await bridge("pay", {"amount": "1"})
        assert r.status_code == 403  # pay is not in the manifest
        await api.put(f"/miniapps/{APP}/permissions/storage", json={"granted": None})
        assert (await bridge("storage.get", {"key": "k"})).status_code == 403  # revoked: ask again

        # the app origin: only the app's own files, with the CSP, on its own Host
        origin = AppOrigin(alice.client.miniapps, ORIGIN, "127.0.0.1:7")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=origin), base_url="http://127.0.0.1:7"
        ) as web:
            base = f"/a/{origin.secret}/{APP}"
            r = await web.get(f"{base}/index.html")
            # the runtime lock runs first: before anything the app wrote
            assert r.status_code == 200
            assert r.text == f'<script src="{RUNTIME_PATH}?v={RUNTIME_TAG}"></script><p>hi</p>'
            assert r.headers["cache-control"] == "no-cache"  # no version in the URL
            csp = r.headers["content-security-policy"]
            assert "connect-src 'none'" in csp and f"frame-ancestors {ORIGIN}" in csp
            assert "default-src 'none'" in csp and "form-action 'none'" in csp
            assert "child-src 'none'" in csp and "sandbox allow-scripts" in csp
            # scripts: this app's files, the SDK and the runtime; not another app's
            scripts = csp.split("script-src ")[1].split(";")[0].split()
            assert sorted(scripts) == sorted(
                [
                    f"http://127.0.0.1:7{base}/",
                    "http://127.0.0.1:7/sdk/boxless-app.js",
                    "http://127.0.0.1:7/rt/boxless-runtime.js",
                ]
            )
            rt = await web.get("/rt/boxless-runtime.js")
            assert rt.status_code == 200 and b"RTCPeerConnection" in rt.content
            again = await web.get(
                f"{base}/index.html", headers={"If-None-Match": r.headers["etag"]}
            )
            assert again.status_code == 304
            # the UI's versioned folder: that version only, cached for good
            tag = version_tag(alice.client.miniapps.files(APP).archive_sha256)
            versioned = await web.get(f"{base}@{tag}/index.html")
            assert versioned.status_code == 200 and versioned.text == r.text
            assert versioned.headers["cache-control"] == "max-age=31536000, immutable"
            assert f"{base}@{tag}/ " in versioned.headers["content-security-policy"]
            assert (await web.get(f"{base}@{'0' * 16}/index.html")).status_code == 404
            script = await web.get(f"{base}/js/a.js")
            assert script.headers["content-type"].startswith("text/javascript")
            assert script.content.startswith(rt.content)  # the lock is its first line
            for path in (
                f"{base}/manifest.json",
                f"{base}/%2e%2e/{APP}/index.html",  # a plain .. is resolved by the client
                f"/a/wrong-secret/{APP}/index.html",
                f"/a/{origin.secret}/org.example.none/index.html",
                "/api/v1/contacts",
            ):
                assert (await web.get(path)).status_code == 404, path
            assert (await web.post(f"{base}/index.html")).status_code == 405
            evil = await web.get(f"{base}/index.html", headers={"Host": "evil.example:7"})
            assert evil.status_code == 421  # DNS rebinding
            assert (await web.get("/sdk/boxless-app.js")).status_code == 200

        # flood: the node suspends the app
        codes = [(await bridge("getUser")).status_code for _ in range(60)]
        assert 429 in codes
        listing = (await api.get("/miniapps")).json()["apps"]
        assert listing[0]["suspended"] is True
        assert (await api.delete(f"/miniapps/{APP}")).status_code == 204
        assert (await api.get(f"/miniapps/{APP}/storage/k")).status_code == 404
