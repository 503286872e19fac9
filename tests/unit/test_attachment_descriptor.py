"""The attachment descriptor: every field of a peer's descriptor is checked."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.blobs.cid import Cid
from boxless.chat.attachment import (
    MAX_ALBUM,
    AttachmentKind,
    AttachmentRef,
    Attachments,
    decode_attachments,
    sanitise_name,
)
from boxless.errors import DecodeError, UsageError
from boxless.wire import attachment_pb2

CID = bytes(Cid.of(0x55, b"hello"))
PEER = "/ip4/127.0.0.1/tcp/60000/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def ref(**over: object) -> AttachmentRef:
    base: dict[str, object] = dict(
        cid=CID,
        key=b"k" * 32,
        plaintext_sha256=hashlib.sha256(b"p").digest(),
        ciphertext_sha256=hashlib.sha256(b"c").digest(),
        size=1234,
        mime="image/jpeg",
        name="cat.jpg",
        kind=AttachmentKind.IMAGE,
        width=800,
        height=600,
        thumbnail=b"\xff\xd8" + b"t" * 100,
        blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        peers=(PEER,),
    )
    base.update(over)
    return AttachmentRef(**base)  # type: ignore[arg-type]


def test_round_trip_single_and_album() -> None:
    one = Attachments((ref(),), caption="look", reply_to=b"r" * 16)
    assert decode_attachments(one.encode()) == one
    album = Attachments(tuple(ref(name=f"{i}.jpg") for i in range(MAX_ALBUM)))
    assert decode_attachments(album.encode()) == album
    assert one.items[0].inline and not ref(mime="image/svg+xml").inline
    assert not ref(mime="text/html", kind=AttachmentKind.FILE).inline


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"cid": b""}, "CID"),
        ({"cid": b"\x01\x55\x12\x03abc"}, "CID"),
        ({"key": b"k" * 31}, "key"),
        ({"plaintext_sha256": b""}, "digest"),
        ({"size": 2 * 1024**3 + 1}, "size"),
        ({"size": 1024**3 + 1, "kind": AttachmentKind.VIDEO}, "size"),
        ({"mime": "Image/JPEG"}, "MIME"),
        ({"mime": "text/html; charset=utf-8"}, "MIME"),
        ({"width": 70000}, "width"),
        ({"duration_ms": 25 * 3600 * 1000}, "duration"),
        ({"thumbnail": b"t" * 8193}, "thumbnail"),
        ({"blurhash": "<script>"}, "blurhash"),
        ({"peers": (PEER,) * 9}, "peers"),
        ({"peers": ("/ip4/1.2.3.4/tcp/1",)}, "p2p"),
        ({"peers": ("not an address",)}, "p2p"),
        ({"waveform": b"w" * 129}, "waveform"),
    ],
)
def test_a_peers_bad_field_is_refused_with_a_reason(over: dict[str, object], why: str) -> None:
    with pytest.raises(UsageError, match=why):
        ref(**over)
    # the same field in a peer's bytes is a DecodeError, never a crash
    good = ref().to_proto()
    for name, value in over.items():
        if name == "peers":
            del good.peers[:]
            good.peers.extend(value)  # type: ignore[arg-type]
        else:
            setattr(good, name, int(value) if isinstance(value, AttachmentKind) else value)
    raw = attachment_pb2.Attachments(items=[good]).SerializeToString()
    with pytest.raises(DecodeError, match=why):
        decode_attachments(raw)


def test_album_rules() -> None:
    with pytest.raises(DecodeError, match="1 to 9"):
        decode_attachments(attachment_pb2.Attachments().SerializeToString())
    ten = attachment_pb2.Attachments(items=[ref().to_proto()] * 10)
    with pytest.raises(DecodeError, match="1 to 9"):
        decode_attachments(ten.SerializeToString())
    with pytest.raises(UsageError, match="only images and videos"):
        Attachments((ref(), ref(kind=AttachmentKind.FILE, mime="application/pdf")))
    with pytest.raises(UsageError, match="thumbnails"):
        Attachments(tuple(ref(thumbnail=b"t" * 8000) for _ in range(5)))


def test_names_are_sanitised_not_trusted() -> None:
    assert sanitise_name("../../etc/passwd") == "passwd"
    assert sanitise_name("C:\\Users\\x\\evil.exe") == "evil.exe"
    assert sanitise_name("photo\u202egpj.exe") == "photogpj.exe"
    assert sanitise_name("..hidden") == "hidden"
    assert sanitise_name("CON.txt") == "_CON.txt"
    assert sanitise_name("a\x00b\nc") == "abc"
    assert sanitise_name("") == sanitise_name("...") == "file"
    long = sanitise_name("x" * 400 + ".jpeg")
    assert long.endswith(".jpeg") and len(long.encode()) <= 255
    pb = ref().to_proto()
    pb.name = "../\u202ecat.jpg"
    got = decode_attachments(attachment_pb2.Attachments(items=[pb]).SerializeToString())
    assert got.items[0].name == "cat.jpg"
    with pytest.raises(UsageError, match="sanitised"):
        ref(name="a/b")


def test_an_unknown_kind_is_a_file_and_repr_hides_secrets() -> None:
    pb = ref().to_proto()
    pb.kind = 99  # type: ignore[assignment]
    got = decode_attachments(attachment_pb2.Attachments(items=[pb]).SerializeToString())
    assert got.items[0].kind is AttachmentKind.FILE
    text = repr(Attachments((ref(name="secret-plan.jpg"),), caption="hush"))
    assert "secret" not in text and "hush" not in text and "kkkk" not in text


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=2000))
def test_fuzz_decoder_raises_only_decode_error(raw: bytes) -> None:
    try:
        got = decode_attachments(raw)
    except DecodeError:
        return
    assert decode_attachments(got.encode()) == got


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(max_size=300),
    size=st.integers(0, 2**32),
    mime=st.text(max_size=40),
    width=st.integers(0, 2**32 - 1),
    peers=st.lists(st.text(max_size=60), max_size=10),
)
def test_fuzz_fields_of_a_valid_message(
    name: str, size: int, mime: str, width: int, peers: list[str]
) -> None:
    """Any value in any field: either a valid descriptor or a DecodeError."""
    pb = ref().to_proto()
    pb.name, pb.size, pb.mime, pb.width = name, size, mime, width
    del pb.peers[:]
    pb.peers.extend(peers)
    try:
        got = decode_attachments(attachment_pb2.Attachments(items=[pb]).SerializeToString())
    except DecodeError:
        return
    item = got.items[0]
    assert item.name == sanitise_name(item.name) and item.size <= 2 * 1024**3
    assert dataclasses.replace(item) == item


def test_an_attachments_body_travels_in_a_chat_message() -> None:
    from boxless.chat import envelope as env

    body = Attachments((ref(),), caption="hi", reply_to=b"r" * 16)
    msg = env.new_message(body, lamport=3, sent_at_ms=1)
    assert env.decode(env.encode(msg)) == msg and env.is_reliable(body)
    pb = env.chat_pb2.ChatMessage()
    pb.ParseFromString(env.encode(msg))
    pb.attachments.items[0].key = b"short"
    with pytest.raises(DecodeError, match="key"):
        env.decode(pb.SerializeToString())
