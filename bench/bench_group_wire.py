"""Bytes on the wire of one group text, before and after the SDS filter was sized (issue 9).

One run, side by side, on the client's send path (``GroupManager._publish``):
``ChatMessage(Text)`` of 200 characters → ``SdsChannel.wrap`` →
``GroupSessions.encrypt`` (pads to :data:`~boxless.crypto.megolm.GROUP_BUCKETS`)
→ ``encode_group_message`` → ``WakuMessage`` on the group topic. The group is
:class:`bench_groups.Group` (``--members`` real member devices, real Olm
sessions; a few readers with their own GroupSessions and SdsChannel decrypt and
SDS-receive every message). The rest of the group talks through
:class:`bench_sds.Group` (one up-to-date voice with ``--members`` sender ids):
between two of our texts it sends 1 to ``--burst`` messages. Its causal
histories never name our texts (as in a group so busy that ours leave every
tail before anyone speaks), so every acknowledgement measured here came
through bloom filters.

Settings compared (each on a fresh channel, same group, same traffic):

* **before** -- js-waku's 10,000-id filter (18,752 bytes) and the last 10 ids
  (``SdsConfig`` before issue 9);
* **after** -- today's defaults (``SdsConfig.for_group``): a 128-id window
  filter at 1 % (168 bytes) and 3 ids, the not-yet-named first;
* **after, old members** -- us on today's defaults, the others still sending
  js-waku's filter and 10 ids: their big filters are read by size and still
  acknowledge.

Reported: the WakuMessage bytes, the SDS message inside it and its parts, the
padded bucket, our texts still unacknowledged at the end, and the false-positive
rate measured on the last filter the group sent (200,000 ids it never held).

    python bench/bench_group_wire.py [--members 1000] [--messages 300] [--burst 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import secrets
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_groups import Group as Devices  # noqa: E402
from bench_groups import Member  # noqa: E402
from bench_sds import Group as Voice  # noqa: E402
from bench_sds import overhead  # noqa: E402

from boxless.chat import envelope as env  # noqa: E402
from boxless.chat.topics import group_topic  # noqa: E402
from boxless.crypto.megolm import (  # noqa: E402
    GROUP_BUCKETS,
    RotationPolicy,
    decode_group_message,
    encode_group_message,
)
from boxless.crypto.sealed import bucket_size  # noqa: E402
from boxless.sync import (  # noqa: E402
    DEFAULT_BLOOM_PARAMS,
    BloomFilter,
    SdsChannel,
    SdsConfig,
    decode_message,
)
from boxless.waku.message import WakuMessage, message_hash  # noqa: E402
from boxless.waku.sharding import pubsub_topic_for  # noqa: E402

TEXT = "x" * 200
GROUP = secrets.token_bytes(32)
TOPIC = group_topic(GROUP)
PUBSUB = pubsub_topic_for(TOPIC)
T0 = 1_760_000_000.0


@dataclass
class Result:
    wire: list[int]
    sds: list[int]
    bloom: float
    history: float
    other: float
    unacked: int
    sent: int
    false_positives: float


def run(
    devices: Devices,
    readers: list[Member],
    *,
    ours: SdsConfig,
    theirs: SdsConfig,
    messages: int,
    burst: int,
    seed: int,
) -> Result:
    channel = GROUP.hex() + f"-{seed}"  # a fresh SDS channel per setting, same Megolm session
    me = SdsChannel(channel, devices.sender.identity_key.hex(), now=T0, config=ours)
    reader_sds = [SdsChannel(channel, r.identity.hex(), now=T0, config=ours) for r in readers]
    voice = Voice(len(devices.members), theirs.causal_history_size, seed, theirs.bloom)
    rng = random.Random(seed)
    now = T0
    wires: list[int] = []
    sds_sizes: list[int] = []
    parts: list[tuple[int, int, int]] = []

    def hear_voice(n: int) -> None:
        nonlocal now
        for _ in range(n):
            now += 0.5
            data, hint = voice.message(now)
            me.receive(data, now, retrieval_hint=hint)
            for r in reader_sds:
                r.receive(data, now, retrieval_hint=hint)

    voice.channel = channel
    hear_voice(200)  # a group that has been talking
    for _ in range(messages):
        now += 0.5
        content = env.encode(env.new_message(env.Text(TEXT), lamport=0, sent_at_ms=int(now * 1e3)))
        wrapped = me.wrap(content, now)
        ct = devices.groups.encrypt(GROUP, wrapped.data, now)
        msg = WakuMessage(encode_group_message(ct), TOPIC, timestamp=int(now * 1e9))
        wire = msg.encode()
        hint = message_hash(PUBSUB, msg)
        me.set_retrieval_hint(wrapped.message_id, hint)  # the network took it
        wires.append(len(wire))
        sds_sizes.append(len(wrapped.data))
        parts.append(overhead(wrapped.data))
        for reader, sds in zip(readers, reader_sds, strict=True):
            assert reader.groups is not None
            got = WakuMessage.decode(wire)
            plain = reader.groups.decrypt(GROUP, None, decode_group_message(got.payload))
            [delivered] = sds.receive(plain.plaintext, now, retrieval_hint=hint)
            body = env.decode(delivered.content).body
            assert isinstance(body, env.Text) and body.text == TEXT
        voice.hear(wrapped.message_id, hint, name=False)
        hear_voice(rng.randint(1, burst))
    hear_voice(1)
    last_filter = decode_message(voice.message(now + 1)[0]).bloom_filter or b""
    bloom = BloomFilter.from_bytes(last_filter)
    probes = 200_000
    false_positives = sum(f"never-{seed}-{i}" in bloom for i in range(probes)) / probes
    return Result(
        wire=wires,
        sds=sds_sizes,
        bloom=statistics.mean(p[0] for p in parts),
        history=statistics.mean(p[1] for p in parts),
        other=statistics.mean(p[2] for p in parts),
        unacked=len(me.unacknowledged()),
        sent=messages,
        false_positives=false_positives,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--burst", type=int, default=3)
    args = parser.parse_args()
    after = SdsConfig.for_group(args.members)
    before = dataclasses.replace(after, causal_history_size=10, bloom=DEFAULT_BLOOM_PARAMS)
    settings = {
        "before": (before, before),
        "after": (after, after),
        "after, old members": (after, before),
    }
    with tempfile.TemporaryDirectory() as tmp:
        devices = Devices(Path(tmp), args.members)
        devices.groups.policy = RotationPolicy(max_messages=10**9)  # no rotation mid-run
        _, shares = devices.groups.outbound(
            GROUP, [m.bundle.curve25519 for m in devices.members], T0
        )
        by_device = {s.device: s for s in shares}
        readers = [m for m in devices.members if m.groups is not None]
        for r in readers:
            assert r.groups is not None
            r.groups.add_key_share(
                devices.sender.identity_key,
                devices.sender_key,
                by_device[r.bundle.curve25519].payload,
            )
        rows = {
            name: run(
                devices,
                readers,
                ours=ours,
                theirs=theirs,
                messages=args.messages,
                burst=args.burst,
                seed=k,
            )
            for k, (name, (ours, theirs)) in enumerate(settings.items())
        }
        devices.sender.db.close()
    print(
        f"\nA {len(TEXT)}-character group text in a group of {args.members:,} member devices "
        f"({len(readers)} readers decrypt every message); {args.messages} texts per setting, "
        f"1-{args.burst} other messages between two of ours, acknowledged by bloom filters only."
    )
    header = (
        f"{'setting':>18} | {'wire B':>13} | {'SDS B':>6} | {'padded to':>9} | {'bloom B':>7} | "
        f"{'history B':>9} | {'other B':>7} | {'unacked':>9} | {'filter FP':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        wire = (
            f"{min(row.wire):,}-{max(row.wire):,}"
            if min(row.wire) != max(row.wire)
            else f"{min(row.wire):,}"
        )
        print(
            f"{name:>18} | {wire:>13} | {max(row.sds):>6,} | "
            f"{bucket_size(max(row.sds), GROUP_BUCKETS):>9,} | {row.bloom:>7.0f} | "
            f"{row.history:>9.0f} | {row.other:>7.0f} | {row.unacked:>4} / {row.sent:<3} | "
            f"{row.false_positives:>8.2%}"
        )
    print(
        "wire = the WakuMessage; SDS = the largest SDS message Megolm padded; other = ids, "
        "Lamport time and framing (the ChatMessage's 233 bytes are not in the parts);\n"
        "unacked = our texts still unacknowledged at the end; filter FP = measured on the "
        "group's last filter."
    )


if __name__ == "__main__":
    main()
