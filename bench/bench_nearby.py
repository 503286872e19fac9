"""People Nearby under a flood: how fast one client takes (or refuses) cards and hellos.

Prints, for N distinct senders in one cell: cards opened and kept per second
(signature check + table), the table's size (bounded), garbage refused per
second, and the cost of opening a hello (proof check + X25519 + AEAD + the
link's signature). Pure core, no network: the ceiling a node's receive path
puts on a flooded cell. Run: python bench/bench_nearby.py [N]
"""

from __future__ import annotations

import os
import sys
import time

from boxless.chat.pow import DEFAULT_DIFFICULTY, SpentProofs, solve
from boxless.client import nearby_core as nc
from boxless.identity import Device, Identity, generate_phrase, make_contact_code

NOW = 1_800_000_000_000


def main(n: int) -> None:
    print(f"load average {os.getloadavg()[0]:.1f}")
    sessions = [nc.Session(38.7223, -9.1393, name=f"p{i}") for i in range(n)]
    cards = [s.card(NOW) for s in sessions]
    cell = sessions[0].cell
    table = nc.CardTable()
    t = time.perf_counter()
    for raw in cards:
        table.put(nc.open_card(raw, cell, NOW), NOW)
    dt = time.perf_counter() - t
    print(
        f"{n} cards from {n} senders: {n / dt:,.0f} cards/s opened+kept; table {len(table)} (cap {nc.MAX_PER_CELL}), evicted {table.evicted}"
    )
    junk = [os.urandom(200) for _ in range(n)]
    t = time.perf_counter()
    for raw in junk:
        try:
            nc.open_card(raw, cell, NOW)
        except nc.Dropped as exc:
            table.drop(exc.reason)
    dt = time.perf_counter() - t
    print(f"{n} garbage payloads: {n / dt:,.0f}/s refused; drops {dict(table.drops)}")
    forged = [s.card(NOW)[:-1] + b"\x00" for s in sessions]
    t = time.perf_counter()
    for raw in forged:
        try:
            nc.open_card(raw, cell, NOW)
        except nc.Dropped:
            pass
    dt = time.perf_counter() - t
    print(f"{n} cards with a broken signature: {n / dt:,.0f}/s refused")

    me = Identity.from_phrase(generate_phrase())
    link = make_contact_code(me, Device.create(me, NOW / 1000), "A", NOW / 1000).link
    bob = nc.Session(38.7223, -9.1393)
    alice = sessions[0]
    hello = nc.Hello(nc.HelloKind.HELLO, alice.card_key, alice.box_key, link, "hi", b"t" * 16, "A")
    t = time.perf_counter()
    sealed = nc.seal_hello(
        hello,
        bob.card_key,
        bob.box_key,
        lambda r, s: solve(r, s, NOW, difficulty=DEFAULT_DIFFICULTY),
        me.sign,  # type: ignore[arg-type,return-value]
    )
    print(
        f"sealing a hello at the real difficulty ({DEFAULT_DIFFICULTY} bits): {time.perf_counter() - t:.2f} s"
    )
    spent = SpentProofs()
    t = time.perf_counter()
    nc.open_hello(sealed, bob, spent, now_ms=NOW, difficulty=DEFAULT_DIFFICULTY)
    print(f"opening it: {(time.perf_counter() - t) * 1000:.2f} ms")
    cheap = [os.urandom(300) for _ in range(2000)]
    t = time.perf_counter()
    for raw in cheap:
        try:
            nc.open_hello(raw, bob, spent, now_ms=NOW, difficulty=DEFAULT_DIFFICULTY)
        except nc.Dropped:
            pass
    print(f"garbage on the hello topic: {2000 / (time.perf_counter() - t):,.0f}/s refused")
    from boxless.wire import nearby_pb2

    shaped = [
        nearby_pb2.SealedHello(
            ephemeral=nc.Session(0, 0).box_key, ciphertext=os.urandom(300)
        ).SerializeToString()
        for _ in range(500)
    ]
    t = time.perf_counter()
    for raw in shaped:
        try:
            nc.open_hello(raw, bob, spent, now_ms=NOW, difficulty=DEFAULT_DIFFICULTY)
        except nc.Dropped:
            pass
    print(
        f"well-formed hellos without a proof (X25519 + AEAD each): {500 / (time.perf_counter() - t):,.0f}/s refused"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
