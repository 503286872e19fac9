"""What one persisted E2EE message costs, side by side with bare vodozemac in one run.

The message path of the client: Olm-encrypt through ``SessionManager`` (the
new ratchet state committed to the sender's database), seal the result
(sealed sender, HPKE), open the envelope and Olm-decrypt on the other device
(its new state committed to the recipient's database). Ping-pong: the
direction alternates, so every message turns the Olm ratchet. 200-byte texts.
One message = both sides' work, the same as the "vodozemac only" row, which
does the encrypt + decrypt in memory with nothing stored.

Variants (each in a fresh pair of databases):

* ``vodozemac``: the floor, two in-memory sessions.
* ``vodozemac+sealed``: the same plus the sealed envelope (seal + open) the
  client would use: v2 (pairwise key, ``crypto.pairwise``) for these normal
  Olm messages on a conversation topic both sides already wrote on, when the
  code has it; what is left to
  pay before anything is stored. ``vodozemac+sealed-v1``: always v1 (HPKE).
* ``userdb``: two real accounts (``identity.account.create_account``) in
  SQLCipher user databases with the pragmas ``storage.userdb`` sets, and the
  ratchet journal beside each (``SessionManager.journaled``) where the code
  has one: what the client ships. The send-round transaction and the receive
  transaction stay in the loop even when they no longer write the session.
* ``userdb-table``: the same without the journal (every step written through
  the transaction, as before it).
* ``userdb-full``: the same with ``PRAGMA synchronous = FULL`` (an fsync per
  commit), to show what power-cut durability would cost.
* ``sqlite``: plain sqlite3 files (``tests.crypto_fixtures.Device``, no page
  encryption, synchronous FULL as that fixture leaves it): the configuration
  of ``bench/bench_crypto.py``, where the issue's 943 vs 127 us was measured.
* ``sqlite-normal``: the same files with ``synchronous = NORMAL``.
* ``sqlite-memory``: the same on in-memory databases: no I/O at all, so what
  is left beyond ``vodozemac+sealed`` is SessionManager's own CPU cost.
* ``vodozemac-burst`` and ``userdb-burst``: 50 messages one way, then 50 the
  other (the ratchet turns once per 50), the persisted variant sealing all 50
  in one sender transaction and opening them in one receiver transaction, as
  the client's send round and receive pipeline do; its ratio is to
  ``vodozemac-burst``.

Rounds are interleaved (variant after variant, round after round) and each
round is a separate process, so a noisy neighbour hits every variant alike;
the table shows medians. ``--baseline REV`` (repeatable) runs the same rounds
against the code of git revision REV (extracted to a temporary folder) in the
same run, for a before/after comparison::

    python bench/bench_olm_path.py --baseline d1cd0f0 --baseline 4c3d5bc --rounds 5 --n 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = b"x" * 200
VARIANTS = (
    "vodozemac",
    "vodozemac+sealed-v1",
    "vodozemac+sealed",
    "userdb",
    "userdb-table",
    "userdb-full",
    "sqlite",
    "sqlite-normal",
    "sqlite-memory",
    "vodozemac-burst",
    "userdb-burst",
)
BURST = 50  # messages one way per transaction in the -burst variants (a send round's chunk)

Send = Callable[[bool], None]  # True: Alice -> Bob
TOPIC = "/boxless/1/chat-" + "ab" * 16 + "/proto"  # a conversation topic


# ------------------------------------------------------------ one round (worker)


def raw_burst() -> Send:
    """Bare vodozemac, :data:`BURST` messages one way per call."""
    one = raw_pair()

    def send(forward: bool) -> None:
        for _ in range(BURST):
            one(forward)

    return send


def raw_pair() -> Send:
    import vodozemac

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


def _pairwise(sealing: object) -> object | None:
    """A v2 sealer for ``sealing`` if the code under test has v2 (the baseline may not)."""
    try:
        from boxless.crypto.pairwise import PairwiseSealer
    except ImportError:
        return None
    return PairwiseSealer(sealing)  # type: ignore[arg-type]


def _has_cursor_api() -> bool:
    """Whether ``SessionManager.encrypt/decrypt`` take the caller's cursor (no savepoint)."""
    import inspect

    from boxless.crypto import SessionManager

    return "cur" in inspect.signature(SessionManager.encrypt).parameters


def sealed_raw_pair(v1_only: bool) -> Send:
    """Bare vodozemac sessions with the sealed envelope around every message."""
    import vodozemac

    from boxless.crypto import OlmCiphertext, open_envelope, seal
    from boxless.crypto.sealed import SealingKeyPair

    alice, bob = vodozemac.Account(), vodozemac.Account()
    bob.generate_one_time_keys(1)
    otk = next(iter(bob.one_time_keys.values()))
    a = alice.create_outbound_session(bob.curve25519_key, otk)
    first = a.encrypt(b"hi").to_pre_key()
    assert first is not None
    b, _ = bob.create_inbound_session(alice.curve25519_key, first)
    keys = {id(a): SealingKeyPair.generate(), id(b): SealingKeyPair.generate()}
    devices = {id(a): bytes(range(32)), id(b): bytes(range(1, 33))}
    sealers = {side: None if v1_only else _pairwise(key) for side, key in keys.items()}
    ident = bytes(32)

    def send(forward: bool) -> None:
        src, dst = (a, b) if forward else (b, a)
        msg_type, body = src.encrypt(PAYLOAD).to_parts()
        ct = OlmCiphertext(msg_type, body, src.session_id)
        sealer, opener = sealers[id(src)], sealers[id(dst)]
        if sealer is not None and opener is not None and msg_type == 1:
            envelope = sealer.seal(  # type: ignore[attr-defined]
                devices[id(dst)],
                keys[id(dst)].public_bytes,
                TOPIC,
                sender_identity_key=ident,
                sender_device_key=devices[id(src)],
                ciphertext=ct,
            )
            opened = opener.open(  # type: ignore[attr-defined]
                devices[id(src)], keys[id(src)].public_bytes, TOPIC, envelope
            ).ciphertext
        else:
            envelope = seal(
                keys[id(dst)].public_bytes,
                sender_identity_key=ident,
                sender_device_key=devices[id(src)],
                ciphertext=ct,
            )
            opened = open_envelope(keys[id(dst)], envelope).ciphertext
        message = vodozemac.AnyOlmMessage.from_parts(opened.type, opened.body)
        assert dst.decrypt(message) == PAYLOAD

    return send


class _Side:
    """One device as the message path sees it."""

    def __init__(self, manager, sealing, identity_key, device_key, bundle) -> None:  # type: ignore[no-untyped-def]
        self.manager = manager
        self.sealing = sealing
        self.identity_key = identity_key
        self.device_key = device_key
        self.bundle = bundle
        self.pairwise = _pairwise(sealing)


def _path(sides: tuple[_Side, _Side], burst: int = 1) -> Send:
    """``burst`` messages one way per call: one sender transaction, one receiver one."""
    from boxless.crypto import open_envelope, seal

    # The client's choices (channel.py): the ratchet step written through the
    # transaction's own cursor (no savepoint) and v2 for normal Olm messages on
    # a conversation topic, where the code under test has them.
    cursor_api = _has_cursor_api()
    # A receive batch defers each session's ratchet-step write to one flush
    # before its commit (``decrypt(defer=True)`` + ``flush``), where the code has it.
    deferred_api = hasattr(sides[0].manager, "flush")

    def seal_one(src: _Side, dst: _Side, cur: object) -> bytes:
        if cursor_api:
            ct = src.manager.encrypt(dst.bundle, PAYLOAD, cur=cur)
        else:
            ct = src.manager.encrypt(dst.bundle, PAYLOAD)
        if src.pairwise is not None and ct.type == 1:
            return src.pairwise.seal(  # type: ignore[no-any-return]
                dst.device_key,
                dst.bundle.sealing_key,
                TOPIC,
                sender_identity_key=src.identity_key,
                sender_device_key=src.device_key,
                ciphertext=ct,
            )
        return seal(
            dst.bundle.sealing_key,
            sender_identity_key=src.identity_key,
            sender_device_key=src.device_key,
            ciphertext=ct,
        )

    def open_one(src: _Side, dst: _Side, cur: object, envelope: bytes) -> bytes:
        if dst.pairwise is not None and envelope[:2] == b"\x08\x02":
            opened = dst.pairwise.open(src.device_key, src.bundle.sealing_key, TOPIC, envelope)
        else:
            opened = open_envelope(dst.sealing, envelope)
        if deferred_api:
            return dst.manager.decrypt(  # type: ignore[no-any-return]
                opened.sender_device_key, opened.ciphertext, cur=cur, defer=True
            )
        if cursor_api:
            return dst.manager.decrypt(  # type: ignore[no-any-return]
                opened.sender_device_key, opened.ciphertext, cur=cur
            )
        return dst.manager.decrypt(opened.sender_device_key, opened.ciphertext)  # type: ignore[no-any-return]

    def send(forward: bool) -> None:
        src, dst = sides if forward else sides[::-1]
        with src.manager.transaction() as cur:  # the client's send-round transaction
            envelopes = [seal_one(src, dst, cur) for _ in range(burst)]
        with dst.manager.transaction() as cur:  # the client's receive transaction
            for envelope in envelopes:
                assert open_one(src, dst, cur, envelope) == PAYLOAD
            if deferred_api:
                dst.manager.flush(cur)

    return send


def userdb_pair(
    folder: Path, synchronous: str | None, burst: int = 1, journal: bool = True
) -> Send:
    from boxless.crypto import SessionManager
    from boxless.crypto.olm_sessions import migration_files
    from boxless.crypto.sealed import SealingKeyPair
    from boxless.identity.account import create_account
    from boxless.identity.keys import Identity
    from boxless.identity.profile import Profile
    from boxless.identity.seed import generate_phrase
    from boxless.storage.userdb import KdfParams

    now = time.time()
    sides = []
    for name in ("alice", "bob"):
        account = create_account(
            folder / name,
            "bench passphrase",
            Identity.from_phrase(generate_phrase()),
            Profile(display_name=name),
            now,
            kdf=KdfParams(memory_kib=1024, time_cost=1, parallelism=1),
        )
        if synchronous is not None:
            account.db.conn.execute(f"PRAGMA synchronous = {synchronous}")
        account.db.migrate("crypto", migration_files())
        pickle_key = account.db.derive_key("olm sessions v1")
        if journal and hasattr(SessionManager, "journaled"):  # the ratchet journal
            manager = SessionManager.journaled(account.db, account.keystore, pickle_key)
        else:
            manager = SessionManager(account.db, account.keystore, pickle_key)
        device = account.device
        sides.append(
            _Side(
                manager,
                SealingKeyPair.from_private_bytes(device.sealing_private_key()),
                device.certificate.identity_key,
                device.certificate.device_curve25519,
                device.bundle(now),
            )
        )
    return _path((sides[0], sides[1]), burst)


def measure(variant: str, n: int, folder: Path) -> tuple[float, float]:
    """Wall-clock and CPU microseconds per message for ``n`` ping-pong messages."""
    if variant == "vodozemac":
        send = raw_pair()
    elif variant == "vodozemac+sealed":
        send = sealed_raw_pair(v1_only=False)
    elif variant == "vodozemac+sealed-v1":
        send = sealed_raw_pair(v1_only=True)
    elif variant == "userdb":
        send = userdb_pair(folder, None)
    elif variant == "userdb-table":
        send = userdb_pair(folder, None, journal=False)
    elif variant == "userdb-full":
        send = userdb_pair(folder, "FULL")
    elif variant == "sqlite":
        send = fixture_pair(folder, None)
    elif variant == "sqlite-normal":
        send = fixture_pair(folder, "NORMAL")
    elif variant == "sqlite-memory":
        send = fixture_pair(None, None)
    elif variant == "vodozemac-burst":
        send = raw_burst()
    elif variant == "userdb-burst":
        send = userdb_pair(folder, None, BURST)
    else:
        raise SystemExit(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    per_call = BURST if variant.endswith("-burst") else 1
    for i in range(max(2, 20 // per_call)):  # warm-up: sessions established, caches filled
        send(i % 2 == 0)
    n = max(n // per_call, 2) * per_call
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n // per_call):
        send(i % 2 == 0)
    wall_us = (time.perf_counter() - start) / n * 1e6
    return wall_us, (time.process_time() - cpu) / n * 1e6


def fixture_pair(folder: Path | None, synchronous: str | None) -> Send:
    """Two ``tests.crypto_fixtures.Device`` (plain sqlite3), as bench_crypto.py uses.

    ``folder=None``: in-memory databases.
    """
    sys.path.insert(0, str(ROOT))
    from tests.crypto_fixtures import Device

    if folder is None:
        devices = [Device(Path(":memory:")), Device(Path(":memory:"))]
    else:
        devices = [Device(folder / "alice.db"), Device(folder / "bob.db")]
    sides = []
    for device in devices:
        if synchronous is not None:
            device.db.conn.execute(f"PRAGMA synchronous = {synchronous}")
        sides.append(
            _Side(
                device.manager,
                device.sealing,
                device.identity_key,
                device.curve25519,
                device.bundle(),
            )
        )
    return _path((sides[0], sides[1]))


def breakdown(n: int, journal: bool) -> None:
    """CPU us of the parts of one side's step in a user database (``--breakdown``)."""
    import vodozemac

    captured: list[tuple[_Side, _Side]] = []
    global _path
    real_path = _path

    def grab(sides: tuple[_Side, _Side], burst: int = 1) -> Send:
        captured.append(sides)
        return real_path(sides, burst)

    _path = grab
    with tempfile.TemporaryDirectory() as tmp:
        send = userdb_pair(Path(tmp), None, journal=journal)
        for i in range(40):
            send(i % 2 == 0)
        alice, bob = captured[0]
        manager, db = alice.manager, alice.manager._db
        conn = db.conn
        remote = bob.device_key
        sid, stored = conn.execute("SELECT session_id, pickle FROM crypto_olm_sessions").fetchone()
        journaled = getattr(manager, "_latest", {}).get((remote, sid))
        if journaled is not None:  # the current state is in the journal, newer than the row
            stored = journaled[1]
        session = vodozemac.Session.from_pickle(stored, manager._pickle_key)
        session.encrypt(PAYLOAD)
        pickles = [stored, session.pickle(manager._pickle_key)]  # alternate: a real write
        flip = [0]
        select = (
            "SELECT session_id, pickle, retired, last_used FROM crypto_olm_sessions"
            " WHERE remote_key = ? ORDER BY last_used DESC"
        )
        update = "UPDATE crypto_olm_sessions SET pickle = ? WHERE remote_key = ? AND session_id = ?"

        def empty_txn() -> None:
            with db.transaction():
                pass

        def select_txn() -> None:
            with db.transaction() as cur:
                cur.execute(select, (remote,))
                cur.fetchall()

        def update_txn() -> None:
            flip[0] ^= 1
            with db.transaction() as cur:
                cur.execute(update, (pickles[flip[0]], remote, sid))

        def raw_step() -> None:  # the step with no SessionManager around it
            flip[0] ^= 1
            with db.transaction() as cur:
                cur.execute(select, (remote,))
                cur.fetchall()
                session.encrypt(PAYLOAD).to_parts()
                session.pickle(manager._pickle_key)
                cur.execute(update, (pickles[flip[0]], remote, sid))

        def manager_step() -> None:
            with db.transaction() as cur:
                manager.encrypt(bob.bundle, PAYLOAD, cur=cur)

        def journal_append() -> None:  # AEAD + one os.write of a 3.4 KB pickle
            manager._journal.append([step])
            if manager._journal.records >= 1000:  # as the checkpoint would
                manager._journal.restart(b"e" * 16)

        journal_parts = {}
        if getattr(manager, "_journal", None) is not None:
            from boxless.crypto.ratchet_journal import Step

            step = Step(remote, sid, 1, stored)
            journal_parts = {"journal append of one step (AEAD + os.write)": journal_append}

        parts = {
            "vodozemac encrypt (one side's Olm step)": lambda: session.encrypt(PAYLOAD),
            "pickle the session (AES + HMAC + base64)": lambda: session.pickle(manager._pickle_key),
            "unpickle (a cache miss)": lambda: vodozemac.Session.from_pickle(
                stored, manager._pickle_key
            ),
            "empty transaction (BEGIN IMMEDIATE, COMMIT)": empty_txn,
            "transaction + SELECT the device's rows": select_txn,
            "transaction + UPDATE the pickle (one page written)": update_txn,
            "all of the above, no SessionManager": raw_step,
            **journal_parts,
            "SessionManager.encrypt in a transaction": manager_step,
        }
        for name, fn in parts.items():
            for _ in range(100):
                fn()
            cpu = time.process_time()
            for _ in range(n):
                fn()
            print(f"{name:<52} {(time.process_time() - cpu) / n * 1e6:7.1f} us CPU")


def worker(variants: list[str], n: int) -> None:
    results = {}
    for variant in variants:
        with tempfile.TemporaryDirectory() as tmp:
            results[variant] = measure(variant, n, Path(tmp))
    print(json.dumps(results))


# ----------------------------------------------------------------- the runner


def extract(rev: str, into: Path) -> Path:
    """The ``src/`` and ``tests/`` trees of git revision ``rev`` under ``into``."""
    archive = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "archive",
            rev,
            "src",
            "tests/__init__.py",
            "tests/crypto_fixtures.py",
        ],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def one_round(code_root: Path, variants: list[str], n: int) -> dict[str, list[float]]:
    env = dict(os.environ, PYTHONPATH=f"{code_root / 'src'}{os.pathsep}{code_root}")
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "--n", str(n), "--variants", ",".join(variants)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=code_root,
    ).stdout
    result: dict[str, list[float]] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="messages per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--baseline",
        metavar="REV",
        action="append",
        default=[],
        help="also measure git revision REV (repeatable)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="the parts of one side's step, then exit",
    )
    parser.add_argument(
        "--no-journal", action="store_true", help="--breakdown without the ratchet journal"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.n, journal=not args.no_journal)
        return
    variants = [v for v in args.variants.split(",") if v]
    if args.worker:
        worker(variants, args.n)
        return

    with tempfile.TemporaryDirectory() as tmp:
        codes = {"this tree": ROOT}
        for rev in args.baseline:
            codes[rev] = extract(rev, Path(tmp) / rev)
        samples: dict[tuple[str, str, int], list[float]] = {}
        for round_no in range(args.rounds):
            for code, root in codes.items():
                for variant, figures in one_round(root, variants, args.n).items():
                    for kind, us in enumerate(figures):  # 0: wall clock, 1: CPU
                        samples.setdefault((code, variant, kind), []).append(us)
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    print(
        f"ping-pong, {len(PAYLOAD)}-byte messages, {args.n} per variant, "
        f"median of {args.rounds} rounds; wall clock, then CPU time of the process"
    )
    print(f"{'code':<12} {'variant':<20} {'us/msg':>8} {'x vodozemac':>12} {'cpu us':>8} {'x':>6}")
    for code in codes:
        cells = []
        for kind in (0, 1):
            column = {}
            for variant in variants:
                us = statistics.median(samples[(code, variant, kind)])
                ratio = "-"
                base = "vodozemac-burst" if variant.endswith("-burst") else "vodozemac"
                if base in variants:  # the median of each round's own ratio
                    mine = samples[(code, variant, kind)]
                    bare = samples[(code, base, kind)]
                    ratio = (
                        f"{statistics.median(v / b for v, b in zip(mine, bare, strict=True)):.2f}"
                    )
                column[variant] = (us, ratio)
            cells.append(column)
        for variant in variants:
            (wall, wall_x), (cpu, cpu_x) = cells[0][variant], cells[1][variant]
            print(f"{code:<12} {variant:<20} {wall:>8.0f} {wall_x:>12} {cpu:>8.0f} {cpu_x:>6}")


if __name__ == "__main__":
    main()
