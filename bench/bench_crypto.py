"""Olm 1:1 throughput: encrypt + decrypt messages/s, ping-pong and bursts.

Two devices, each with its own SQLite file (WAL, synchronous=NORMAL,
secure_delete, as the user database sets them; plain sqlite3, so the SQLCipher
page encryption cost is not in these figures: ``bench/bench_olm_path.py``
measures the real user database too). Each row times N messages of 200 bytes; one message = encrypt
on one side + decrypt on the other.

* ping-pong: the direction alternates, so every message turns the Olm
  ratchet (a new X25519 key pair and DH on both sides).
* burst: 100 messages one way, then 100 the other; only the first message
  of each burst turns the ratchet, the rest advance the symmetric chain.

Variants: vodozemac alone (in memory, the floor), SessionManager (step,
pickle, one SQLite transaction -- so one WAL commit -- per call),
SessionManager plus the sealed-sender envelope (HPKE seal + open, padding to
a 256-byte bucket), and for bursts the same with each burst's 100 encrypts,
and its 100 decrypts, nested in one caller transaction (what a catch-up from
a store node does), which shares one commit among 100 messages.

    python bench/bench_crypto.py [--n 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vodozemac  # noqa: E402

from boxless.crypto import open_envelope, seal  # noqa: E402
from boxless.storage.userdb import SYNCHRONOUS  # noqa: E402
from tests.crypto_fixtures import Device  # noqa: E402

PAYLOAD = b"x" * 200

Send = Callable[[bool], None]  # True: Alice -> Bob


def raw_pair() -> Send:
    alice, bob = vodozemac.Account(), vodozemac.Account()
    bob.generate_one_time_keys(1)
    otk = next(iter(bob.one_time_keys.values()))
    a = alice.create_outbound_session(bob.curve25519_key, otk)
    first = a.encrypt(b"hi").to_pre_key()
    assert first is not None
    b, _ = bob.create_inbound_session(alice.curve25519_key, first)

    def send(forward: bool) -> None:
        src, dst = (a, b) if forward else (b, a)
        assert dst.decrypt(src.encrypt(PAYLOAD)) == PAYLOAD

    return send


def devices(folder: Path) -> tuple[Device, Device]:
    alice, bob = Device(folder / "alice.db"), Device(folder / "bob.db")
    for device in (alice, bob):
        device.db.conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    bob.manager.decrypt(alice.curve25519, alice.manager.encrypt(bob.bundle(), b"hi"))
    return alice, bob


def managed_pair(folder: Path, *, sealed: bool) -> Send:
    alice, bob = devices(folder)
    keys = {id(alice): alice.curve25519, id(bob): bob.curve25519}

    def send(forward: bool) -> None:
        src, dst = (alice, bob) if forward else (bob, alice)
        bundle = dst.bundle()
        ct = src.manager.encrypt(bundle, PAYLOAD)
        sender = keys[id(src)]
        if sealed:
            envelope = seal(
                bundle.sealing_key,
                sender_identity_key=src.identity_key,
                sender_device_key=sender,
                ciphertext=ct,
            )
            opened = open_envelope(dst.sealing, envelope)
            ct, sender = opened.ciphertext, opened.sender_device_key
        assert dst.manager.decrypt(sender, ct) == PAYLOAD

    return send


def run_batched_bursts(folder: Path, n: int) -> float:
    """Bursts of 100, each side's 100 calls nested in one caller transaction."""
    alice, bob = devices(folder)
    keys = {id(alice): alice.curve25519, id(bob): bob.curve25519}
    start = time.perf_counter()
    for burst in range(n // 100):
        src, dst = (alice, bob) if burst % 2 == 0 else (bob, alice)
        bundle = dst.bundle()
        with src.manager.transaction():
            cts = [src.manager.encrypt(bundle, PAYLOAD) for _ in range(100)]
        with dst.manager.transaction():
            for ct in cts:
                assert dst.manager.decrypt(keys[id(src)], ct) == PAYLOAD
    return (n // 100 * 100) / (time.perf_counter() - start)


def run(send: Send, n: int, pattern: str) -> float:
    """Messages per second for n messages in the given pattern."""
    if pattern == "ping-pong":
        directions = [i % 2 == 0 for i in range(n)]
    else:
        directions = [(i // 100) % 2 == 0 for i in range(n)]
    send(True)  # warm-up
    send(False)
    start = time.perf_counter()
    for forward in directions:
        send(forward)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per row")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pattern in ("ping-pong", "burst"):
            rows.append(("vodozemac only (memory)", pattern, run(raw_pair(), args.n, pattern)))
            for sealed in (False, True):
                folder = Path(tmp) / f"{pattern}-{sealed}"
                folder.mkdir()
                name = "SessionManager + sealed" if sealed else "SessionManager (SQLite)"
                send = managed_pair(folder, sealed=sealed)
                rows.append((name, pattern, run(send, args.n, pattern)))
        folder = Path(tmp) / "batched"
        folder.mkdir()
        rows.append(("SessionManager, 1 tx/burst", "burst", run_batched_bursts(folder, args.n)))

    print(f"Olm encrypt+decrypt, {len(PAYLOAD)}-byte messages, {args.n} per row")
    print(f"{'variant':<26} {'pattern':<10} {'msgs/s':>9} {'us/msg':>8}")
    for name, pattern, rate in rows:
        print(f"{name:<26} {pattern:<10} {rate:>9.0f} {1e6 / rate:>8.0f}")


if __name__ == "__main__":
    main()
