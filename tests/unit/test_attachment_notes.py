"""The ask / re-pinned notes about a file the network lost: codec and refusals."""

from __future__ import annotations

import pytest

from boxless.blobs.cid import RAW, Cid
from boxless.chat.attachment import (
    AttachmentAsk,
    AttachmentKind,
    AttachmentRef,
    AttachmentRepinned,
    Attachments,
    decode_attachments,
)
from boxless.errors import DecodeError, UsageError
from boxless.wire import attachment_pb2

MID = bytes(range(16))
GID, GMID = bytes(range(32)), bytes(range(100, 132))  # a group and a group message's id
PEER = "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
REF = AttachmentRef(
    cid=bytes(Cid.of(RAW, b"x")),
    key=bytes(32),
    plaintext_sha256=bytes(32),
    ciphertext_sha256=bytes(32),
    size=1,
    mime="application/pdf",
    name="a.pdf",
    kind=AttachmentKind.FILE,
)


def test_round_trips() -> None:
    ask = Attachments((), ask=AttachmentAsk(MID, 3))
    assert decode_attachments(ask.encode()) == ask and ask.is_note
    again = Attachments((), repinned=AttachmentRepinned(MID, 0, (PEER,)))
    assert decode_attachments(again.encode()) == again
    assert not Attachments((REF,)).is_note
    group_ask = Attachments((), ask=AttachmentAsk(GMID, 1, GID))
    assert decode_attachments(group_ask.encode()) == group_ask
    group_again = Attachments((), repinned=AttachmentRepinned(GMID, 1, (PEER,), GID))
    assert decode_attachments(group_again.encode()) == group_again


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda: Attachments((REF,), ask=AttachmentAsk(MID, 0)), "no files"),
        (lambda: Attachments((), caption="hi", ask=AttachmentAsk(MID, 0)), "no files"),
        (
            lambda: Attachments(
                (), ask=AttachmentAsk(MID, 0), repinned=AttachmentRepinned(MID, 0, (PEER,))
            ),
            "not both",
        ),
        (lambda: AttachmentAsk(b"short", 0), "16-byte"),
        (lambda: AttachmentAsk(MID, 0, GID), "32-byte message id"),  # a 1:1 id in a group
        (lambda: AttachmentAsk(GMID, 0), "16-byte"),
        (lambda: AttachmentAsk(GMID, 0, b"g" * 31), "32-byte group id"),
        (lambda: AttachmentRepinned(GMID, 0, (PEER,), b"g" * 33), "32-byte group id"),
        (lambda: AttachmentAsk(MID, 9), "index"),
        (lambda: AttachmentRepinned(MID, 0, ()), "1 to 8 peers"),
        (lambda: AttachmentRepinned(MID, 0, (PEER,) * 9), "1 to 8 peers"),
        (lambda: AttachmentRepinned(MID, 0, ("/ip4/10.0.0.1/tcp/1",)), "p2p"),
        (lambda: Attachments(()), "1 to 9"),
    ],
)
def test_refused(make: object, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        make()  # type: ignore[operator]


def test_a_peers_bad_note_does_not_decode() -> None:
    pb = attachment_pb2.Attachments()
    pb.repinned.message_id = MID
    pb.repinned.peers.extend([PEER] * 20)  # more than a note may name: refused at once
    with pytest.raises(DecodeError, match="1 to 8 peers"):
        decode_attachments(pb.SerializeToString())
    pb = attachment_pb2.Attachments()
    pb.ask.message_id = MID
    pb.items.add()  # a file and an ask
    with pytest.raises(DecodeError):
        decode_attachments(pb.SerializeToString())
