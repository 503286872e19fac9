"""End-to-end 1:1 latency: send → delivered, through two service nodes on loopback.

One process: service nodes S1–S2 (relay, store, filter, light push), Alice on
S1 and Bob on S2 as light clients with their own encrypted databases. Alice
sends N messages one after another; each one's latency is from `send_text`
until her client marks it delivered (Bob's receipt came back): light push →
relay → filter → Bob decrypts, stores, receipts → the same way back.

    python bench/bench_chat.py [-n 200]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxless.chat.requests import ContactEvent  # noqa: E402
from boxless.client import store  # noqa: E402
from tests.chat_fixtures import make_account, running_client, start_service  # noqa: E402


async def run(base: Path, n: int) -> list[float]:
    for name in ("alice", "bob"):
        make_account(base / name, name.title()).close()
    lat: list[float] = []
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, base, "s1")
        s2 = await start_service(nursery, base, "s2", peers=(s1.addrs()[0],))
        async with (
            running_client(base / "alice", [s1.addrs()[0]]) as alice,
            running_client(base / "bob", [s2.addrs()[0]]) as bob,
        ):
            await alice.add_contact(bob.account.contact_code(time.time()).link)
            with trio.fail_after(30):
                while not bob.contacts():  # noqa: ASYNC110
                    await trio.sleep(0.05)
            await bob.respond(bob.contacts()[0].identity_key, ContactEvent.ACCEPT)
            with trio.fail_after(30):
                while alice.contacts()[0].state != "accepted":  # noqa: ASYNC110
                    await trio.sleep(0.05)
            key = alice.contacts()[0].identity_key
            async with alice.events() as events:
                for i in range(n):
                    t0 = time.perf_counter()
                    mid = await alice.send_text(key, f"message {i}")
                    with trio.fail_after(30):
                        while True:
                            with alice.db.transaction() as cur:
                                row = store.get_message(cur, mid)
                            if row is not None and row.state in ("delivered", "read"):
                                break
                            await events.receive()
                    lat.append((time.perf_counter() - t0) * 1000)
        nursery.cancel_scope.cancel()
    return lat


def main() -> None:
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        lat = trio.run(run, Path(tmp), n)
    lat.sort()
    print("| messages | p50 ms | p99 ms | mean ms | max ms |")
    print("|---|---|---|---|---|")
    print(
        f"| {n} | {statistics.median(lat):.1f} | {lat[int(len(lat) * 0.99) - 1]:.1f} | "
        f"{statistics.fmean(lat):.1f} | {lat[-1]:.1f} |"
    )


if __name__ == "__main__":
    main()
