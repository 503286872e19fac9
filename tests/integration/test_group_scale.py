"""A 1,000-member group on the real protocol code: one message reaches every member.

Theory of operation
-------------------
One sender and 999 member devices, each a full crypto device
(:class:`tests.crypto_fixtures.Device`: its own SQLite database with the crypto
migrations, a vodozemac Olm account pickled in it, a ``SessionManager``), with
``GroupSessions`` on that database and an ``SdsChannel`` per group.

* The group starts as the client starts one: the sender's ``outbound()`` makes
  the Megolm session and one key share per member device; each share goes as
  the client sends it (a ``ChatMessage`` holding a ``GroupKeyShareBody``,
  Olm-encrypted by ``SessionManager.encrypt`` -- a pre-key message opening the
  session from the member's bundle -- sealed, in a WakuMessage on the member's
  contact topic), and the member opens, Olm-decrypts (``SessionManager.decrypt``)
  and stores it (``add_key_share``): its inbound state comes from its key share.
* One text is composed as ``GroupManager._publish`` composes it (envelope →
  ``SdsChannel.wrap`` → ``GroupSessions.encrypt`` → ``encode_group_message`` →
  WakuMessage on ``group_topic``), published once by a real ``WakuNode`` and
  relayed over loopback TCP to a second one; each of the 999 members then does
  what ``GroupManager._receive`` does with the payload that arrived there
  (Megolm decrypt, SDS sender = Megolm sender, ``SdsChannel.receive``, decode
  the envelope) and gets the text.
* One member is removed: ``outbound()`` rotates and shares with the 998 left;
  the next message reaches them, and the removed member cannot decrypt it.

O(1) per message is asserted by counting, not timing (timing is in
``bench/bench_group_scale.py``): the sender's outbound session advanced one
Megolm index per message, sending wrote the same number of database rows and
produced one Waku message of the same size as in a 100-member group, and
``outbound()`` has nothing to share afterwards.

Choices that keep this under 90 s on two busy cores
---------------------------------------------------
* 967 member databases are in-memory SQLite: the same schema, SQL and
  transactions; :data:`FILE_BACKED` members (the removed one among them) and
  the sender use files. Files for all would mean ~3,000 open files and
  thousands of fsyncs on a shared disk without testing anything more.
* Key shares go through the real Olm and sealing code but are handed to the
  members in-process: only the group message is relayed (the 1:1 path over
  the network is covered by the chat tests). SDS state stays in memory (the
  client keeps it as JSON per group).
* The CPU-heavy phases run in a worker thread so the nodes' event loop keeps
  its heartbeats.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from boxless.chat import envelope as env
from boxless.chat.topics import contact_topic, group_topic
from boxless.crypto import open_envelope, seal
from boxless.crypto.megolm import (
    GroupSessions,
    KeyShare,
    UnknownGroupSession,
    decode_group_message,
    encode_group_message,
)
from boxless.node.config import NodeConfig
from boxless.node.service import ReceivedMessage, WakuNode
from boxless.sync import SdsChannel, decode_message
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic_for
from tests.crypto_fixtures import Device

pytestmark = pytest.mark.slow

GROUP_SIZE = 1000  # member devices, the sender included
SMALL_SIZE = 100
FILE_BACKED = 32
TEXT = "hello, a thousand of you"
TEXT_AFTER = "one of you is gone"


def _ms(now: float) -> int:
    return int(now * 1000)


@dataclass
class Member:
    """A member device: Olm, Megolm and SDS state of its own."""

    device: Device
    groups: GroupSessions = field(init=False)
    sds: dict[bytes, SdsChannel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.groups = GroupSessions(self.device.db, self.device.pickle_key)

    @property
    def key(self) -> bytes:
        return self.device.bundle().curve25519

    def take_key_share(self, wire: bytes, group_id: bytes, now: float) -> None:
        """What the client does with a sealed 1:1 message holding a key share."""
        opened = open_envelope(self.device.sealing, WakuMessage.decode(wire).payload)
        with self.device.manager.transaction():
            plain = self.device.manager.decrypt(opened.sender_device_key, opened.ciphertext)
        body = env.decode(plain).body
        assert isinstance(body, env.GroupKeyShareBody)
        share = self.groups.add_key_share(
            opened.sender_identity_key, opened.sender_device_key, body.payload
        )
        assert share.group_id == group_id
        self.sds.setdefault(
            group_id, SdsChannel(group_id.hex(), self.device.identity_key.hex(), now=now)
        )

    def read(self, group_id: bytes, wire: WakuMessage, message_hash: bytes, now: float) -> str:
        """What ``GroupManager._receive`` does with a group message; the text delivered."""
        plain = self.groups.decrypt(group_id, None, decode_group_message(wire.payload))
        assert decode_message(plain.plaintext).sender_id == plain.sender_identity.hex()
        delivered = self.sds[group_id].receive(plain.plaintext, now, retrieval_hint=message_hash)
        assert len(delivered) == 1
        body = env.decode(delivered[0].content).body
        assert isinstance(body, env.Text)
        return body.text


class Sender:
    """The sending device: what ``GroupManager`` does, without the network."""

    def __init__(self, path: Path) -> None:
        self.device = Device(path)
        self.key = self.device.curve25519
        self.groups = GroupSessions(self.device.db, self.device.pickle_key)
        self.sds: dict[bytes, SdsChannel] = {}

    def start(self, group_id: bytes, members: list[Member], now: float) -> list[KeyShare]:
        self.sds[group_id] = SdsChannel(group_id.hex(), self.device.identity_key.hex(), now=now)
        state, shares = self.groups.outbound(group_id, [m.key for m in members], now)
        assert state.rotated and state.reason == "new"
        return shares

    def send_shares(
        self, shares: list[KeyShare], members: list[Member], now: float
    ) -> list[tuple[Member, bytes]]:
        """Each share in a ChatMessage, Olm-encrypted, sealed, in a WakuMessage (one commit)."""
        by_key = {m.key: m for m in members}
        out = []
        with self.device.manager.transaction():
            for share in shares:
                member = by_key[share.device]
                msg = env.new_message(
                    env.GroupKeyShareBody(share.payload), lamport=0, sent_at_ms=_ms(now)
                )
                olm = self.device.manager.encrypt(member.device.bundle(), env.encode(msg))
                sealed = seal(
                    member.device.sealing.public_bytes,
                    sender_identity_key=self.device.identity_key,
                    sender_device_key=self.key,
                    ciphertext=olm,
                )
                topic = contact_topic(member.device.identity_key)
                out.append((member, WakuMessage(sealed, topic, timestamp=time.time_ns()).encode()))
        return out

    def compose(self, group_id: bytes, text: str, now: float) -> tuple[WakuMessage, int]:
        """One group text as ``GroupManager._publish`` composes it; and the rows it wrote."""
        rows_before = self.device.db.conn.total_changes
        msg = env.new_message(env.Text(text), lamport=0, sent_at_ms=_ms(now))
        with self.device.db.transaction():
            wrapped = self.sds[group_id].wrap(env.encode(msg), now)
            ct = self.groups.encrypt(group_id, wrapped.data, now)
        waku = WakuMessage(
            payload=encode_group_message(ct),
            content_topic=group_topic(group_id),
            timestamp=time.time_ns(),
        )
        return waku, self.device.db.conn.total_changes - rows_before

    def index_after_send(self, group_id: bytes, members: list[Member], now: float) -> int:
        """The outbound session's Megolm index, checking there is nothing new to share."""
        state, shares = self.groups.outbound(group_id, [m.key for m in members], now)
        assert not state.rotated and shares == []
        return state.message_index


def _make_members(tmp_path: Path, count: int) -> list[Member]:
    members = []
    for i in range(count):
        path = tmp_path / f"member-{i}.db" if i >= count - FILE_BACKED else Path(":memory:")
        members.append(Member(Device(path, one_time_keys=1)))
    return members


def _distribute(
    sender: Sender, group_id: bytes, members: list[Member], shares: list[KeyShare]
) -> None:
    now = time.time()
    for member, wire in sender.send_shares(shares, members, now):
        member.take_key_share(wire, group_id, now)


def _read_all(
    members: list[Member], group_id: bytes, got: ReceivedMessage
) -> dict[str, list[Member]]:
    texts: dict[str, list[Member]] = {}
    now = time.time()
    for m in members:
        texts.setdefault(m.read(group_id, got.message, got.message_hash, now), []).append(m)
    return texts


async def _wait_until(cond: Callable[[], bool], timeout: float) -> None:
    """Bounded polling: py-libp2p has no event for "a mesh peer joined"."""
    with trio.fail_after(timeout):
        while not cond():  # noqa: ASYNC110 - no event to wait on; deadline-bounded
            await trio.sleep(0.05)


async def _relay_once(
    a: WakuNode, inbox: trio.MemoryReceiveChannel[ReceivedMessage], topic: str, msg: WakuMessage
) -> ReceivedMessage:
    """Publish on node A; return what node B's relay accepted."""
    published = a.metrics.relay_published._value.get()
    result = await a.publish(topic, msg)
    assert result.peers == 1
    assert a.metrics.relay_published._value.get() == published + 1  # one publish, whatever n
    with trio.fail_after(20):
        got = await inbox.receive()
    assert got.message_hash == result.message_hash and got.message == msg
    return got


async def test_one_message_reaches_999_members_and_a_removed_member_reads_nothing_after(
    tmp_path: Path,
) -> None:
    big, small = secrets.token_bytes(32), secrets.token_bytes(32)
    now = time.time()
    sender = Sender(tmp_path / "sender.db")
    members = await trio.to_thread.run_sync(_make_members, tmp_path, GROUP_SIZE - 1)

    # The sender starts both groups and shares its Megolm key over Olm with every member device.
    shares = sender.start(big, members, now)
    assert len(shares) == GROUP_SIZE - 1 and {s.device for s in shares} == {m.key for m in members}
    await trio.to_thread.run_sync(_distribute, sender, big, members, shares)
    in_small = members[: SMALL_SIZE - 1]
    await trio.to_thread.run_sync(
        _distribute, sender, small, in_small, sender.start(small, in_small, now)
    )

    # The 100-member group's first message: what n should not change.
    small_msg, small_rows = sender.compose(small, TEXT, time.time())
    assert sender.index_after_send(small, in_small, time.time()) == 1

    topic = pubsub_topic_for(group_topic(big))
    async with trio.open_nursery() as nursery:
        a: WakuNode = await nursery.start(
            WakuNode(NodeConfig(tmp_path / "a", ("/ip4/127.0.0.1/tcp/0",), store_resume=False)).run
        )
        b: WakuNode = await nursery.start(
            WakuNode(
                NodeConfig(
                    tmp_path / "b",
                    ("/ip4/127.0.0.1/tcp/0",),
                    peers=(a.addrs()[0],),
                    store_resume=False,
                )
            ).run
        )
        assert a.relay is not None and b.relay is not None and topic in a.pubsub_topics
        await _wait_until(lambda: b.peer_id in a.relay.mesh_peers(topic), 30)  # type: ignore[union-attr]
        async with b.messages() as inbox:
            # One message to 999 members: one Megolm encryption, one Waku message.
            msg, rows = sender.compose(big, TEXT, time.time())
            assert sender.index_after_send(big, members, time.time()) == 1
            assert rows == small_rows  # the same database writes as for 100 members
            assert abs(len(msg.encode()) - len(small_msg.encode())) <= 8
            got = await _relay_once(a, inbox, topic, msg)
            texts = await trio.to_thread.run_sync(_read_all, members, big, got)
            assert list(texts) == [TEXT] and len(texts[TEXT]) == GROUP_SIZE - 1

            # A member is removed: a new session, its key to the 998 left and to no one else.
            removed, remaining = members[-1], members[:-1]
            state, shares = sender.groups.outbound(big, [m.key for m in remaining], time.time())
            assert state.rotated and state.reason == "member removed"
            assert len(shares) == GROUP_SIZE - 2 and removed.key not in {s.device for s in shares}
            await trio.to_thread.run_sync(_distribute, sender, big, remaining, shares)

            after, _ = sender.compose(big, TEXT_AFTER, time.time())
            assert abs(len(after.encode()) - len(msg.encode())) <= 128  # + one causal-history id
            got = await _relay_once(a, inbox, topic, after)
            with pytest.raises(UnknownGroupSession):
                removed.groups.decrypt(big, None, decode_group_message(got.message.payload))
            texts = await trio.to_thread.run_sync(_read_all, remaining, big, got)
            assert list(texts) == [TEXT_AFTER] and len(texts[TEXT_AFTER]) == GROUP_SIZE - 2
        nursery.cancel_scope.cancel()
    sender.device.db.close()
    for m in members:
        m.device.db.close()
