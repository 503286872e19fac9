"""SDS cost per group message: CPU to wrap and to receive, and bytes on the wire.

For channels of 100, 1,000 and 5,000 members: the rest of the group is simulated
as an up-to-date member speaking for a random one of them each time (its messages
carry the last causal-history ids and its bloom filter, as a real member's would);
"me" and an observer are real :class:`~boxless.sync.SdsChannel` objects. After a
warm-up of group traffic, each round "me" wraps a 200-byte message, the observer
receives it, and one group message reaches both of us. The SDS overhead is the
wrapped size minus the content: the bloom filter plus the causal history plus ids
and framing, and none of it depends on how many members there are -- there are no
per-member receipts or keys in an SDS message. Each size runs twice in one run:
"before" (js-waku's 10,000-id filter, the last 10 ids: the settings before issue 9)
and "after" (today's defaults: a 128-id window filter, 3 ids).

    python bench/bench_sds.py [--rounds 300] [--warmup 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from boxless.sync import (  # noqa: E402
    DEFAULT_BLOOM_PARAMS,
    WINDOW_BLOOM_PARAMS,
    BloomParams,
    HistoryEntry,
    RollingBloomFilter,
    SdsChannel,
    SdsConfig,
    SdsMessage,
    content_message_id,
    decode_message,
    encode_message,
)
from boxless.wire import sds_pb2  # noqa: E402

CHANNEL = "group-0123456789abcdef"
CONTENT_BYTES = 200
T0 = 1_760_000_000.0


class Group:
    """The other members, as one up-to-date voice with many sender ids."""

    def __init__(
        self, members: int, history_size: int, seed: int, bloom: BloomParams = WINDOW_BLOOM_PARAMS
    ) -> None:
        self.ids = [hashlib.sha256(f"member-{i}".encode()).hexdigest()[:32] for i in range(members)]
        self.rng = random.Random(seed)
        self.bloom = RollingBloomFilter(bloom)
        self.log: list[HistoryEntry] = []
        self.lamport = int(T0 * 1000)
        self.history_size = history_size
        self.channel = CHANNEL

    def message(self, now: float) -> tuple[bytes, bytes]:
        """A member's next message and its retrieval hint (a stand-in Waku hash)."""
        self.lamport = max(int(now * 1000), self.lamport + 1)
        sender = self.rng.choice(self.ids)
        content = self.rng.randbytes(CONTENT_BYTES)
        mid = content_message_id(self.channel, sender, self.lamport, content)
        data = encode_message(
            SdsMessage(
                sender_id=sender,
                message_id=mid,
                channel_id=self.channel,
                lamport_timestamp=self.lamport,
                causal_history=tuple(self.log[-self.history_size :]),
                bloom_filter=self.bloom.to_bytes(),
                content=content,
            )
        )
        hint = hashlib.sha256(data).digest()
        self.hear(mid, hint)
        return data, hint

    def hear(self, message_id: str, hint: bytes, *, name: bool = True) -> None:
        """Receive a message: it enters the filter, and unless ``name`` is false
        (a stand-in for a busy group) the log the causal histories come from."""
        self.bloom.add(message_id)
        if name:
            self.log.append(HistoryEntry(message_id, hint))


def overhead(data: bytes) -> tuple[int, int, int]:
    """(bloom filter, causal history, everything else) bytes of an SDS message."""
    pb = sds_pb2.SdsMessage.FromString(data)
    bloom = len(sds_pb2.SdsMessage(bloom_filter=pb.bloom_filter).SerializeToString())
    history = len(sds_pb2.SdsMessage(causal_history=pb.causal_history).SerializeToString())
    content = len(sds_pb2.SdsMessage(content=pb.content).SerializeToString())
    other = len(data) - bloom - history - content
    return bloom, history, other + content - len(pb.content)


def configs(members: int) -> dict[str, SdsConfig]:
    """The SDS settings before issue 9 (js-waku's 10,000-id filter, the last 10 ids) and now."""
    return {
        "before": dataclasses.replace(
            SdsConfig.for_group(members), causal_history_size=10, bloom=DEFAULT_BLOOM_PARAMS
        ),
        "after": SdsConfig.for_group(members),
    }


def run(members: int, rounds: int, warmup: int, config: SdsConfig) -> dict[str, float]:
    group = Group(members, config.causal_history_size, seed=members, bloom=config.bloom)
    me = SdsChannel(CHANNEL, "me-" + "0" * 29, now=T0, config=config)
    observer = SdsChannel(CHANNEL, "observer-" + "0" * 23, now=T0, config=config)
    now = T0
    for _ in range(warmup):
        now += 0.05
        data, hint = group.message(now)
        me.receive(data, now, retrieval_hint=hint)
        observer.receive(data, now, retrieval_hint=hint)
    wrap_t: list[float] = []
    recv_t: list[float] = []
    sizes: list[tuple[int, int, int]] = []
    content = random.Random(1).randbytes(CONTENT_BYTES)
    for i in range(rounds):
        now += 0.05
        body = content + i.to_bytes(4, "big")
        t = time.process_time()
        wrapped = me.wrap(body, now)
        wrap_t.append(time.process_time() - t)
        hint = hashlib.sha256(wrapped.data).digest()
        me.set_retrieval_hint(wrapped.message_id, hint)
        t = time.process_time()
        got = observer.receive(wrapped.data, now, retrieval_hint=hint)
        recv_t.append(time.process_time() - t)
        assert [d.message_id for d in got] == [wrapped.message_id]
        sizes.append(overhead(wrapped.data))
        group.hear(wrapped.message_id, hint)
        now += 0.05
        data, ghint = group.message(now)  # its causal history acknowledges ours
        t = time.process_time()
        me.receive(data, now, retrieval_hint=ghint)
        recv_t.append(time.process_time() - t)
        observer.receive(data, now, retrieval_hint=ghint)
    bloom, history, other = (statistics.mean(s[k] for s in sizes) for k in range(3))
    assert decode_message(wrapped.data).content == body
    return {
        "wrap_us": statistics.median(wrap_t) * 1e6,
        "recv_us": statistics.median(recv_t) * 1e6,
        "bloom": bloom,
        "history": history,
        "other": other,
        "total": bloom + history + other,
        "unacked": len(me.unacknowledged()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=2000)
    args = parser.parse_args()
    print(
        f"SDS per message: {CONTENT_BYTES}-byte content, {args.warmup} group messages of "
        f"warm-up, {args.rounds} rounds; median CPU time per call; bytes = SDS overhead"
    )
    header = (
        f"{'members':>8} {'':>6} {'wrap µs':>8} {'receive µs':>10} {'bloom B':>8} "
        f"{'history B':>9} {'other B':>7} {'total B':>8} {'unacked':>7}"
    )
    print(header)
    print("-" * len(header))
    for members in (100, 1_000, 5_000):
        for name, config in configs(members).items():
            r = run(members, args.rounds, args.warmup, config)
            print(
                f"{members:>8,} {name:>6} {r['wrap_us']:>8.0f} {r['recv_us']:>10.0f} "
                f"{r['bloom']:>8.0f} {r['history']:>9.0f} {r['other']:>7.0f} {r['total']:>8.0f} "
                f"{r['unacked']:>7.0f}"
            )
    print(
        "before: js-waku's filter (10,000 ids, 0.1 %, k=10: 18,752 bytes) and the last 10 ids;\n"
        "after: the window filter (128 ids, 1 %, k=7: 168 bytes) and 3 ids, the not-yet-named "
        "first;\nan id is a 64-hex id and a 32-byte hint; 'unacked' = my messages still "
        "unacknowledged at the end (no receipts were sent)."
    )


if __name__ == "__main__":
    main()
