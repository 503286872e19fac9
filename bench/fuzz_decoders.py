"""Fuzz campaign: every decoder of untrusted bytes, one table, a budget of inputs each.

For each decoder in :data:`TARGETS` the runner feeds ``--inputs`` inputs: most
are *structure-aware* mutations of valid seeds (protobuf fields dropped,
repeated, re-typed, their varints set to edge values, their length prefixes
made to lie -- 2^31, 2^63 -- and their sub-messages mutated recursively; plus
bit flips, splices, truncations, inserted huge RLP/varint headers), the rest
random bytes. A *crash* is any exception other than the decoder's documented
error (its ``errors`` in the table: ``DecodeError`` and subclasses, or the
module's own ``Invalid...`` error; none at all for the ``parse_request``
functions that answer every request with a rejection instead). Memory: the
peak of Python allocations (tracemalloc) during each single call, compared
with a budget (``--mem-budget``, default 4 MiB, far above what any decoder
needs for inputs of at most 300 KB, far below what a believed length field of
2^31 would take); and the growth of the process's peak RSS (which also sees
native allocations: protobuf's upb, vodozemac, cryptography) per decoder.

    python bench/fuzz_decoders.py --inputs 100000            # the campaign
    python bench/fuzz_decoders.py --inputs 2000 --only sealed  # one or more, by name prefix
    python bench/fuzz_decoders.py --list

Exits 1 if any decoder crashed or went over the memory budget; crashing
inputs are written to ``--crash-dir`` (hex), one file per decoder and error
type. ``tests/unit/test_fuzz_decoders.py`` runs the same table for a few
hundred inputs per decoder through hypothesis in CI.
"""

from __future__ import annotations

import argparse
import base64
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from boxless.chat import envelope as env  # noqa: E402
from boxless.chat.pow import ProofOfWork  # noqa: E402
from boxless.crypto.errors import TamperedMessage  # noqa: E402
from boxless.crypto.megolm import (  # noqa: E402
    GroupCiphertext,
    GroupKeyShare,
    decode_group_message,
    decode_key_share,
    encode_group_message,
    encode_key_share,
)
from boxless.crypto.olm_sessions import OlmCiphertext  # noqa: E402
from boxless.crypto.sealed import SealingKeyPair, open_envelope, pad, seal  # noqa: E402
from boxless.errors import DecodeError, ValidationError  # noqa: E402
from boxless.groups import (  # noqa: E402
    GroupLog,
    InvalidGroupLink,
    Invite,
    Promote,
    create_op,
    decode_group_link,
    join_op,
    make_group_link,
)
from boxless.groups.invites import LINK_PREFIX as GROUP_LINK_PREFIX  # noqa: E402
from boxless.groups.ops import Remove, Rename, decode_op, encode_op  # noqa: E402
from boxless.identity import (  # noqa: E402
    InvalidContactCode,
    decode_contact_code,
    decode_qr_image,
    make_contact_code,
    save_qr_png,
)
from boxless.identity.contact_code import LINK_PREFIX as CONTACT_LINK_PREFIX  # noqa: E402
from boxless.identity.keys import (  # noqa: E402
    Device,
    Identity,
    InvalidBundle,
    bundle_from_bytes,
    decode_published_bundle,
    encode_published_bundle,
)
from boxless.identity.profile import Profile, decode_profile  # noqa: E402
from boxless.sync.bloom import BloomFilter  # noqa: E402
from boxless.sync.message import (  # noqa: E402
    HistoryEntry,
    SdsMessage,
    decode_message,
    encode_message,
)
from boxless.waku import filter as wf  # noqa: E402
from boxless.waku import lightpush as lp  # noqa: E402
from boxless.waku import metadata as md  # noqa: E402
from boxless.waku import peer_exchange as px  # noqa: E402
from boxless.waku import store as ws  # noqa: E402
from boxless.waku.enr import Enr, RelayShards, Waku2, decode_multiaddrs  # noqa: E402
from boxless.waku.message import WakuMessage  # noqa: E402
from boxless.waku.sharding import parse_content_topic, parse_pubsub_topic  # noqa: E402
from boxless.wire import envelope_pb2, store_pb2  # noqa: E402
from boxless.wire.framing import FrameDecoder, decode_uvarint, encode_frame  # noqa: E402
from boxless.wire.links import encode_link  # noqa: E402

NOW = 1_800_000_000.0
NOW_MS = int(NOW * 1000)
NOW_NS = NOW_MS * 1_000_000
MAX_INPUT = 300_000
"""No generated input is longer (the largest decoder bound is the sealed envelope's 262 KiB)."""
DEFAULT_MEM_BUDGET = 4 << 20

Decoder = Callable[[bytes], object]


@dataclass(frozen=True)
class Target:
    """One decoder: how to call it on bytes, what it may raise, and valid seeds."""

    name: str
    decode: Decoder
    errors: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    random_max: int = 600
    """Random (non-seed) inputs are up to this many bytes."""
    note: str = ""
    slow: bool = False
    """Costs ~1 ms or more per input (image decoding): CI runs fewer."""
    mem_budget: int | None = None
    """Peak allocation allowed per call, if not the runner's default."""


# ----------------------------------------------------------------------------- keys & seeds
# The seeds are the valid objects the decoders' own property tests build
# (tests/unit/test_*: the same constructors, the same kinds of values).


@cache
def _people() -> tuple[Identity, Device, Identity, Device]:
    alice = Identity.from_private_bytes(bytes([7]) * 32)
    admin = Identity.from_private_bytes(bytes([8]) * 32)
    return alice, Device.create(alice, NOW), admin, Device.create(admin, NOW)


@cache
def _sealing() -> SealingKeyPair:
    return SealingKeyPair.from_private_bytes(bytes(range(1, 33)))


def _waku_messages() -> list[WakuMessage]:
    return [
        WakuMessage(b"hello", "/boxless/1/chat/proto"),
        WakuMessage(
            bytes(range(256)) * 4,
            "/0/boxless/1/group-abc/proto",
            version=0,
            timestamp=NOW_NS,
            meta=b"m" * 20,
            rate_limit_proof=b"r" * 40,
            ephemeral=True,
        ),
        WakuMessage(b"", "/a/1/b/c", timestamp=-1, version=2**32 - 1),
    ]


PUBSUB = "/waku/2/rs/1/0"


def _enrs() -> list[Enr]:
    return [
        Enr.build((i + 1).to_bytes(32, "big"), i, ip=f"10.0.0.{i + 1}", tcp=60000) for i in range(3)
    ] + [
        Enr.build(
            bytes([9]) * 32,
            5,
            ip="::1",
            tcp=443,
            udp=9000,
            multiaddrs=["/dns4/node.example/tcp/443/wss"],
            waku2=Waku2(relay=True, store=True, filter=True, lightpush=True),
            shards=RelayShards.of(1, [0, 1, 7]),
        ),
        Enr.build(bytes([10]) * 32, 1, shards=RelayShards.of(16, range(0, 1024, 3))),
    ]


def seeds_waku_message() -> list[bytes]:
    return [m.encode() for m in _waku_messages()]


def seeds_filter_request() -> list[bytes]:
    ft = wf.RequestType
    return [
        wf.build_request(wf.FilterRequest("r1", ft.SUBSCRIBER_PING)),
        wf.build_request(wf.FilterRequest("r2", ft.SUBSCRIBE, PUBSUB, ("/a/1/b/c", "/a/1/d/e"))),
        wf.build_request(wf.FilterRequest("r3", ft.UNSUBSCRIBE, PUBSUB, ("/a/1/b/c",))),
        wf.build_request(wf.FilterRequest("r4", ft.UNSUBSCRIBE_ALL)),
    ]


def seeds_filter_push() -> list[bytes]:
    return [wf.encode_push(PUBSUB, m) for m in _waku_messages()]


def seeds_filter_response() -> list[bytes]:
    return [
        wf.build_response("r1", wf.FilterStatus.OK),
        wf.build_response("r2", wf.FilterStatus.NOT_FOUND, "peer has no subscriptions"),
    ]


def seeds_lightpush_request(version: int) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        return [
            lp.build_request(version, f"r{i}", m, PUBSUB) for i, m in enumerate(_waku_messages())
        ]

    return seeds


def seeds_lightpush_response(version: int) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        return [
            lp.build_response(version, "r1", lp.LightPushStatus.SUCCESS, relay_peer_count=3),
            lp.build_response(version, "r2", lp.LightPushStatus.TOO_MANY_REQUESTS, "slow down"),
        ]

    return seeds


def seeds_store_request() -> list[bytes]:
    return [
        ws.build_request("q1", pubsub_topic=PUBSUB, content_topics=["/a/1/b/c"], limit=20),
        ws.build_request(
            "q2",
            pubsub_topic=PUBSUB,
            content_topics=["/a/1/b/c", "/a/1/d/e"],
            time_start=1,
            time_end=NOW_NS,
            cursor=bytes(32),
            forward=False,
            include_data=False,
        ),
        ws.build_request("q3", message_hashes=[bytes([i]) * 32 for i in range(5)]),
    ]


def seeds_store_response() -> list[bytes]:
    res = store_pb2.StoreQueryResponse(
        request_id="q1", status_code=200, status_desc="OK", pagination_cursor=bytes(32)
    )
    for i, m in enumerate(_waku_messages()):
        kv = res.messages.add()
        kv.message_hash = bytes([i]) * 32
        kv.pubsub_topic = PUBSUB
        kv.message.MergeFromString(m.encode())
    bare = store_pb2.StoreQueryResponse(request_id="q2", status_code=200)
    bare.messages.add().message_hash = bytes(32)
    return [res.SerializeToString(), bare.SerializeToString(), ws.build_error("q3", 400, "bad")]


def seeds_px_request() -> list[bytes]:
    return [px.build_request(n) for n in (1, 30, 2**31)]


def seeds_px_response() -> list[bytes]:
    return [px.build_response(_enrs()), px.build_response([])]


def seeds_metadata() -> list[bytes]:
    infos = [md.ClusterInfo(1, (0, 1, 7)), md.ClusterInfo(None, ()), md.ClusterInfo(16, (1023,))]
    return [md.encode_request(i) for i in infos] + [md.encode_response(i) for i in infos]


def seeds_enr() -> list[bytes]:
    return [e.encode() for e in _enrs()]


_ENR_KEY = bytes([11]) * 32


def seeds_enr_content() -> list[bytes]:
    """The signed content ``[seq, k, v, ...]`` of records made with one key."""
    import rlp

    records = [
        Enr.build(_ENR_KEY, 3, ip="10.1.2.3", tcp=60000, waku2=Waku2(relay=True, store=True)),
        Enr.build(
            _ENR_KEY,
            9,
            ip="::1",
            udp=9000,
            multiaddrs=["/dns4/node.example/tcp/443/wss", "/ip4/1.2.3.4/tcp/1/ws"],
            shards=RelayShards.of(1, [0, 1, 7]),
        ),
    ]
    return [rlp.encode(rlp.decode(r.encode())[1:]) for r in records]


def decode_signed_enr(content: bytes) -> object:
    """Sign the (mutated) content with the key it names, then decode the record: this
    gets past the signature to the field checks (the way tests/unit/test_enr signs
    malformed-but-signed records)."""
    import coincurve
    import rlp

    from boxless.waku.enr import MAX_RECORD_SIZE, keccak256

    if len(content) > MAX_RECORD_SIZE:  # refused unread: don't let the harness parse it
        return Enr.decode(content)
    try:
        items = rlp.decode(content)
    except rlp.exceptions.RLPException:
        return Enr.decode(content)
    if not isinstance(items, list):
        return Enr.decode(content)
    signature = coincurve.PrivateKey(_ENR_KEY).sign_recoverable(keccak256(content), hasher=None)
    return Enr.decode(rlp.encode([signature[:64], *items]))


def seeds_relay_shards() -> list[bytes]:
    return [
        RelayShards.of(1, [0, 1, 7]).encode()[1],
        RelayShards.of(16, range(0, 1024, 3)).encode()[1],
    ]


def seeds_multiaddrs() -> list[bytes]:
    from boxless.waku.enr import encode_multiaddrs

    return [
        encode_multiaddrs(["/dns4/node.example/tcp/443/wss", "/ip4/1.2.3.4/tcp/60000/ws"]),
        encode_multiaddrs(["/ip6/::1/tcp/8000"]),
    ]


def seeds_content_topic() -> list[bytes]:
    return [b"/boxless/1/chat-0123/proto", b"/0/a/1/b/c", b"/my-app/2/a-b_c/json"]


def seeds_frames() -> list[bytes]:
    return [
        encode_frame(b"hello") + encode_frame(b"") + encode_frame(bytes(300)),
        encode_frame(seeds_waku_message()[1]),
        b"\x80\x01" + bytes(128),
    ]


def _chat_messages() -> list[env.ChatMessage]:
    mid = bytes(range(16))
    alice, alice_device, _, _ = _people()
    card = make_contact_code(alice, alice_device, "Alice", NOW).to_bytes()
    bodies: list[env.Body] = [
        env.Text("hello 👋", None),
        env.Text("a reply", mid),
        env.Edit(mid, "edited"),
        env.Delete(mid),
        env.Reaction(mid, "👍", False),
        env.Receipt(tuple(bytes([i]) * 16 for i in range(20)), env.ReceiptKind.READ),
        env.Typing(True),
        env.ContactRequest("hi, it's Alice", ProofOfWork(NOW_MS, bytes(8)), card, b"s" * 32),
        env.ContactResponse(env.Decision.ACCEPT),
        env.ProfileUpdate("Alice", b"\x89PNG\r\n\x1a\n" + bytes(40)),
        env.SessionReset(),
        env.GroupKeyShareBody(bytes(200)),
        env.GroupOpBody((bytes(100), bytes(50)), (bytes(30),)),
        env.GroupPin("0123456789abcdef", True),
        env.GroupRead(2**40),
        env.SasCancel("flow", env.SasCancelReason.MISMATCH),
    ]
    return [env.ChatMessage(mid, i, NOW_MS, b) for i, b in enumerate(bodies)]


def seeds_chat() -> list[bytes]:
    return [env.encode(m) for m in _chat_messages()]


@cache
def _group() -> tuple[GroupLog, list[bytes]]:
    creator = Identity.from_private_bytes(bytes([1]) * 32)
    _, _, admin, _ = _people()
    member = Identity.from_private_bytes(bytes([3]) * 32)
    genesis = create_op(creator, "Hiking club", NOW_MS, description="hi")
    group = GroupLog(genesis.op_id)
    group.add(genesis)
    group.next_op(creator, Invite(admin.public_key, "ada"), NOW_MS)
    group.next_op(creator, Promote(admin.public_key), NOW_MS)
    group.next_op(admin, Invite(member.public_key), NOW_MS)
    group.next_op(admin, Rename("Hikers"), NOW_MS)
    joiner = Identity.from_private_bytes(bytes([4]) * 32)
    token = group.issue_token(admin, NOW_MS + 86_400_000)
    joined = join_op(joiner, token, NOW_MS)
    group.next_op(admin, Remove(member.public_key), NOW_MS)
    return group, [encode_op(op) for op in group.ops()] + [encode_op(joined)]


def seeds_group_op() -> list[bytes]:
    return _group()[1]


def _group_link_raw() -> bytes:
    _, _, admin, admin_device = _people()
    link = make_group_link(admin, admin_device, _group()[0], "Ada", NOW, validity=86_400)
    return link.to_bytes()


def seeds_group_link() -> list[bytes]:
    return [_group_link_raw()[1:]]  # the protobuf after the version byte


def seeds_group_link_text() -> list[bytes]:
    return [encode_link(GROUP_LINK_PREFIX, _group_link_raw()).encode()]


def seeds_sds() -> list[bytes]:
    history = tuple(HistoryEntry(f"m{i}", b"hint" if i % 2 else None, "s") for i in range(5))
    return [
        encode_message(SdsMessage("alice", "m9", "group-1", 42, history, bytes(64), b"content")),
        encode_message(SdsMessage("bob", "m1", "group-1", None, content=b"sync")),
        encode_message(SdsMessage("bob", "m2", "group-1", 1, repair_request=history)),
    ]


def seeds_bloom() -> list[bytes]:
    bloom = BloomFilter()
    for i in range(50):
        bloom.add(f"m{i}")
    return [bloom.to_bytes()]


def seeds_key_share() -> list[bytes]:
    import vodozemac

    session = vodozemac.GroupSession()
    session.encrypt(b"advance")
    raw = base64.b64decode(session.session_key.to_base64() + "==")
    group_id = bytes(range(32))
    return [encode_key_share(GroupKeyShare(group_id, session.session_id, raw, 1, False))]


def seeds_group_message() -> list[bytes]:
    import vodozemac

    session = vodozemac.GroupSession()
    body = session.encrypt(b"hello group").to_bytes()
    return [encode_group_message(GroupCiphertext(session.session_id, body))]


def _sealed(olm_body: bytes, olm_type: int = 1) -> bytes:
    return seal(
        _sealing().public_bytes,
        sender_identity_key=bytes([1]) * 32,
        sender_device_key=bytes([2]) * 32,
        ciphertext=OlmCiphertext(olm_type, olm_body, "sid"),
    )


def seeds_sealed() -> list[bytes]:
    return [_sealed(b"\x03" + bytes(100)), _sealed(bytes(3000), 0)]


def seeds_sealed_content() -> list[bytes]:
    content = envelope_pb2.SealedContent(
        sender_identity_key=bytes([1]) * 32,
        sender_device_key=bytes([2]) * 32,
        olm_type=1,
        olm_body=b"\x03" + bytes(100),
        session_id="sid",
    )
    return [content.SerializeToString()]


def open_sealed_content(content: bytes) -> object:
    """Seal ``content`` for the real key, then open it: fuzzes what lies behind the AEAD."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    from boxless.crypto import sealed

    if len(content) >= sealed.MAX_CONTENT_BYTES:
        content = content[: sealed.MAX_CONTENT_BYTES - 1]
    recipient = X25519PublicKey.from_public_bytes(_sealing().public_bytes)
    ct = sealed._SUITE.encrypt(pad(content), recipient, info=sealed._INFO)
    data = envelope_pb2.SealedEnvelope(
        version=sealed.ENVELOPE_VERSION, ephemeral_key=ct[:32], ciphertext=ct[32:]
    ).SerializeToString()
    return open_envelope(_sealing(), data)


def _contact_raw() -> bytes:
    alice, alice_device, _, _ = _people()
    return make_contact_code(alice, alice_device, "Alice 🦊", NOW).to_bytes()


def seeds_contact_code() -> list[bytes]:
    return [_contact_raw()[1:]]  # the protobuf after the version byte


def seeds_contact_text() -> list[bytes]:
    return [encode_link(CONTACT_LINK_PREFIX, _contact_raw()).encode()]


def seeds_bundle() -> list[bytes]:
    _, alice_device, _, admin_device = _people()
    return [
        d.bundle(NOW).to_proto().SerializeToString(deterministic=True)
        for d in (alice_device, admin_device)
    ]


def seeds_published() -> list[bytes]:
    _, alice_device, _, _ = _people()
    return [encode_published_bundle(alice_device.bundle(NOW))]


def open_published_plain(plain: bytes) -> object:
    """Encrypt ``plain`` under the identity's bundle key, then decode: fuzzes what the AEAD guards."""
    from boxless.identity import keys

    alice, _, _, _ = _people()
    nonce = bytes(keys._NONCE_BYTES)
    box = keys._published_key(alice.public_key).encrypt(nonce, plain, keys._PUBLISHED_INFO)
    return decode_published_bundle(nonce + box, alice.public_key, NOW)


def seeds_profile() -> list[bytes]:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    png = out.getvalue()
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 30, 200)).save(out, format="JPEG")
    return [
        Profile("Alice", png, "image/png", NOW_MS).encode(),
        Profile("Bob", out.getvalue(), "image/jpeg", NOW_MS).encode(),
        Profile("Carol", None, None, NOW_MS).encode(),
    ]


def seeds_qr_image() -> list[bytes]:
    link = encode_link(CONTACT_LINK_PREFIX, _contact_raw())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "qr.png"
        save_qr_png(link, path, scale=2)
        return [path.read_bytes()]


_QR_DIR = Path(tempfile.gettempdir())


def decode_qr_bytes(data: bytes) -> object:
    """The QR image decoder reads a file (an uploaded picture): write one, decode it."""
    with tempfile.NamedTemporaryFile(dir=_QR_DIR, suffix=".png") as f:
        f.write(data)
        f.flush()
        text = decode_qr_image(Path(f.name))
    return decode_contact_code(text, NOW)


def decode_frames(data: bytes) -> object:
    """Feed the stream in a few chunks, drain every frame, then end it."""
    decoder = FrameDecoder(64 * 1024)
    frames = []
    step = max(1, len(data) // 3)
    for i in range(0, len(data), step):
        decoder.feed(data[i : i + step])
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    decoder.eof()
    return frames


def decode_gossipsub_frames(data: bytes) -> object:
    """The relay's own frame splitter and RPC parse (node/relay_gossipsub.py)."""
    from google.protobuf.message import DecodeError as ProtobufDecodeError
    from libp2p.io.exceptions import MessageTooLarge
    from libp2p.pubsub.pb import rpc_pb2

    from boxless.node.relay_gossipsub import FrameDecoder as RelayFrames

    frames = RelayFrames(64 * 1024)
    frames.feed(data)
    out = []
    try:
        while (frame := frames.next_frame()) is not None:
            rpc = rpc_pb2.RPC()
            rpc.ParseFromString(frame)
            out.append(rpc)
    except (MessageTooLarge, ProtobufDecodeError) as exc:  # what the relay catches
        raise DecodeError(str(exc)) from None
    return out


def seeds_gossipsub() -> list[bytes]:
    from libp2p.pubsub.pb import rpc_pb2

    rpc = rpc_pb2.RPC()
    sub = rpc.subscriptions.add()
    sub.subscribe = True
    sub.topicid = PUBSUB
    msg = rpc.publish.add()
    msg.data = seeds_waku_message()[1]
    msg.topicIDs.append(PUBSUB)
    rpc.control.ihave.add(topicID=PUBSUB, messageIDs=[b"x" * 32])
    rpc.control.graft.add(topicID=PUBSUB)
    return [encode_frame(rpc.SerializeToString()) * 2]


_POLICY = lp.ShardPolicy(cluster_id=1, pubsub_topics=frozenset({PUBSUB}), num_shards=8)


def _text(fn: Callable[[str], object]) -> Decoder:
    return lambda data: fn(data.decode("utf-8", "replace"))


def _check_filter_request(data: bytes) -> object:
    return wf.parse_request(data)


TARGETS: tuple[Target, ...] = (
    # --- Waku protocols -----------------------------------------------------------------
    Target("waku.message", WakuMessage.decode, (DecodeError,), seeds_waku_message),
    Target(
        "waku.filter.request",
        _check_filter_request,
        (),
        seeds_filter_request,
        note="never raises: answers a rejection",
    ),
    Target("waku.filter.push", wf.decode_push, (DecodeError,), seeds_filter_push),
    Target("waku.filter.response", wf.parse_response, (DecodeError,), seeds_filter_response),
    Target(
        "waku.lightpush.request.v3",
        lambda d: lp.parse_request(3, d, _POLICY, NOW_NS),
        (),
        seeds_lightpush_request(3),
        note="never raises",
    ),
    Target(
        "waku.lightpush.request.v2",
        lambda d: lp.parse_request(2, d, _POLICY, NOW_NS),
        (),
        seeds_lightpush_request(2),
        note="never raises",
    ),
    Target(
        "waku.lightpush.response.v3",
        lambda d: lp.parse_response(3, d),
        (DecodeError,),
        seeds_lightpush_response(3),
    ),
    Target(
        "waku.lightpush.response.v2",
        lambda d: lp.parse_response(2, d),
        (DecodeError,),
        seeds_lightpush_response(2),
    ),
    Target("waku.store.request", ws.parse_request, (), seeds_store_request, note="never raises"),
    Target(
        "waku.store.response",
        ws.parse_response,
        (DecodeError,),
        seeds_store_response,
        random_max=2000,
    ),
    Target("waku.peer_exchange.request", px.parse_request, (DecodeError,), seeds_px_request),
    Target(
        "waku.peer_exchange.response",
        px.parse_response,
        (DecodeError,),
        seeds_px_response,
        random_max=2000,
    ),
    Target("waku.metadata.request", md.decode_request, (DecodeError,), seeds_metadata),
    Target("waku.metadata.response", md.decode_response, (DecodeError,), seeds_metadata),
    Target("waku.enr", Enr.decode, (DecodeError,), seeds_enr),
    Target(
        "waku.enr.signed",
        decode_signed_enr,
        (DecodeError,),
        seeds_enr_content,
        note="content re-signed: past the signature",
    ),
    Target(
        "waku.enr.text",
        _text(Enr.from_text),
        (DecodeError,),
        lambda: [e.to_text().encode() for e in _enrs()],
    ),
    Target("waku.enr.relay_shards", RelayShards.decode, (DecodeError,), seeds_relay_shards),
    Target("waku.enr.multiaddrs", decode_multiaddrs, (DecodeError,), seeds_multiaddrs),
    Target(
        "waku.content_topic", _text(parse_content_topic), (ValidationError,), seeds_content_topic
    ),
    Target(
        "waku.pubsub_topic",
        _text(parse_pubsub_topic),
        (ValidationError,),
        lambda: [PUBSUB.encode(), b"/waku/2/rs/65535/1023"],
    ),
    Target(
        "relay.gossipsub_frames",
        decode_gossipsub_frames,
        (DecodeError,),
        seeds_gossipsub,
        random_max=2000,
    ),
    # --- framing ------------------------------------------------------------------------
    Target("wire.frames", decode_frames, (DecodeError,), seeds_frames),
    Target(
        "wire.uvarint",
        decode_uvarint,
        (DecodeError,),
        lambda: [b"\x00", b"\xac\x02", b"\xff" * 8 + b"\x7f"],
    ),
    # --- app envelopes, groups, SDS -----------------------------------------------------
    Target("chat.envelope", env.decode, (DecodeError,), seeds_chat),
    Target("groups.op", decode_op, (DecodeError,), seeds_group_op),
    Target(
        "groups.link",
        lambda pb: decode_group_link(encode_link(GROUP_LINK_PREFIX, b"\x01" + pb), NOW),
        (InvalidGroupLink,),
        seeds_group_link,
        note="the link's protobuf, as a link",
    ),
    Target(
        "groups.link.text",
        _text(lambda t: decode_group_link(t, NOW)),
        (InvalidGroupLink,),
        seeds_group_link_text,
    ),
    Target("sync.sds_message", decode_message, (DecodeError,), seeds_sds),
    Target("sync.bloom", BloomFilter.from_bytes, (DecodeError,), seeds_bloom),
    # --- crypto -------------------------------------------------------------------------
    Target("crypto.megolm.key_share", decode_key_share, (DecodeError,), seeds_key_share),
    Target(
        "crypto.megolm.group_message", decode_group_message, (DecodeError,), seeds_group_message
    ),
    Target(
        "crypto.sealed",
        lambda d: open_envelope(_sealing(), d),
        (DecodeError, TamperedMessage),
        seeds_sealed,
        random_max=2000,
        note="outer envelope, real key",
    ),
    Target(
        "crypto.sealed.content",
        open_sealed_content,
        (DecodeError,),
        seeds_sealed_content,
        note="content sealed for the real key: the parser behind the AEAD",
    ),
    # --- identity: links, bundles, profiles, QR -----------------------------------------
    Target(
        "identity.contact_code",
        lambda pb: decode_contact_code(encode_link(CONTACT_LINK_PREFIX, b"\x01" + pb), NOW),
        (InvalidContactCode,),
        seeds_contact_code,
        note="the link's protobuf, as a link",
    ),
    Target(
        "identity.contact_code.text",
        _text(lambda t: decode_contact_code(t, NOW)),
        (InvalidContactCode,),
        seeds_contact_text,
    ),
    Target("identity.bundle", bundle_from_bytes, (InvalidBundle,), seeds_bundle),
    Target(
        "identity.published_bundle",
        lambda d: decode_published_bundle(d, _people()[0].public_key, NOW),
        (InvalidBundle,),
        seeds_published,
        note="as read from the bundle topic (client/bundles.py)",
    ),
    Target(
        "identity.published_bundle.plain",
        open_published_plain,
        (InvalidBundle,),
        lambda: seeds_bundle()[:1],
        note="sealed for the right identity: behind the AEAD",
    ),
    Target("identity.profile", decode_profile, (DecodeError,), seeds_profile, random_max=2000),
    Target(
        "identity.qr_image",
        decode_qr_bytes,
        (InvalidContactCode,),
        seeds_qr_image,
        random_max=2000,
        slow=True,
        mem_budget=96 << 20,
        note="a picture file -> QR text -> contact link; <= 16 Mpx: RGBA + grey 80 MB",
    ),
)


# ----------------------------------------------------------------------------- mutation

_EDGE_INTS = (
    0,
    1,
    127,
    128,
    255,
    256,
    2**16 - 1,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53,
    2**63 - 1,
    2**63,
    2**64 - 1,
)
_TOKENS = (
    b"\xff\xff\xff\xff\x07",  # varint 2^31 - 1
    b"\x80\x80\x80\x80\x08",  # varint 2^31
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # varint 2^64 - 1
    b"\xbb\x7f\xff\xff\xff",  # RLP string of 2^31 bytes
    b"\xfb\x7f\xff\xff\xff",  # RLP list of 2^31 bytes
    b"\xbf\xff\xff\xff\xff\xff\xff\xff\xff",  # RLP string, 8-byte length
    b"\x00",
    b"\xff" * 8,
    b"\x80",
    b"/",
    b"%",
    b"\n",
    "é🦊".encode(),
    b"\xed\xa0\x80",
)


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(buf) and shift < 70:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


Field = tuple[int, int, bytes]  # (field number, wire type, raw value as encoded after the tag)


def pb_fields(data: bytes) -> list[Field] | None:
    """Split protobuf wire bytes into fields; None if they are not well formed."""
    fields: list[Field] = []
    pos = 0
    while pos < len(data):
        tag = _read_varint(data, pos)
        if tag is None:
            return None
        key, pos = tag
        number, wire = key >> 3, key & 7
        start = pos
        if wire == 0:
            got = _read_varint(data, pos)
            if got is None:
                return None
            pos = got[1]
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            got = _read_varint(data, pos)
            if got is None:
                return None
            pos = got[1] + got[0]
        else:
            return None
        if pos > len(data) or number == 0:
            return None
        fields.append((number, wire, data[start:pos]))
    return fields


def _join(fields: Sequence[Field]) -> bytes:
    return b"".join(_varint(n << 3 | w) + raw for n, w, raw in fields)


def _len_value(raw: bytes) -> bytes:
    got = _read_varint(raw, 0)
    return raw[got[1] :] if got else b""


def pb_mutate(rng: random.Random, data: bytes, seeds: Sequence[bytes], depth: int = 0) -> bytes:
    """One structure-aware change to protobuf bytes (falls back to a byte change)."""
    fields = pb_fields(data)
    if not fields:
        return byte_mutate(rng, data, seeds)
    i = rng.randrange(len(fields))
    number, wire, raw = fields[i]
    op = rng.randrange(9)
    if op == 0:  # drop it
        del fields[i]
    elif op == 1:  # repeat it (repeated-field and last-one-wins paths, list caps)
        count = min(rng.choice((1, 2, 10, 100, 1000)), MAX_INPUT // (len(raw) + 4))
        fields[i + 1 : i + 1] = [fields[i]] * count
    elif op == 2 and wire == 0:  # an edge value
        fields[i] = (number, 0, _varint(rng.choice(_EDGE_INTS) * rng.choice((1, -1))))
    elif op == 3 and wire == 2:  # a length prefix that lies
        value = _len_value(raw)
        claimed = rng.choice((len(value) + 1, len(value) * 2 + 7, 2**31 - 1, 2**31, 2**63))
        fields[i] = (number, 2, _varint(claimed) + value)
    elif op == 4 and wire == 2:  # mutate what is inside (sub-message, string, bytes)
        value = _len_value(raw)
        inner = (
            pb_mutate(rng, value, seeds, depth + 1)
            if depth < 4 and rng.random() < 0.6
            else byte_mutate(rng, value, seeds)
        )
        fields[i] = (number, 2, _varint(len(inner)) + inner)
    elif op == 5:  # the wrong wire type for the field
        other = rng.choice([w for w in (0, 1, 2, 5) if w != wire])
        filler = {0: _varint(rng.choice(_EDGE_INTS)), 1: bytes(8), 5: bytes(4), 2: b"\x03abc"}
        fields[i] = (number, other, filler[other])
    elif op == 6:  # another (or an unknown) field number
        fields[i] = (rng.choice((1, 2, 3, 4, 5, 10, 15, 16, 20, 21, 99, 2**29 - 1)), wire, raw)
    elif op == 7:  # a big blob in a length-delimited field
        blob = rng.choice((b"\x00", b"\xff", b"A")) * rng.choice((33, 1000, 70_000))
        fields[i] = (number, 2, _varint(len(blob)) + blob)
    else:  # shuffle the order
        rng.shuffle(fields)
    return _join(fields)


def byte_mutate(rng: random.Random, data: bytes, seeds: Sequence[bytes]) -> bytes:
    """One byte-level change."""
    buf = bytearray(data)
    op = rng.randrange(9)
    n = len(buf)
    if op == 0 and n:  # flip bits
        for _ in range(rng.choice((1, 1, 2, 4))):
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif op == 1 and n:  # an interesting byte
        buf[rng.randrange(n)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x3F, 0x40))
    elif op == 2:  # insert random bytes
        at = rng.randint(0, n)
        buf[at:at] = rng.randbytes(rng.choice((1, 2, 4, 16, 64)))
    elif op == 3 and n:  # delete a range
        at = rng.randrange(n)
        del buf[at : at + rng.choice((1, 2, 8, 64, n))]
    elif op == 4 and n:  # duplicate a range
        at = rng.randrange(n)
        chunk = buf[at : at + rng.choice((1, 4, 32, 256))]
        buf[at:at] = chunk * rng.choice((1, 2, 16))
    elif op == 5 and seeds:  # splice with another seed
        other = rng.choice(seeds)
        cut_a, cut_b = rng.randint(0, n), rng.randint(0, len(other))
        buf = buf[:cut_a] + bytearray(other[cut_b:])
    elif op == 6:  # insert a huge-length header or another token
        at = rng.randint(0, n)
        buf[at:at] = rng.choice(_TOKENS)
    elif op == 7 and n:  # truncate
        del buf[rng.randrange(n) :]
    else:  # overwrite a run
        at = rng.randint(0, n)
        buf[at : at + 4] = rng.randbytes(4)
    return bytes(buf)


def generate(rng: random.Random, target: Target, seeds: Sequence[bytes]) -> bytes:
    """One input for ``target``: mostly mutated seeds, some random bytes."""
    roll = rng.random()
    if roll < 0.1 or not seeds:
        return rng.randbytes(rng.randint(0, target.random_max))
    data = rng.choice(seeds)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5, 8))):
        data = pb_mutate(rng, data, seeds) if rng.random() < 0.5 else byte_mutate(rng, data, seeds)
        data = data[:MAX_INPUT]  # every step: the generator's own memory stays small
    return data


# ----------------------------------------------------------------------------- the runner


@dataclass
class Result:
    name: str
    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: dict[str, bytes] = field(default_factory=dict)  # "Type: message" -> first input
    crash_count: int = 0
    peak_bytes: int = 0
    peak_input_len: int = 0
    over_budget: int = 0
    rss_growth_kib: int = 0
    seconds: float = 0.0


def call(target: Target, data: bytes, result: Result) -> None:
    """Run the decoder once; count it, or record a crash."""
    try:
        target.decode(data)
    except target.errors:
        result.rejected += 1
    except Exception as exc:  # a crash: anything the decoder does not document
        result.crash_count += 1
        key = f"{type(exc).__name__}: {str(exc)[:120]}"
        result.crashes.setdefault(key, data)
    else:
        result.accepted += 1
    result.inputs += 1


def run_target(
    target: Target,
    inputs: int,
    rng: random.Random,
    *,
    mem_budget: int = DEFAULT_MEM_BUDGET,
    track_memory: bool = True,
) -> Result:
    """Feed ``inputs`` generated inputs to one decoder."""
    seeds = target.seeds()
    for seed in seeds:  # the seeds themselves must decode
        try:
            target.decode(seed)
        except target.errors as exc:
            raise AssertionError(f"{target.name}: a valid seed was refused: {exc}") from exc
    result = Result(target.name)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    for _ in range(inputs):
        data = generate(rng, target, seeds)
        if track_memory:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
        call(target, data, result)
        if track_memory:
            peak = tracemalloc.get_traced_memory()[1] - base
            if peak > result.peak_bytes:
                result.peak_bytes, result.peak_input_len = peak, len(data)
            if peak > mem_budget:
                result.over_budget += 1
                result.crashes.setdefault(f"over memory budget: {peak} bytes", data)
    result.seconds = time.perf_counter() - started
    result.rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return result


def _select(prefixes: Sequence[str]) -> list[Target]:
    if not prefixes:
        return list(TARGETS)
    return [t for t in TARGETS if any(t.name.startswith(p) for p in prefixes)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per decoder")
    parser.add_argument("--only", nargs="*", default=[], help="decoder name prefixes")
    parser.add_argument("--seed", type=int, default=1, help="random seed (runs are reproducible)")
    parser.add_argument("--mem-budget", type=int, default=DEFAULT_MEM_BUDGET)
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--list", action="store_true", help="list the decoders and stop")
    args = parser.parse_args(argv)
    targets = _select(args.only)
    if args.list:
        for t in targets:
            errors = ", ".join(e.__name__ for e in t.errors) or "(never raises)"
            print(f"{t.name:36} {errors:32} {t.note}")
        return 0
    tracemalloc.start()
    print(f"{len(targets)} decoders, {args.inputs} inputs each, seed {args.seed}", flush=True)
    print(
        "| decoder | inputs | accepted | rejected | crashes | peak alloc / call | "
        "input len at peak | RSS growth | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    failed = False
    for target in targets:
        rng = random.Random(f"{args.seed}:{target.name}")
        budget = target.mem_budget or args.mem_budget
        result = run_target(target, args.inputs, rng, mem_budget=budget)
        print(
            f"| {result.name} | {result.inputs:,} | {result.accepted:,} | {result.rejected:,} "
            f"| {result.crash_count + result.over_budget} | {result.peak_bytes / 1024:,.0f} KiB "
            f"| {result.peak_input_len:,} | {result.rss_growth_kib:,} KiB | {result.seconds:.0f} |",
            flush=True,
        )
        if result.crashes:
            failed = True
            args.crash_dir.mkdir(parents=True, exist_ok=True)
            for i, (key, data) in enumerate(result.crashes.items()):
                print(f"    CRASH {key} (input {len(data)} bytes)", flush=True)
                (args.crash_dir / f"{result.name}-{i}.hex").write_text(
                    f"{key}\n{data.hex()}\n", encoding="utf-8"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
