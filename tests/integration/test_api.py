"""The local API's guard rails, against a real `boxless up` process."""

from __future__ import annotations

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
