"""The local API's guard rails, against a real `boxless up` process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.nodeproc import NodeProcess
from tests.userproc import UserProcess, init_user

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserProcess]:
    base: Path = tmp_path_factory.mktemp("api")
    service = NodeProcess("s", base / "s", ["--store", "--filter", "--lightpush"]).start()
    init_user(base / "alice", "Alice")
    user = UserProcess("alice", base / "alice", [service.addr]).start()
    try:
        yield user
    finally:
        user.kill()
        service.kill()


def test_no_token_is_401_with_the_error_shape(alice: UserProcess) -> None:
    r = httpx.get(alice.url + "/api/v1/contacts")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = httpx.get(alice.url + "/api/v1/contacts", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_other_origins_are_refused(alice: UserProcess) -> None:
    auth = {"Authorization": f"Bearer {alice.token}"}
    r = httpx.get(alice.url + "/api/v1/me", headers={**auth, "Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_origin"
    assert "access-control-allow-origin" not in r.headers
    ok = httpx.get(alice.url + "/api/v1/me", headers={**auth, "Origin": alice.url})
    assert ok.status_code == 200 and ok.json()["name"] == "Alice"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/contacts", b"not json"),
        ("/api/v1/contacts", b"{}"),
        ("/api/v1/contacts", b'{"link": 5}'),
        ("/api/v1/contacts/" + "ab" * 32 + "/messages", b'{"text": ""}'),
        ("/api/v1/contacts/" + "ab" * 32 + "/messages", b'{"text": "hi", "reply_to": "zz"}'),
    ],
)
def test_malformed_bodies_are_422(alice: UserProcess, path: str, body: bytes) -> None:
    r = httpx.post(
        alice.url + path, content=body, headers={"Authorization": f"Bearer {alice.token}"}
    )
    assert r.status_code == 422, r.text
    assert set(r.json()["error"]) == {"code", "message"}


def test_user_mistakes_get_clear_errors(alice: UserProcess) -> None:
    auth = {"Authorization": f"Bearer {alice.token}"}
    r = httpx.post(
        alice.url + "/api/v1/contacts", json={"link": "https://example.com"}, headers=auth
    )
    assert r.status_code == 400 and "boxless://c/" in r.json()["error"]["message"]
    r = httpx.post(
        alice.url + "/api/v1/contacts/" + "ab" * 32 + "/messages", json={"text": "hi"}, headers=auth
    )
    assert r.status_code == 404


def test_api_listens_on_loopback_only(alice: UserProcess) -> None:
    assert alice.url.startswith("http://127.0.0.1:")


def test_openapi_schema_is_served_and_lists_the_resources(alice: UserProcess) -> None:
    schema = alice.call("GET", "/openapi.json")
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert "post" in paths["/api/v1/contacts"]
    body = paths["/api/v1/contacts/{key}/messages"]["post"]["requestBody"]
    assert "text" in body["content"]["application/json"]["schema"]["properties"]


def test_history_pages_with_before(alice: UserProcess) -> None:
    r = httpx.get(
        alice.url + "/api/v1/contacts/" + "ab" * 32 + "/messages?before=x",
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert r.status_code == 422


def test_groups_create_list_send_and_errors(alice: UserProcess) -> None:
    auth = {"Authorization": f"Bearer {alice.token}"}
    r = httpx.post(alice.url + "/api/v1/groups", json={"name": "Solo"}, headers=auth)
    assert r.status_code == 201, r.text
    group = r.json()
    assert group["name"] == "Solo" and [m["role"] for m in group["members"]] == ["admin"]
    gid = group["id"]
    assert gid in [g["id"] for g in httpx.get(alice.url + "/api/v1/groups", headers=auth).json()]
    r = httpx.post(
        alice.url + f"/api/v1/groups/{gid}/messages", json={"text": "note to self"}, headers=auth
    )
    assert r.status_code == 201 and r.json()["text"] == "note to self", r.text
    r = httpx.get(alice.url + f"/api/v1/groups/{gid}/messages", headers=auth)
    assert [(m["kind"], m["text"]) for m in r.json()] == [
        ("event", "Alice created the group “Solo”"),
        ("text", "note to self"),
    ]
    r = httpx.post(
        alice.url + f"/api/v1/groups/{gid}/members", json={"identity_key": "ab" * 32}, headers=auth
    )
    assert r.status_code == 400 and "contacts" in r.json()["error"]["message"]
    r = httpx.post(alice.url + "/api/v1/groups", json={"name": ""}, headers=auth)
    assert r.status_code == 422 and set(r.json()["error"]) == {"code", "message"}
    r = httpx.get(alice.url + "/api/v1/groups/" + "cd" * 32, headers=auth)
    assert r.status_code == 400


# -- issue 10, finding 8: the local API against a hostile page or a careless bind ----------


def _auth(user: UserProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


def test_rebinding_hosts_are_refused(alice: UserProcess) -> None:
    """DNS rebinding: a page on rebind.evil whose name is re-pointed at 127.0.0.1 is
    same-origin for the browser, so it can load the UI and, given the token, the
    API. On main `Host: rebind.evil…` got 200; only our own names may now."""
    port = int(alice.url.rsplit(":", 1)[1])
    for host in (
        f"rebind.evil:{port}",
        "rebind.evil",
        f"127.0.0.1.nip.io:{port}",
        f"127.0.0.1:{port + 1}",
        f"10.0.0.1:{port}",
    ):
        for path, headers in (("/", {}), ("/api/v1/me", _auth(alice))):
            r = httpx.get(alice.url + path, headers={**headers, "Host": host})
            assert r.status_code == 403, (host, path, r.text)
            assert r.json()["error"]["code"] == "bad_host"
            assert "boxless up" in r.json()["error"]["message"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        headers = {**_auth(alice), "Host": host, "Origin": f"http://{host}"}
        r = httpx.put(alice.url + "/api/v1/me", json={"name": "Alice"}, headers=headers)
        assert r.status_code == 200, (host, r.text)


def test_every_response_carries_the_security_headers(alice: UserProcess) -> None:
    """main sent no CSP, no frame-ancestors, no nosniff, no Referrer-Policy: a page
    elsewhere could frame the UI (clickjacking) and a stray inline script would run."""
    responses = [
        httpx.get(alice.url + "/"),
        httpx.get(alice.url + "/app.js"),
        httpx.get(alice.url + "/api/v1/me", headers=_auth(alice)),
        httpx.get(alice.url + "/api/v1/me"),  # the 401
        httpx.get(alice.url + "/api/v1/nope", headers=_auth(alice)),  # the 404
        httpx.get(alice.url + "/", headers={"Host": "rebind.evil"}),  # the 403
    ]
    for r in responses:
        csp = r.headers["content-security-policy"]
        for rule in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"):
            assert rule in csp, (r.url, csp)
        assert "unsafe" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert (
        "connect-src 'self' blob: ws://127.0.0.1:"
        in responses[0].headers["content-security-policy"]
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_bodies_are_limited_while_they_stream(alice: UserProcess) -> None:
    """main read a JSON body whole before validating it: a 300 MB body grew the
    process to 1.27 GB. Now a declared size over the limit is refused unread, and
    a chunked body (no declared size) is cut off once it passes 1 MiB."""
    assert alice.proc is not None
    url = alice.url + "/api/v1/contacts"
    big = b'{"link": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    r = httpx.post(url, content=big, headers=_auth(alice))
    assert r.status_code == 413, r.text
    assert r.json() == {"error": {"code": "too_large", "message": r.json()["error"]["message"]}}
    assert "1 MiB" in r.json()["error"]["message"]
    port = int(alice.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:  # says 300 MB, sends 0
        raw.sendall(
            f"POST /api/v1/contacts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {alice.token}\r\nContent-Length: 300000000\r\n\r\n".encode()
        )
        assert raw.recv(4096).startswith(b"HTTP/1.1 413 ")

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"link": "'
        for _ in range(total // 65536):
            yield b"a" * 65536

    before = _rss_kib(alice.proc.pid)
    try:
        r = httpx.post(url, content=chunks(200 * 1024 * 1024), headers=_auth(alice), timeout=60)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    except (httpx.WriteError, httpx.RemoteProtocolError):
        pass  # the server answered 413 and hung up while we were still sending
    grew = _rss_kib(alice.proc.pid) - before
    print(f"RSS growth after a 200 MiB chunked body: {grew} KiB")
    assert grew < 50 * 1024, grew
    assert alice.call("GET", "/me")["name"] == "Alice"  # and it still serves


def _png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` zeros: tiny on the wire
    (zeros compress ~1000:1), enormous once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_qr_uploads_are_capped_in_pixels(alice: UserProcess) -> None:
    """main capped QR uploads in bytes only: a 36 KiB PNG decoded to 722 MiB, and a
    larger picture (past Pillow's own bomb limit) gave a 500. The header is now
    checked before anything is decoded: 413 past 16 megapixels, 422 if not an image."""
    assert alice.proc is not None
    url = alice.url + "/api/v1/contacts/decode-qr"
    before = _rss_kib(alice.proc.pid)
    for width, height in ((12_000, 12_000), (16_000, 16_000)):
        bomb = _png(width, height)
        assert len(bomb) < 64 * 1024
        r = httpx.post(url, content=bomb, headers=_auth(alice), timeout=60)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "image_too_large"
    assert _rss_kib(alice.proc.pid) - before < 50 * 1024
    r = httpx.post(url, content=b"GIF89a not really", headers=_auth(alice))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_image"
    own = httpx.get(alice.url + "/api/v1/me/qr.png", headers=_auth(alice)).content
    r = httpx.post(url, content=own, headers=_auth(alice))
    assert r.status_code == 200 and r.json()["name"] == "Alice", r.text


def test_a_public_bind_needs_the_unsafe_flag_and_home_is_private(tmp_path: Path) -> None:
    """`--api 0.0.0.0` was accepted silently (the token, and the recovery phrase
    during onboarding, then cross the LAN in plain HTTP), and `boxless up` left its
    home 0755. A non-loopback bind is now refused without --api-unsafe-public, and
    with it comes a loud warning; the home is made 0700 (an existing one tightened)."""
    import subprocess
    import sys

    from tests.userproc import env

    home = tmp_path / "user"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    for api in ("0.0.0.0:0", "192.168.1.5:8765", "[::]:0"):
        done = subprocess.run(
            [sys.executable, "-m", "boxless", "up", "--home", str(home), "--relay", "--api", api],
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "--api-unsafe-public" in done.stderr and "Traceback" not in done.stderr
    assert not (home / "api.json").exists()

    user = UserProcess(
        "public", home, [], extra_args=["--relay", "--api", "0.0.0.0:0", "--api-unsafe-public"]
    ).start()
    try:
        assert "WARNING" in user.logs() and "plain HTTP" in user.logs()
        assert "now yours only" in user.logs()
        assert home.stat().st_mode & 0o777 == 0o700
        port = int(user.url.rsplit(":", 1)[1])
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/onboarding", headers=_auth(user))
        assert r.status_code == 200 and r.json() == {"onboarding": True}
        r = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/onboarding",
            headers={**_auth(user), "Host": f"rebind.evil:{port}"},
        )
        assert r.status_code == 403  # even on a public bind, a name must be ours
    finally:
        user.kill()
