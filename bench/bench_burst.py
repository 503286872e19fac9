"""A burst from the UI, and a catch-up from the store, measured side by side.

One process per checkout measured: two service nodes (relay, store, filter,
light push) on loopback, Alice on S1 and Bob on S2 as light clients with their
own encrypted databases, already contacts.

* **burst**: Alice queues N texts in about one second (one every 5 ms, as a
  person typing fast or a paste would post them to the API); for each, the
  delay from queueing until Bob's client stored it; whether Bob got them all,
  and in send order (Lamport order of his history and the order they arrived).
* **catch-up**: Bob goes offline; C contacts send him M messages each; Bob
  comes back; how fast his client works through the store's history, and how
  long after the last message search finds every caught-up text (the index is
  built right after a catch-up, not in its receive transactions).

Run both checkouts in one go, the baseline first:

    python bench/bench_burst.py --tree /path/to/baseline --tree . [-n 200] [--contacts 20 -m 500] [--rounds 3]

Each ``--tree`` runs in its own interpreter with that checkout's ``src`` first
on the path; the table compares them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parents[1]


async def _wait(pred, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not pred():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def _befriend(a, b) -> None:  # type: ignore[no-untyped-def]
    from boxless.chat.requests import ContactEvent

    await a.add_contact(b.account.contact_code(time.time()).link)
    await _wait(lambda: any(c.identity_key == a.me for c in b.contacts()))
    await b.respond(a.me, ContactEvent.ACCEPT)
    await _wait(lambda: any(c.identity_key == b.me and c.state == "accepted" for c in a.contacts()))


def _message_id(event: object) -> bytes | None:
    """The message id of a 1:1 message event (typed, or a dict on older checkouts)."""
    if isinstance(event, dict):
        return bytes.fromhex(event["message_id"]) if event.get("type") == "message" else None
    if getattr(event, "type", None) == "message":
        return bytes.fromhex(event.message_id)  # type: ignore[attr-defined]
    return None


async def burst(base: Path, n: int) -> dict[str, object]:
    from tests.chat_fixtures import make_account, running_client, start_service

    for name in ("alice", "bob"):
        make_account(base / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, base, "s1")
        s2 = await start_service(nursery, base, "s2", peers=(s1.addrs()[0],))
        async with (
            running_client(base / "alice", [s1.addrs()[0]]) as alice,
            running_client(base / "bob", [s2.addrs()[0]]) as bob,
        ):
            await _befriend(alice, bob)
            sent_at: dict[bytes, float] = {}
            order: list[bytes] = []
            arrived: dict[bytes, float] = {}
            arrival_order: list[bytes] = []

            async def watch() -> None:
                async with bob.events() as events:
                    async for event in events:
                        mid = _message_id(event)
                        if mid is not None and mid in sent_at and mid not in arrived:
                            arrived[mid] = time.perf_counter()
                            arrival_order.append(mid)

            accepted: dict[bytes, float] = {}

            async def watch_sender() -> None:
                from boxless.client import store as db

                async with alice.events() as events:
                    async for event in events:
                        mid = _message_id(event)
                        if mid is None or mid not in sent_at or mid in accepted:
                            continue
                        with alice.db.transaction() as cur:
                            row = db.get_message(cur, mid)
                        if row is not None and row.state != "queued":
                            accepted[mid] = time.perf_counter()

            async with trio.open_nursery() as inner:
                inner.start_soon(watch)
                inner.start_soon(watch_sender)
                await trio.sleep(0.2)
                t_start = time.perf_counter()
                for i in range(n):
                    mid = await alice.send_text(bob.me, f"burst {i:03d}")
                    sent_at[mid] = time.perf_counter()
                    order.append(mid)
                    await trio.sleep(max(0.0, t_start + (i + 1) * 0.005 - time.perf_counter()))
                posting_s = time.perf_counter() - t_start
                with trio.move_on_after(120):
                    await _wait(lambda: len(arrived) == n, timeout=120)
                inner.cancel_scope.cancel()
            history = [m.message_id for m in bob.messages(alice.me, limit=n + 10)]
        nursery.cancel_scope.cancel()
    delays = sorted(arrived[m] - sent_at[m] for m in arrived)
    took = sorted(accepted[m] - sent_at[m] for m in accepted)
    return {
        "n": n,
        "posting_s": round(posting_s, 2),
        "received": len(arrived),
        "p50_s": round(statistics.median(delays), 3) if delays else None,
        "p99_s": round(delays[max(0, int(len(delays) * 0.99) - 1)], 3) if delays else None,
        "last_s": round(delays[-1], 3) if delays else None,
        "history_in_order": history[-n:] == order,
        "network_took_p99_s": round(took[max(0, int(len(took) * 0.99) - 1)], 3) if took else None,
        "arrived_in_order": arrival_order == order[: len(arrival_order)],
    }


def _memory_network() -> type:
    """MemoryNetwork from the measured checkout, or from this one's file (older
    checkouts have none; it needs only their Transport types and Waku cores)."""
    try:
        from boxless.client.memory_transport import MemoryNetwork
    except ImportError:
        import importlib.util

        path = HERE / "src" / "boxless" / "client" / "memory_transport.py"
        spec = importlib.util.spec_from_file_location("bench_memory_transport", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module.MemoryNetwork  # type: ignore[no-any-return]
    return MemoryNetwork


async def catch_up(
    base: Path, contacts: int, per_contact: int, profile: str | None = None
) -> dict[str, object]:
    """Bob offline while ``contacts`` contacts write ``per_contact`` texts each; Bob
    comes back over a light node and catches up from a real store node.

    The history is made by real clients (their own accounts, Olm sessions with
    Bob) over the in-memory network on the wall clock, which is quick; its
    messages are then put into the service node's archive as the node would
    have stored them, and Bob's client (its account from the same run) catches
    up over loopback: light node, store v3 paging, decrypt, store.
    """
    from boxless.archive.base import ArchiveRow
    from boxless.client.core import Client

    MemoryNetwork = _memory_network()  # noqa: N806
    from boxless.identity.account import open_account
    from tests.chat_fixtures import PASS, make_account, start_service

    names = ["bob"] + [f"c{i}" for i in range(contacts)]
    for name in names:
        make_account(base / name, name.title()).close()
    net = MemoryNetwork(now_ns=time.time_ns)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        clients = {}
        accounts = []
        transports = {}
        for name in names:
            account = open_account(base / name, PASS)
            accounts.append(account)
            transports[name] = net.transport(name)
            client = Client(account, transports[name], pow_difficulty=8)
            await nursery.start(client.run)
            clients[name] = client
        bob = clients["bob"]
        for i in range(contacts):
            await _befriend(clients[f"c{i}"], bob)
        await trio.sleep(0.5)
        transports["bob"].set_online(False, catch_up=False)
        for i in range(contacts):
            for j in range(per_contact):
                await clients[f"c{i}"].send_text(bob.me, f"from {i}: {j}")
        senders = [clients[f"c{i}"] for i in range(contacts)]
        await _wait(lambda: all(_all_sent(c, bob.me) for c in senders), timeout=600)
        topics = [c.conversation_topic for c in bob.contacts()]
        rows = [
            ArchiveRow(
                m.message_hash,
                net.pubsub_topic(ct),
                ct,
                m.message.timestamp or 0,
                m.message.encode(),
                m.message.timestamp or 0,
            )
            for ct in topics
            for m in net.stored(ct)
        ]
        nursery.cancel_scope.cancel()
    for account in accounts:
        account.close()
    total = contacts * per_contact
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, base, "s1")
        stored = s1.archive.insert(rows)
        profiler = None
        if profile:  # --profile: cProfile on the CPU clock over the measured window
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        t0, cpu0 = time.perf_counter(), time.process_time()
        async with _light_client(base / "bob", [s1.addrs()[0]]) as bob:
            # the light node's own catch-up may hand some to the live path: count those too
            def received() -> int:
                with bob.db.transaction() as cur:  # a cheap count, polled: bench-only SQL
                    cur.execute("SELECT count(*) FROM client_messages WHERE outgoing = 0")
                    return int(cur.fetchone()[0])

            with trio.move_on_after(300):
                while received() < total:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            elapsed = time.perf_counter() - t0
            cpu = (
                time.process_time() - cpu0
            )  # this process: the store node, Bob's light node and client
            got = received()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)  # type: ignore[arg-type]
            indexed_after = await _search_caught_up(bob)
        nursery.cancel_scope.cancel()
    return {
        "messages": total,
        "stored": stored,
        "received": got,
        "seconds": round(elapsed, 2),
        "per_s": round(got / elapsed),
        "cpu_s": round(cpu, 2),
        "indexed_after_s": indexed_after,
    }


async def _search_caught_up(bob) -> float | None:  # type: ignore[no-untyped-def]
    """Seconds after the last message was stored until search finds every caught-up
    text (the index is built after a catch-up, issue 9); None on checkouts that
    index inside the receive transaction (nothing to wait for)."""
    t0 = time.perf_counter()

    def pending() -> int | None:
        with bob.db.transaction() as cur:  # bench-only SQL
            cur.execute("SELECT count(*) FROM sqlite_master WHERE name = 'client_search_pending'")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT count(*) FROM client_search_pending")
            return int(cur.fetchone()[0])

    if pending() is None:
        return None
    with trio.move_on_after(120):
        while pending():  # noqa: ASYNC110
            await trio.sleep(0.05)
    return round(time.perf_counter() - t0, 2)


@asynccontextmanager
async def _light_client(home: Path, service_addrs: list[str]) -> AsyncIterator[Any]:
    """Like tests.chat_fixtures.running_client, without a limit on catch-up (the
    caller bounds the whole measurement)."""
    from boxless.client.core import Client
    from boxless.client.transport import LightTransport
    from boxless.identity.account import open_account
    from boxless.node.light import LightNode
    from tests.chat_fixtures import PASS, POW

    account = open_account(home, PASS)
    try:
        async with trio.open_nursery() as nursery:
            light = LightNode(home / "light", service_addrs)
            await nursery.start(light.run)
            client = Client(account, LightTransport(light), pow_difficulty=POW)
            await nursery.start(client.run)
            yield client
            nursery.cancel_scope.cancel()
    finally:
        account.close()


def _all_sent(client, key: bytes) -> bool:  # type: ignore[no-untyped-def]
    """Every message to ``key`` left (Bob is offline: none will be delivered)."""
    return all(m.state != "queued" for m in client.messages(key, limit=100_000))


def child(args: argparse.Namespace) -> None:
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)
    out: dict[str, object] = {}
    if args.n:
        with tempfile.TemporaryDirectory() as tmp:
            out["burst"] = trio.run(burst, Path(tmp) / "b", args.n)
    if args.contacts:
        with tempfile.TemporaryDirectory() as tmp:
            out["catch_up"] = trio.run(
                catch_up, Path(tmp) / "c", args.contacts, args.m, args.profile
            )
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", action="append", default=[], help="a checkout to measure")
    ap.add_argument("-n", type=int, default=200, help="burst size (0: no burst)")
    ap.add_argument("--contacts", type=int, default=0)
    ap.add_argument("-m", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1, help="runs of every checkout, alternated")
    ap.add_argument(
        "--profile", metavar="FILE", help="cProfile (CPU clock) of the catch-up, to FILE"
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    trees = args.tree or [str(HERE)]
    rows = []
    for rnd, tree in ((r, t) for r in range(1, args.rounds + 1) for t in trees):
        root = Path(tree).resolve()
        load = os.getloadavg()[0]
        env = dict(os.environ, PYTHONPATH=f"{root / 'src'}{os.pathsep}{root}")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "-n", str(args.n)]
        cmd += ["--contacts", str(args.contacts), "-m", str(args.m)]
        if args.profile:
            cmd += ["--profile", f"{Path(args.profile).resolve()}.{root.name}.{rnd}"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
        name = root.name if args.rounds == 1 else f"{root.name} #{rnd} (load {load:.1f})"
        rows.append((name, json.loads(last)))
    print(
        "| checkout | posted in s | received | p50 s | p99 s | last s | in order (history / arrival) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        b = r.get("burst", {})
        print(
            f"| {name} | {b.get('posting_s')} | {b.get('received')}/{b.get('n')} | {b.get('p50_s')}"
            f" | {b.get('p99_s')} | {b.get('last_s')} | {b.get('history_in_order')} / "
            f"{b.get('arrived_in_order')} |"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.contacts:
        print()
        print(
            "| checkout | messages sent | in the store | received | seconds | messages/s"
            " | CPU s (all in one process) | searchable after s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, r in rows:
            c = r.get("catch_up", {})
            print(
                f"| {name} | {c.get('messages')} | {c.get('stored')} | {c.get('received')}"
                f" | {c.get('seconds')} | {c.get('per_s')} | {c.get('cpu_s')}"
                f" | {c.get('indexed_after_s', '-')} |"
            )


if __name__ == "__main__":
    main()
