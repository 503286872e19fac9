"""Attachments over real hosts: encrypt -> put -> pin -> fetch -> verify -> decrypt."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from boxless.blobs import PinPolicy
from boxless.blobs.cid import Cid
from boxless.chat.attachment import AttachmentKind, Attachments, decode_attachments
from boxless.client.attachment_transfer import (
    AttachmentTooLarge,
    AttachmentTransfer,
    FileInfo,
    UploadNotPinned,
)
from boxless.crypto.attachments import AttachmentDecryptError
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node

pytestmark = pytest.mark.trio


async def _read(t: AttachmentTransfer, ref: object, **kw: object) -> bytes:
    return b"".join([c async for c in t.open(ref, **kw)])  # type: ignore[arg-type]


async def test_send_via_a_service_node_and_fetch_verified(tmp_path: Path) -> None:
    data = os.urandom(700_000)
    async with (
        blob_node(tmp_path / "alice") as alice,
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "bob") as bob,
    ):
        dead = "/ip4/127.0.0.1/tcp/9/p2p/" + str(bob.bitswap.host.get_id())[:-4] + "AAAA"
        sender = AttachmentTransfer(alice.client, [addr_of(svc), dead])
        ref = await sender.upload(
            aiter_chunks(data), FileInfo(name="../report.pdf", mime="application/pdf")
        )
        assert ref.peers == (addr_of(svc),) and ref.name == "report.pdf"
        assert ref.size == len(data) and ref.plaintext_sha256 == hashlib.sha256(data).digest()
        assert svc.store.pins(Cid.decode(ref.cid))
        # the service node holds only ciphertext: the bytes the descriptor's digest names
        cipher = b"".join([c async for c in svc.client.get(Cid.decode(ref.cid), [])])
        assert hashlib.sha256(cipher).digest() == ref.ciphertext_sha256
        assert data[1000:1064] not in cipher
        # the descriptor survives the wire
        ref2 = decode_attachments(Attachments((ref,)).encode()).items[0]
        receiver = AttachmentTransfer(bob.client)
        seen: list[tuple[int, int | None]] = []
        got = await _read(receiver, ref2, progress=lambda d, t: seen.append((d, t)))
        assert got == data and receiver.is_cached(ref2) and seen
        # cached: opens with no peers at all
        got = await _read(receiver, dataclasses.replace(ref2, peers=()))
        assert got == data

        # attackers: a wrong key, a digest lie, a size lie -> a clear error and no cache
        for bad in (
            dataclasses.replace(ref2, key=os.urandom(32)),
            dataclasses.replace(ref2, ciphertext_sha256=bytes(32)),
            dataclasses.replace(ref2, size=len(data) - 1),
            dataclasses.replace(ref2, plaintext_sha256=bytes(32)),
        ):
            with pytest.raises(AttachmentDecryptError):
                await _read(receiver, bad)
            assert not receiver.is_cached(ref2)
            assert await _read(receiver, ref2) == data  # the genuine one still opens


async def test_nothing_sent_when_no_service_pins_and_size_cap(tmp_path: Path) -> None:
    async with blob_node(tmp_path / "alice") as alice, blob_node(tmp_path / "b") as other:
        sender = AttachmentTransfer(alice.client, [addr_of(other)])  # serves, but no pins
        with pytest.raises(UploadNotPinned, match="try again"):
            await sender.upload(aiter_chunks(b"x" * 5000), FileInfo(name="a.txt"))
        with pytest.raises(AttachmentTooLarge):
            await sender.upload(
                aiter_chunks(b"x" * 5000),
                FileInfo(name="a.txt", kind=AttachmentKind.FILE),
                max_bytes=4000,
            )
