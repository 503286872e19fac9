"""Discover → Mini apps lists `.boxapp` files shared in chats that are not installed
(GET /api/v1/miniapps/shared): real clients on the in-memory network, virtual time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import trio
import trio.testing

from boxless.blobs.cid import Cid
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentRef
from tests.asgi_api import api_client as _api
from tests.memnet_fixtures import befriend, memnet, wait_for
from tests.unit.test_miniapps_api import _bundle

PEER = "/ip4/127.0.0.1/tcp/60000/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def _file(name: str, data: bytes) -> env.Attachments:
    ref = AttachmentRef(
        cid=bytes(Cid.of(0x55, name.encode() + data[:16])),
        key=b"k" * 32,
        plaintext_sha256=hashlib.sha256(data).digest(),
        ciphertext_sha256=hashlib.sha256(b"c" + data).digest(),
        size=len(data),
        mime="application/octet-stream",
        name=name,
        peers=(PEER,),
    )
    return env.Attachments((ref,))


async def test_shared_apps_not_installed_are_listed_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    shop, shop2 = _bundle(), _bundle(version="1.1.0")
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        _api(alice.client) as api,
    ):
        await befriend(alice, bob)
        assert (await api.get("/miniapps/shared")).json() == {"apps": []}
        sent = []
        for name, data in [
            ("Shop.boxapp", shop),
            ("notes.pdf", b"%PDF-1.4 not an app"),
            ("again.BOXAPP", shop),  # the same bundle shared again: listed once
            ("Shop 1.1.boxapp", shop2),
        ]:
            with bob.client.db.transaction() as cur:
                c = bob.contact(alice)
                sent.append(bob.client.conversations.queue_in(cur, c, _file(name, data)))  # type: ignore[arg-type]
            await wait_for(alice, lambda name=name: f"📎 {name}" in alice.texts(bob))  # type: ignore[misc]

        apps = (await api.get("/miniapps/shared")).json()["apps"]
        assert [a["name"] for a in apps] == ["Shop 1.1", "again"]  # newest first
        assert apps[1]["message_id"] == sent[2].hex() and apps[1]["index"] == 0
        assert apps[1]["chat"] == f"contact:{bob.me.hex()}" and apps[1]["size"] == len(shop)
        assert apps[1]["state"] == "remote" and apps[1]["outgoing"] is False

        # installed (the very file): no longer listed; the other version still is
        assert (await api.post("/miniapps", content=shop)).status_code == 201
        apps = (await api.get("/miniapps/shared")).json()["apps"]
        assert [a["file_name"] for a in apps] == ["Shop 1.1.boxapp"]
