"""The onboarding API in process (no node): create -> confirm or restore, the
checks on each step, the 409 for everything else, and the hand-over callback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from boxless.api.onboarding import AppSwitch, Onboarding, build_onboarding_app
from boxless.identity.account import LocalAccount, account_exists, open_account
from boxless.identity.seed import phrase_from_entropy
from tests.chat_fixtures import FAST_KDF

TOKEN = "test-token"
ORIGIN = "http://127.0.0.1:9"
PASS = "correct horse battery staple"


class World:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.created: list[LocalAccount] = []
        self.onboarding = Onboarding(home, self.on_account, kdf=FAST_KDF)
        self.switch = AppSwitch(build_onboarding_app(self.onboarding, TOKEN, ORIGIN))

    async def on_account(self, account: LocalAccount) -> None:
        self.created.append(account)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.switch),
            base_url=ORIGIN,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    def close(self) -> None:
        for account in self.created:
            account.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "home")
    yield w
    w.close()


async def test_create_then_confirm_makes_the_account_once(world: World) -> None:
    async with world.client() as http:
        r = await http.post("/api/v1/onboarding/create", json={"passphrase": PASS})
        assert r.status_code == 200
        new = r.json()
        words, positions = new["words"], new["confirm"]
        assert len(words) == 24 and len(positions) == 3
        assert all(1 <= p <= 24 for p in positions)
        wrong = {str(p): "zzz" for p in positions}
        r = await http.post("/api/v1/onboarding/confirm", json={"words": wrong, "name": "Ann"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "phrase_mismatch"
        assert not account_exists(world.home)
        answers = {str(p): words[p - 1].upper() for p in positions}  # case does not matter
        r = await http.post("/api/v1/onboarding/confirm", json={"words": answers, "name": "Ann"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Ann"
        r = await http.post("/api/v1/onboarding/confirm", json={"words": answers, "name": "Ann"})
        assert r.status_code == 400
    assert len(world.created) == 1
    world.created[0].close()
    world.created.clear()
    with open_account(world.home, PASS) as account:
        assert account.profile.display_name == "Ann"


async def test_each_step_explains_mistakes(world: World) -> None:
    async with world.client() as http:
        r = await http.post("/api/v1/onboarding/confirm", json={"words": {}, "name": "Ann"})
        assert r.status_code == 400 and "start again" in r.json()["error"]["message"]
        r = await http.post("/api/v1/onboarding/create", json={"passphrase": "short"})
        assert r.status_code == 400 and "at least" in r.json()["error"]["message"]
        r = await http.post("/api/v1/onboarding/create", content=b"{not json")
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body"
        r = await http.post("/api/v1/onboarding/create", json={"passphrase": PASS})
        words, positions = r.json()["words"], r.json()["confirm"]
        answers = {str(p): words[p - 1] for p in positions}
        r = await http.post("/api/v1/onboarding/confirm", json={"words": answers})
        assert r.status_code == 400 and "name" in r.json()["error"]["message"]
        bad = " ".join(["abandon"] * 24)
        r = await http.post(
            "/api/v1/onboarding/restore", json={"phrase": bad, "name": "Ann", "passphrase": PASS}
        )
        assert r.status_code == 400 and "checksum" in r.json()["error"]["message"]
        assert bad not in r.text
    assert world.created == []


async def test_restore_and_everything_else_waits(world: World) -> None:
    phrase = phrase_from_entropy(bytes(range(32)))
    async with world.client() as http:
        r = await http.get("/api/v1/me")
        assert r.status_code == 409 and r.json()["error"]["code"] == "onboarding_required"
        r = await http.get("/")
        assert r.status_code == 200 and "<title>Boxless</title>" in r.text
        r = await http.get("/api/v1/onboarding", headers={"Authorization": ""})
        assert r.status_code == 401
        r = await http.post(
            "/api/v1/onboarding/restore",
            json={"phrase": phrase.upper(), "name": "Ann", "passphrase": PASS},
            headers={"Origin": "http://evil.example"},
        )
        assert r.status_code == 403
        r = await http.post(
            "/api/v1/onboarding/restore",
            json={"phrase": phrase.upper(), "name": "Ann", "passphrase": PASS},
        )
        assert r.status_code == 201, r.text
        key = r.json()["identity_key"]
    assert len(world.created) == 1
    assert world.created[0].identity.public_key.hex() == key


# -- the Guard in front of the onboarding app (issue 10, finding 8) ---------------------


async def test_rebinding_host_is_refused_before_the_recovery_phrase(world: World) -> None:
    """DNS rebinding: a page on rebind.evil re-pointed at 127.0.0.1 is same-origin for
    the browser; on main the onboarding app answered it (it would get a new
    recovery phrase if it had the token). Only our own Host names are answered."""
    async with world.client() as http:
        r = await http.post(
            "/api/v1/onboarding/create",
            json={"passphrase": PASS},
            headers={"Host": "rebind.evil:9"},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "bad_host"
        r = await http.get("/", headers={"Host": "rebind.evil:9"})
        assert r.status_code == 403
        r = await http.get("/api/v1/onboarding", headers={"Host": "localhost:9"})
        assert r.status_code == 200
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


async def test_oversized_bodies_are_refused_while_streaming(world: World) -> None:
    """main read the whole body before validating it (300 MB -> 1.27 GB RSS). A
    streamed body without a length is cut off past 1 MiB with the house 413."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"passphrase": "'
        for _ in range(64):
            sent += 65536
            yield b"a" * 65536

    async with world.client() as http:
        r = await http.post("/api/v1/onboarding/create", content=body())
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "too_large"
        assert set(r.json()["error"]) == {"code", "message"}
    assert sent <= 1024 * 1024 + 65536  # it stopped reading there: 3 MiB were on offer


async def test_the_home_is_created_private(world: World) -> None:
    """`boxless up` in onboarding mode left the home 0755 for everyone to list."""
    async with world.client() as http:
        r = await http.post(
            "/api/v1/onboarding/restore",
            json={"phrase": phrase_from_entropy(bytes(32)), "name": "Ann", "passphrase": PASS},
        )
        assert r.status_code == 201, r.text
    assert world.home.stat().st_mode & 0o777 == 0o700


async def test_restore_a_backup_file_from_the_first_run_page(world: World, tmp_path: Path) -> None:
    """The backup file is uploaded, then restored with the phrase: a new device of the
    same account with the backup's profile; a wrong phrase says so and writes nothing."""
    from boxless.client.backup import create_backup
    from boxless.identity.account import create_account
    from boxless.identity.keys import Identity
    from boxless.identity.profile import Profile

    phrase = phrase_from_entropy(bytes(range(32)))
    identity = Identity.from_phrase(phrase)
    old = create_account(
        tmp_path / "old", PASS, identity, Profile(display_name="Olga", updated_at=1), 1.0,
        kdf=FAST_KDF,
    )  # fmt: skip
    create_backup(old.db, tmp_path / "a.bxbk")
    old_device = old.device.certificate.device_curve25519
    old.close()
    async with world.client() as http:
        r = await http.post(
            "/api/v1/onboarding/restore-backup", json={"phrase": phrase, "passphrase": PASS}
        )
        assert r.status_code == 400 and "upload the backup" in r.json()["error"]["message"]
        r = await http.put("/api/v1/onboarding/backup", content=(tmp_path / "a.bxbk").read_bytes())
        assert r.status_code == 200 and r.json()["size"] == (tmp_path / "a.bxbk").stat().st_size
        other = phrase_from_entropy(bytes(32))
        r = await http.post(
            "/api/v1/onboarding/restore-backup", json={"phrase": other, "passphrase": PASS}
        )
        assert r.status_code == 400 and "phrase" in r.json()["error"]["message"]
        assert not account_exists(world.home)
        r = await http.post(
            "/api/v1/onboarding/restore-backup", json={"phrase": phrase, "passphrase": PASS}
        )
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Olga"
        assert r.json()["identity_key"] == identity.public_key.hex()
    assert not world.onboarding.upload.exists()
    (account,) = world.created
    assert account.device.certificate.device_curve25519 != old_device  # a new device
