"""End-to-end 1:1 latency: send → delivered, through two service nodes on loopback.

One process: service nodes S1–S2 (relay, store, filter, light push), Alice on
S1 and Bob on S2 as light clients with their own encrypted databases. Alice
sends N messages one after another; each one's latency is from `send_text`
until her client marks it delivered (Bob's receipt came back): light push →
relay → filter → Bob decrypts, stores, receipts → the same way back.

    python bench/bench_chat.py [-n 200]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopback import latency_main, two_light_clients  # noqa: E402

from boxless.chat.requests import ContactEvent  # noqa: E402
from boxless.client import store  # noqa: E402


async def run(base: Path, n: int) -> list[float]:
    lat: list[float] = []
    async with trio.open_nursery() as nursery:
        async with two_light_clients(nursery, base, "alice", "bob") as (alice, bob):
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
    latency_main(run, "messages", (50, 99))


if __name__ == "__main__":
    main()
