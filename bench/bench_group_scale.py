"""Groups at scale on the client's full path: Megolm + SDS against pairwise Olm.

For groups of 100, 1,000 and 5,000 member devices, on the real protocol code.
The group is :class:`bench_groups.Group`: the sender is a full device (SQLite
file, Olm account, SessionManager, GroupSessions); every other member device
is a real vodozemac Account with a real Olm session to the sender (opened and
answered once, so the sender sends normal Olm messages) and its own sealing
key; a few "readers" also have their own SQLite file, GroupSessions and
SdsChannel and read every message, so the figures are for messages that
really arrive.

Per group size:

* **send** -- sender CPU per group text on ``GroupManager._publish``'s path:
  ``ChatMessage(Text)`` encode → ``SdsChannel.wrap`` → ``GroupSessions.encrypt``
  (one transaction) → ``encode_group_message`` → ``WakuMessage.encode``.
  Median over ``--messages`` after ``--warmup`` messages (so the SDS causal
  history is full, as in a group that talks).
* **SDS state** -- what ``_publish`` adds around it: it keeps the channel in
  memory (loaded once) and saves it as JSON (``to_state`` + ``json.dumps`` +
  UPDATE) twice per send, before and after the network call (which adds the
  Waku hash as retrieval hint).
  Reported apart: it is client bookkeeping, not protocol; a table at the end
  shows how it grows with the channel's history.
* **wire bytes** -- the WakuMessage; and the SDS message inside it before
  Megolm pads it to the sealed-envelope buckets.
* **receive** -- a reader: decode, ``GroupSessions.decrypt``, SDS sender
  check, ``SdsChannel.receive``, envelope decode.
* **removal** -- one member is removed: ``outbound()`` rotates and returns a
  key share per remaining device; each goes as the client sends it
  (``ChatMessage(GroupKeyShareBody)`` → ``SessionManager.encrypt`` → ``seal``
  → WakuMessage on the member's contact topic). Timed twice: in one
  transaction (the protocol's cost) and with a commit per share (as
  ``GroupManager``'s outbox sends them today: one ``_transmit_card`` each).
  The readers take the new key over Olm; the removed member is checked to
  fail on the next message.
* **pairwise** -- the same ``ChatMessage(Text)`` Olm-encrypted, sealed and
  wrapped for every other member (what 1:1 chat does per contact), in one
  transaction. No SDS: pairwise needs no group bloom filter, so this is the
  comparison most favourable to pairwise.

CPU is ``time.process_time`` (this process; SQLite runs in-process); wall
time is given where disk syncs matter.

    python bench/bench_group_scale.py [--sizes 100,1000,5000] [--messages 200]
                                      [--warmup 20]

Nothing is saved; temporary files are removed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_groups import Group, Member, timed  # noqa: E402

from boxless.chat import envelope as env  # noqa: E402
from boxless.chat.topics import contact_topic, group_topic  # noqa: E402
from boxless.crypto import seal  # noqa: E402
from boxless.crypto.megolm import (  # noqa: E402
    KeyShare,
    RotationPolicy,
    UnknownGroupSession,
    decode_group_message,
    encode_group_message,
)
from boxless.sync import SdsChannel, decode_message  # noqa: E402
from boxless.waku.message import WakuMessage, message_hash  # noqa: E402
from boxless.waku.sharding import pubsub_topic_for  # noqa: E402

TEXT = "x" * 200
GROUP = secrets.token_bytes(32)
TOPIC = group_topic(GROUP)
PUBSUB = pubsub_topic_for(TOPIC)


def _ms(now: float) -> int:
    return int(now * 1000)


def text_message(now: float) -> bytes:
    return env.encode(env.new_message(env.Text(TEXT), lamport=0, sent_at_ms=_ms(now)))


class Scale:
    """A :class:`Group` plus the SDS channels of the sender and the readers."""

    def __init__(self, folder: Path, size: int, now: float) -> None:
        self.group = Group(folder, size)
        self.group.groups.policy = RotationPolicy(max_messages=10**9)  # no rotation mid-run
        self.sender = self.group.sender
        self.sds = SdsChannel(GROUP.hex(), self.sender.identity_key.hex(), now=now)
        self.readers = [m for m in self.group.members if m.groups is not None]
        self.reader_sds = {
            id(r): SdsChannel(GROUP.hex(), r.identity.hex(), now=now) for r in self.readers
        }
        with self.sender.db.transaction() as cur:  # stands in for client_groups.sds_state
            cur.execute("CREATE TABLE bench_sds (group_id BLOB PRIMARY KEY, sds_state TEXT)")
            cur.execute(
                "INSERT INTO bench_sds VALUES (?, ?)", (GROUP, json.dumps(self.sds.to_state()))
            )

    def compose(self, now: float) -> tuple[str, int, bytes]:
        """One group text on the client's path: (SDS id, SDS bytes, WakuMessage bytes)."""
        content = text_message(now)
        with self.sender.db.transaction():
            wrapped = self.sds.wrap(content, now)
            ct = self.group.groups.encrypt(GROUP, wrapped.data, now)
        wire = WakuMessage(
            payload=encode_group_message(ct), content_topic=TOPIC, timestamp=int(now * 1e9)
        ).encode()
        return wrapped.message_id, len(wrapped.data), wire

    def load_sds(self) -> None:
        """``GroupManager._sds``: the channel, from its JSON in the database."""
        with self.sender.db.transaction() as cur:
            cur.execute("SELECT sds_state FROM bench_sds WHERE group_id = ?", (GROUP,))
            self.sds = SdsChannel.from_state(json.loads(cur.fetchone()[0]))

    def save_sds(self) -> None:
        """``GroupManager._save_sds``: the channel, as JSON into the database."""
        with self.sender.db.transaction() as cur:
            cur.execute(
                "UPDATE bench_sds SET sds_state = ? WHERE group_id = ?",
                (json.dumps(self.sds.to_state()), GROUP),
            )

    def after_send(self, message_id: str, wire: bytes) -> None:
        """What ``_publish`` does after the network call: hint, save."""
        self.sds.set_retrieval_hint(message_id, message_hash(PUBSUB, WakuMessage.decode(wire)))
        self.save_sds()

    def reply(self, now: float) -> None:
        """The first reader answers (at the SDS layer only) and everyone hears it: its
        causal history acknowledges our message, as the talk of a live group does."""
        replier = self.readers[0]
        wrapped = self.reader_sds[id(replier)].wrap(b"ok", now)
        assert self.sds.receive(wrapped.data, now)
        for r in self.readers[1:]:
            assert self.reader_sds[id(r)].receive(wrapped.data, now)

    def read(self, reader: Member, wire: bytes, now: float) -> None:
        """What ``GroupManager._receive`` does with a group message."""
        assert reader.groups is not None
        msg = WakuMessage.decode(wire)
        plain = reader.groups.decrypt(GROUP, None, decode_group_message(msg.payload))
        assert decode_message(plain.plaintext).sender_id == plain.sender_identity.hex()
        delivered = self.reader_sds[id(reader)].receive(
            plain.plaintext, now, retrieval_hint=message_hash(PUBSUB, msg)
        )
        assert len(delivered) == 1
        body = env.decode(delivered[0].content).body
        assert isinstance(body, env.Text) and body.text == TEXT

    def share_keys(
        self, shares: list[KeyShare], members: list[Member], now: float, *, commit_each: bool
    ) -> list[tuple[Member, bytes]]:
        """Each share as the client sends it; one transaction, or one per share."""
        by_key = {m.bundle.curve25519: m for m in members}
        manager = self.sender.manager

        def one(share: KeyShare) -> tuple[Member, bytes]:
            member = by_key[share.device]
            msg = env.new_message(
                env.GroupKeyShareBody(share.payload), lamport=0, sent_at_ms=_ms(now)
            )
            with manager.transaction():
                olm = manager.encrypt(member.bundle, env.encode(msg))
            sealed = seal(
                member.bundle.sealing_key,
                sender_identity_key=self.sender.identity_key,
                sender_device_key=self.group.sender_key,
                ciphertext=olm,
            )
            topic = contact_topic(member.identity)
            return member, WakuMessage(sealed, topic, timestamp=int(now * 1e9)).encode()

        if commit_each:
            return [one(s) for s in shares]
        with manager.transaction():
            return [one(s) for s in shares]

    def take_share(self, member: Member, wire: bytes) -> None:
        assert member.groups is not None
        body = env.decode(self.group.receive_olm(member, WakuMessage.decode(wire).payload)).body
        assert isinstance(body, env.GroupKeyShareBody)
        member.groups.add_key_share(self.sender.identity_key, self.group.sender_key, body.payload)


@dataclass
class Row:
    size: int
    setup_s: float
    send_us: float
    save_us: float
    sds_bytes: int
    wire_bytes: int
    receive_us: float
    removal_cpu_s: float
    removal_wall_s: float
    removal_each_wall_s: float
    removal_bytes: int
    pairwise_ms: float
    pairwise_bytes: int


def run_size(folder: Path, size: int, messages: int, warmup: int) -> Row:
    print(f"\n== {size:,} member devices", flush=True)
    now = time.time()
    scale, _, setup_wall = timed(lambda: Scale(folder, size, now))
    group, members, readers = scale.group, scale.group.members, scale.readers
    print(f"setup: {size - 1:,} Olm sessions (opened and answered) in {setup_wall:.1f} s")

    _, shares = group.groups.outbound(GROUP, [m.bundle.curve25519 for m in members], now)
    by_device = {s.device: s for s in shares}
    for r in readers:  # the start of the group is not what is measured
        assert r.groups is not None
        r.groups.add_key_share(
            group.sender.identity_key, group.sender_key, by_device[r.bundle.curve25519].payload
        )

    send_cpu, save_cpu, receive_cpu = [], [], []
    sds_bytes = wire_bytes = 0
    for i in range(warmup + messages):
        t = now + i * 0.01
        t0 = t1 = time.process_time()
        message_id, sds_bytes, wire = scale.compose(t)
        t2 = time.process_time()
        scale.save_sds()
        scale.after_send(message_id, wire)
        t3 = time.process_time()
        wire_bytes = len(wire)
        for k, r in enumerate(readers):
            before = time.process_time()
            scale.read(r, wire, t)
            if k == 1 and i >= warmup:
                receive_cpu.append(time.process_time() - before)
        scale.reply(t + 0.005)
        scale.save_sds()  # what the sender's receive of the reply leaves in the database
        if i >= warmup:
            send_cpu.append(t2 - t1)
            save_cpu.append(t1 - t0 + t3 - t2)
    assert len(scale.sds.unacknowledged()) <= 1

    # Removal: the last member (a reader) leaves.
    removed, remaining = members[-1], members[:-1]
    now += 3600
    devices = [m.bundle.curve25519 for m in remaining]

    rotated: list[KeyShare] = []

    def rotate_and_share() -> list[tuple[Member, bytes]]:
        state, shares = group.groups.outbound(GROUP, devices, now)
        assert state.rotated and state.reason == "member removed"
        assert len(shares) == size - 2
        rotated.extend(shares)
        return scale.share_keys(shares, remaining, now, commit_each=False)

    sent, removal_cpu, removal_wall = timed(rotate_and_share)
    removal_bytes = sum(len(w) for _, w in sent)
    for member, wire in sent:
        if member.groups is not None:
            scale.take_share(member, wire)
    # The same shares again, a commit each (the readers skip these Olm messages).
    _, _, removal_each_wall = timed(
        lambda: scale.share_keys(rotated, remaining, now, commit_each=True)
    )
    after = decode_group_message(WakuMessage.decode(scale.compose(now)[2]).payload)
    for r in readers:
        assert r.groups is not None
        if r is removed:
            try:
                r.groups.decrypt(GROUP, None, after)
            except UnknownGroupSession:
                pass
            else:  # pragma: no cover - the point of rotating
                raise AssertionError("the removed member read a message sent after its removal")
        else:
            assert r.groups.decrypt(GROUP, None, after).message_index == 0
    print(
        f"removal: rotate + {len(sent):,} key shares: {removal_wall:.2f} s wall in one "
        f"transaction, {removal_each_wall:.2f} s wall with a commit per share"
    )

    # Pairwise: the same ChatMessage, Olm-encrypted for every remaining member.
    content = text_message(now)
    out, pairwise_cpu, _ = timed(lambda: group.send_pairwise(remaining, content, now))
    for member, wire in zip(remaining, out, strict=True):
        if member.groups is not None:
            body = env.decode(group.receive_olm(member, WakuMessage.decode(wire).payload)).body
            assert isinstance(body, env.Text) and body.text == TEXT
    group.sender.db.close()
    return Row(
        size=size,
        setup_s=setup_wall,
        send_us=statistics.median(send_cpu) * 1e6,
        save_us=statistics.median(save_cpu) * 1e6,
        sds_bytes=sds_bytes,
        wire_bytes=wire_bytes,
        receive_us=statistics.median(receive_cpu) * 1e6,
        removal_cpu_s=removal_cpu,
        removal_wall_s=removal_wall,
        removal_each_wall_s=removal_each_wall,
        removal_bytes=removal_bytes,
        pairwise_ms=pairwise_cpu * 1e3,
        pairwise_bytes=sum(len(w) for w in out),
    )


def print_table(rows: list[Row], messages: int) -> None:
    print(
        f"\nA 200-character group text; medians of {messages} messages; CPU = this process."
        "\nsend = envelope + SDS wrap + Megolm encrypt (one commit) + group message + Waku encode."
    )
    header = (
        f"{'members':>8} | {'send CPU':>9} | {'SDS state':>9} | {'wire bytes':>10} | "
        f"{'SDS bytes':>9} | {'receive':>8} | {'removal: 1 commit':>24} | "
        f"{'commit/share':>12} | {'removal MB':>10} | {'pairwise CPU':>12} | "
        f"{'pairwise MB':>11} | {'CPU ratio':>9} | {'bytes ratio':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.size:>8,} | {r.send_us:>6.0f} µs | {r.save_us / 1e3:>6.1f} ms | {r.wire_bytes:>10,} | "
            f"{r.sds_bytes:>9,} | {r.receive_us:>5.0f} µs | "
            f"{r.removal_cpu_s:>6.2f} s CPU {r.removal_wall_s:>6.2f} s wall | "
            f"{r.removal_each_wall_s:>8.2f} s | {r.removal_bytes / 1e6:>10.2f} | "
            f"{r.pairwise_ms:>9.0f} ms | {r.pairwise_bytes / 1e6:>11.2f} | "
            f"{r.pairwise_ms * 1e3 / r.send_us:>8,.0f}x | "
            f"{r.pairwise_bytes / r.wire_bytes:>10.1f}x"
        )
    print(
        "\nratios: pairwise / Megolm send, for one message to the group."
        "\nsetup (not in the figures): " + ", ".join(f"{r.size:,}: {r.setup_s:.1f} s" for r in rows)
    )


def sds_state_cost(history: int, unacknowledged: int) -> tuple[float, float, int]:
    """CPU (ms) to load and to save the SDS state once, and its JSON bytes, after
    ``history`` messages from another member and ``unacknowledged`` of ours."""
    now = time.time()
    me = SdsChannel(GROUP.hex(), secrets.token_hex(32), now=now)
    other = SdsChannel(GROUP.hex(), secrets.token_hex(32), now=now)
    for i in range(history):
        me.receive(other.wrap(text_message(now), now + i * 0.001).data, now)
    for i in range(unacknowledged):
        me.wrap(text_message(now), now + 100 + i * 0.001)
    start = time.process_time()
    saved = json.dumps(me.to_state())
    mid = time.process_time()
    SdsChannel.from_state(json.loads(saved))
    end = time.process_time()
    return (end - mid) * 1e3, (mid - start) * 1e3, len(saved)


def print_sds_state_table() -> None:
    print(
        "\nSDS state in the client's database, once (GroupManager loads it once per run and"
        " saves it twice per send, once per receive)"
    )
    print(
        f"{'history':>8} | {'unacked':>7} | {'load CPU':>9} | {'save CPU':>9} | {'JSON bytes':>11}"
    )
    for history, unacked in ((100, 0), (1000, 0), (10_000, 0), (100, 10), (100, 100)):
        load, save, size = sds_state_cost(history, unacked)
        print(f"{history:>8,} | {unacked:>7,} | {load:>6.1f} ms | {save:>6.1f} ms | {size:>11,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-sds-state", action="store_true", help="skip the SDS state table")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(run_size(Path(tmp), size, args.messages, args.warmup))
    print_table(rows, args.messages)
    if not args.no_sds_state:
        print_sds_state_table()


if __name__ == "__main__":
    main()
