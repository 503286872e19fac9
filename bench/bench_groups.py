"""Group messaging cost: Megolm (encrypt once) against pairwise Olm (encrypt per member).

For groups of 100, 1,000 and 5,000 member devices, on the real protocol code:
the sender is a full device (SQLite file, Olm account, SessionManager,
GroupSessions); every other member device is a real vodozemac Account with a
real Olm session to the sender (opened from its bundle and answered once, as
after the first key share, so the sender sends normal Olm messages) and its
own sealing key. A few of them ("readers") also have their own SQLite file and
GroupSessions and decrypt everything addressed to them, to prove the figures
are for messages that really arrive.

Per group size it measures:

* Megolm send: CPU per 200-byte group message: ``GroupSessions.encrypt``
  (pad, Megolm step, pickle, one SQLite commit) + GroupMessage protobuf +
  WakuMessage on the group topic. Bytes: the WakuMessage.
* Megolm receive: a reader's ``decode_group_message`` + ``GroupSessions.decrypt``.
* Removal: one member is removed: ``outbound()`` rotates and returns a key
  share for every remaining device, each then Olm-encrypted
  (``SessionManager.encrypt``), sealed (``seal``) and wrapped in a WakuMessage
  to that member's 1:1 topic, all in one caller transaction (one commit).
  O(n), once per removal. The removed member is checked to fail on the next
  message; the readers read it.
* Pairwise: the same 200-byte message Olm-encrypted, sealed and wrapped for
  every other member (what 1:1 chat does), in one caller transaction.

CPU is ``time.process_time`` (this process only; SQLite runs in-process).
The SDS layer (bench_sds.py) adds ~0.6 KB of causal history, bloom filter
and ids to each group message in either scheme (~20 KB before issue 9 sized
the filter); it is not included here. The client's
full path (envelope, SDS, Megolm, Waku; key shares inside chat messages) is
measured by bench_group_scale.py, which reuses this module's ``Group``.

    python bench/bench_groups.py [--sizes 100,1000,5000] [--messages 300]
                                 [--budget 300]

If the full pairwise run at a size is estimated to exceed ``--budget``
seconds, pairwise is measured on a sample of real sessions and scaled by n
(the output says so). Nothing is saved.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vodozemac  # noqa: E402

from boxless.chat.topics import conversation_topic  # noqa: E402
from boxless.crypto import (  # noqa: E402
    OlmCiphertext,
    PlainDeviceBundle,
    SealingKeyPair,
    open_envelope,
    seal,
)
from boxless.crypto.megolm import (  # noqa: E402
    GroupSessions,
    UnknownGroupSession,
    decode_group_message,
    encode_group_message,
)
from boxless.wire import message_pb2  # noqa: E402
from tests.crypto_fixtures import Device  # noqa: E402

T = TypeVar("T")
PAYLOAD = b"x" * 200
GROUP = secrets.token_bytes(32)
GROUP_TOPIC = conversation_topic(secrets.token_bytes(32))  # a group topic has the same shape
T0 = 1_760_000_000.0
READERS = 3


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def waku(payload: bytes, topic: str, now: float) -> bytes:
    return message_pb2.WakuMessage(
        payload=payload, content_topic=topic, timestamp=int(now * 1e9)
    ).SerializeToString()


@dataclass
class Member:
    """A remote member device: a real Olm account and session with the sender."""

    bundle: PlainDeviceBundle
    sealing: SealingKeyPair
    topic: str
    session: vodozemac.Session | None = None
    groups: GroupSessions | None = field(default=None, repr=False)  # readers only
    identity: bytes = b""


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(result, cpu seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


class Group:
    """The sender and n-1 other member devices."""

    def __init__(self, folder: Path, size: int) -> None:
        self.sender = Device(folder / "sender.db")
        self.groups = GroupSessions(self.sender.db, self.sender.pickle_key)
        self.sender_key = self.sender.curve25519
        self.members: list[Member] = []
        with self.sender.manager.transaction():  # one commit for the whole setup
            for i in range(size - 1):
                self.members.append(self._member(folder, reader=i < READERS or i == size - 2))

    def _member(self, folder: Path, *, reader: bool) -> Member:
        account = vodozemac.Account()
        account.generate_fallback_key()  # type: ignore[attr-defined]
        fallback = next(iter(account.fallback_key.values()))  # type: ignore[attr-defined]
        sealing = SealingKeyPair.generate()
        identity = secrets.token_bytes(32)
        bundle = PlainDeviceBundle(
            identity_key=identity,
            curve25519=account.curve25519_key.to_bytes(),
            ed25519=_unb64(account.ed25519_key.to_base64()),
            sealing_key=sealing.public_bytes,
            fallback_key=fallback.to_bytes(),
        )
        member = Member(bundle, sealing, conversation_topic(secrets.token_bytes(32)))
        member.identity = identity
        # Open the Olm session from the bundle and answer once (as after the first key share).
        first = self.sender.manager.encrypt(bundle, b"hello")
        prekey = vodozemac.AnyOlmMessage.from_parts(0, first.body).to_pre_key()
        assert prekey is not None
        member.session, _ = account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_bytes(self.sender_key), prekey
        )
        msg_type, body = member.session.encrypt(b"hi").to_parts()
        reply = OlmCiphertext(msg_type, body, member.session.session_id)
        assert self.sender.manager.decrypt(bundle.curve25519, reply) == b"hi"
        if reader:
            device = Device(folder / f"reader-{len(self.members)}.db")
            member.groups = GroupSessions(device.db, device.pickle_key)
        return member

    def receive_olm(self, member: Member, envelope: bytes) -> bytes:
        """What a member device does with a sealed 1:1 message: open, Olm-decrypt."""
        opened = open_envelope(member.sealing, envelope)
        assert opened.sender_device_key == self.sender_key
        assert member.session is not None
        ct = opened.ciphertext
        return member.session.decrypt(vodozemac.AnyOlmMessage.from_parts(ct.type, ct.body))

    def send_pairwise(self, members: list[Member], payload: bytes, now: float) -> list[bytes]:
        """Olm-encrypt, seal and wrap ``payload`` for each member: the 1:1 path."""
        out = []
        with self.sender.manager.transaction():
            for member in members:
                ct = self.sender.manager.encrypt(member.bundle, payload)
                envelope = seal(
                    member.bundle.sealing_key,
                    sender_identity_key=self.sender.identity_key,
                    sender_device_key=self.sender_key,
                    ciphertext=ct,
                )
                out.append(waku(envelope, member.topic, now))
        return out


def unwrap(wire: bytes) -> bytes:
    msg = message_pb2.WakuMessage()
    msg.ParseFromString(wire)
    return msg.payload


@dataclass
class Row:
    size: int
    setup_s: float
    send_us: float
    send_bytes: int
    receive_us: float
    removal_cpu_s: float
    removal_wall_s: float
    removal_bytes: int
    pairwise_cpu_ms: float
    pairwise_bytes: int
    pairwise_note: str


def run_size(folder: Path, size: int, messages: int, budget: float) -> Row:
    print(f"\n== {size:,} member devices", flush=True)
    group, setup_cpu, setup_wall = timed(lambda: Group(folder, size))
    print(
        f"setup: {size - 1:,} Olm accounts + sessions (opened and answered) in {setup_wall:.1f} s"
    )
    members, sender = group.members, group.groups
    readers = [m for m in members if m.groups is not None]
    now = T0

    # The group starts: a session shared with everyone (delivered directly to the readers).
    _, shares = sender.outbound(GROUP, [m.bundle.curve25519 for m in members], now)
    by_device = {s.device: s for s in shares}
    for r in readers:
        assert r.groups is not None
        r.groups.add_key_share(
            group.sender.identity_key, group.sender_key, by_device[r.bundle.curve25519].payload
        )

    # Megolm send: encrypt once, publish once.
    wires: list[bytes] = []
    send_cpu = []
    for i in range(messages):
        t = time.process_time()
        wire = waku(encode_group_message(sender.encrypt(GROUP, PAYLOAD, now + i)), GROUP_TOPIC, now)
        send_cpu.append(time.process_time() - t)
        wires.append(wire)
    # Megolm receive, on one reader (all readers check every message).
    receive_cpu = []
    for wire in wires:
        for k, r in enumerate(readers):
            assert r.groups is not None
            t = time.process_time()
            got = r.groups.decrypt(GROUP, None, decode_group_message(unwrap(wire)))
            if k == 0:
                receive_cpu.append(time.process_time() - t)
            assert got.plaintext == PAYLOAD
    send_us = statistics.median(send_cpu) * 1e6
    receive_us = statistics.median(receive_cpu) * 1e6

    # Removal: the last member leaves; rotate and Olm-share the new key with everyone left.
    removed, remaining = members[-1], members[:-1]
    now += 3600

    def rotate_and_share() -> list[tuple[Member, bytes]]:
        state, shares = sender.outbound(GROUP, [m.bundle.curve25519 for m in remaining], now)
        assert state.rotated and state.reason == "member removed"
        by_key = {m.bundle.curve25519: m for m in remaining}
        out = []
        with group.sender.manager.transaction():
            for share in shares:
                member = by_key[share.device]
                ct = group.sender.manager.encrypt(member.bundle, share.payload)
                envelope = seal(
                    member.bundle.sealing_key,
                    sender_identity_key=group.sender.identity_key,
                    sender_device_key=group.sender_key,
                    ciphertext=ct,
                )
                out.append((member, waku(envelope, member.topic, now)))
        return out

    sent, removal_cpu, removal_wall = timed(rotate_and_share)
    assert len(sent) == size - 2
    removal_bytes = sum(len(w) for _, w in sent)
    for member, wire in sent:
        if member.groups is not None:  # readers take the new key through Olm
            payload = group.receive_olm(member, unwrap(wire))
            member.groups.add_key_share(group.sender.identity_key, group.sender_key, payload)
    after = decode_group_message(
        unwrap(waku(encode_group_message(sender.encrypt(GROUP, PAYLOAD, now)), GROUP_TOPIC, now))
    )
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
            assert r.groups.decrypt(GROUP, None, after).plaintext == PAYLOAD
    print(
        f"removal: rotate + {len(sent):,} Olm key shares in {removal_wall:.2f} s wall "
        f"({removal_cpu:.2f} s CPU); the removed member cannot read the next message: checked"
    )

    # Pairwise: the same message, Olm-encrypted for every remaining member.
    per_recipient_wall = removal_wall / max(len(sent), 1)
    estimate = per_recipient_wall * len(remaining) * 1.5  # pairwise ~ the removal path
    if estimate <= budget:
        out, pw_cpu, pw_wall = timed(lambda: group.send_pairwise(remaining, PAYLOAD, now))
        pw_bytes = sum(len(w) for w in out)
        note = f"full run, {len(out):,} recipients"
        sample = list(zip(remaining, out, strict=True))
    else:
        k = max(100, int(budget / 1.5 / per_recipient_wall))
        chosen = remaining[:k]
        out, pw_cpu, pw_wall = timed(lambda: group.send_pairwise(chosen, PAYLOAD, now))
        scale = len(remaining) / len(chosen)
        pw_cpu, pw_wall = pw_cpu * scale, pw_wall * scale
        pw_bytes = round(sum(len(w) for w in out) * scale)
        note = f"sample of {len(chosen):,} real sessions x {scale:.1f}"
        sample = list(zip(chosen, out, strict=True))
    for member, wire in sample:
        if member.groups is not None:
            assert group.receive_olm(member, unwrap(wire)) == PAYLOAD
    print(f"pairwise: one message to {len(remaining):,} members: {pw_wall:.2f} s wall ({note})")
    group.sender.db.close()
    return Row(
        size=size,
        setup_s=setup_wall,
        send_us=send_us,
        send_bytes=len(wires[0]),
        receive_us=receive_us,
        removal_cpu_s=removal_cpu,
        removal_wall_s=removal_wall,
        removal_bytes=removal_bytes,
        pairwise_cpu_ms=pw_cpu * 1e3,
        pairwise_bytes=pw_bytes,
        pairwise_note=note,
    )


def print_table(rows: list[Row]) -> None:
    print(
        "\nGroup message of 200 bytes; CPU = this process (SQLite in-process), medians for Megolm."
    )
    header = (
        f"{'members':>8} | {'megolm send':>12} | {'bytes/msg':>9} | {'receive':>9} | "
        f"{'removal: rotate+share n':>24} | {'removal bytes':>13} | "
        f"{'pairwise send':>14} | {'pairwise bytes':>14} | {'CPU ratio':>9} | pairwise measured"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = r.pairwise_cpu_ms * 1e3 / r.send_us
        print(
            f"{r.size:>8,} | {r.send_us:>9.0f} µs | {r.send_bytes:>9,} | {r.receive_us:>6.0f} µs | "
            f"{r.removal_cpu_s:>8.2f} s CPU {r.removal_wall_s:>6.2f} s wall | "
            f"{r.removal_bytes / 1e6:>10.2f} MB | {r.pairwise_cpu_ms:>11.0f} ms | "
            f"{r.pairwise_bytes / 1e6:>11.2f} MB | {ratio:>8,.0f}x | {r.pairwise_note}"
        )
    print(
        "\nsetup (not in the figures): " + ", ".join(f"{r.size:,}: {r.setup_s:.1f} s" for r in rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for a pairwise run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(run_size(Path(tmp), size, args.messages, args.budget))
    print_table(rows)


if __name__ == "__main__":
    main()
