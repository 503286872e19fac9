"""kill -9 a persisted Olm ping-pong at random points; nothing lost, nothing twice, in sync.

Two real accounts (``identity.account``: SQLCipher user databases, the pragmas
``storage.userdb`` sets, the real keystore as the Olm ``AccountStore``) talk
through a "network": a plain sqlite3 file of sealed envelopes that, like a
Waku store node, keeps everything and may hold a message twice.

The worker (``python -m tests.olm_kill9 worker DIR --stop-at S``) plays both
devices in one process, the way the client uses ``SessionManager``:

* send: one transaction encrypts the next message of the conversation with
  ``SessionManager.encrypt`` (through the transaction's cursor), seals it (v2,
  the pairwise envelope, once the Olm message is a normal one, as the client
  does on a conversation topic; v1 before) and queues the envelope in the sender's
  ``k9_outbox`` (so a re-send after a crash sends the same bytes); the
  envelope is then appended to the network, and only then marked transmitted
  (a crash in between: it goes out twice);
* receive: one transaction for every network message waiting (the client's
  receive batch) skips each whose hash was seen, else opens (v1 or v2) and
  decrypts it (``SessionManager.decrypt`` through the transaction's cursor,
  ``defer=True``: the ratchet steps are written by ``flush`` before the commit),
  records the message in ``k9_received``, marks the hash seen, notes the
  reply it owes (``k9_owed``), advances the read cursor and flushes (the
  ratchet steps are journaled after the commit);
* send round (``send_owed``): each owed reply is encrypted (its step journaled
  before ``encrypt`` returns) and queued in a transaction of its own.

Both accounts use ``SessionManager.journaled`` (the client's ratchet journal).
With ``BOXLESS_K9_DIE_AFTER_RECEIVE`` set the worker kills itself right after
its first receive batch commits (the targeted kills of :func:`campaign`).

Message ``seq`` goes Alice -> Bob when even, Bob -> Alice when odd; replies
stop at ``--stop-at``. The worker prints one line per committed step, so the
harness can kill it after a random number of steps plus a random delay: the
kill lands anywhere, inside SQLite, vodozemac or Python. After the campaign
the harness runs a worker to the end and checks: every message up to the end
received exactly once, with the right text, on the right side, in order; and
the ratchets are in sync (a fresh exchange decrypts both ways).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boxless.crypto import SessionManager, open_envelope, seal
from boxless.crypto.olm_sessions import NORMAL_MESSAGE, migration_files
from boxless.crypto.pairwise import PairwiseSealer, is_pairwise
from boxless.crypto.sealed import SealingKeyPair
from boxless.identity.account import LocalAccount, create_account, open_account
from boxless.identity.keys import DeviceBundle, Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.storage.userdb import KdfParams

PASS = "kill nine passphrase"
FAST_KDF = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
NAMES = ("alice", "bob")
NEVER = 2**62
ROOT = Path(__file__).resolve().parents[1]
DIE_AFTER_RECEIVE = "BOXLESS_K9_DIE_AFTER_RECEIVE"  # env: kill -9 right after a receive commit
TOPIC = "/boxless/1/chat-" + "9" * 32 + "/proto"  # the pair's conversation topic

APP_TABLES = (
    "CREATE TABLE IF NOT EXISTS k9_outbox (seq INTEGER PRIMARY KEY, envelope BLOB NOT NULL,"
    " transmitted INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS k9_received (n INTEGER PRIMARY KEY AUTOINCREMENT,"
    " seq INTEGER NOT NULL, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS k9_seen (hash BLOB PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS k9_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER)",
    "CREATE TABLE IF NOT EXISTS k9_owed (seq INTEGER PRIMARY KEY)",
)


def body(seq: int) -> bytes:
    """The 200-byte text of message ``seq`` (its number, then filler derived from it)."""
    head = f"message {seq}:".encode()
    filler = hashlib.sha256(head).hexdigest().encode() * 7
    return (head + filler)[:200]


def sender_of(seq: int) -> str:
    return NAMES[seq % 2]


# ------------------------------------------------------------------- the devices


@dataclass
class Side:
    """One device: its open account, session manager, sealing key and bundle."""

    name: str
    account: LocalAccount
    sessions: SessionManager
    sealing: SealingKeyPair
    bundle: DeviceBundle
    pairwise: PairwiseSealer

    @classmethod
    def open(cls, folder: Path, name: str) -> Side:
        account = open_account(folder / name, PASS)
        account.db.migrate("crypto", migration_files())
        sessions = SessionManager.journaled(
            account.db, account.keystore, account.db.derive_key("olm sessions v1")
        )
        device = account.device
        sealing = SealingKeyPair.from_private_bytes(device.sealing_private_key())
        bundle = device.bundle(time.time())
        return cls(name, account, sessions, sealing, bundle, PairwiseSealer(sealing))

    @property
    def device_key(self) -> bytes:
        return self.bundle.curve25519

    @property
    def identity_key(self) -> bytes:
        return self.bundle.identity_key

    def close(self) -> None:
        self.sessions.close()
        self.account.close()


def create(folder: Path) -> None:
    """Two new accounts, the app tables, an empty network, and message 0 queued."""
    for name in NAMES:
        identity = Identity.from_phrase(generate_phrase())
        account = create_account(
            folder / name, PASS, identity, Profile(display_name=name), time.time(), kdf=FAST_KDF
        )
        with account.db.transaction() as cur:
            for statement in APP_TABLES:
                cur.execute(statement)
        account.close()
    with closing(sqlite3.connect(folder / "network.db")) as net, net:
        net.execute(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " recipient TEXT NOT NULL, payload BLOB NOT NULL)"
        )
    alice, bob = (Side.open(folder, name) for name in NAMES)
    try:
        queue(alice, bob, 0)
    finally:
        alice.close()
        bob.close()


def queue(src: Side, dst: Side, seq: int) -> None:
    """Encrypt message ``seq`` and queue its envelope, in one transaction."""
    with src.sessions.transaction() as cur:
        olm = src.sessions.encrypt(dst.bundle, body(seq), cur=cur)
        if olm.type == NORMAL_MESSAGE:
            envelope = src.pairwise.seal(
                dst.device_key,
                dst.bundle.sealing_key,
                TOPIC,
                sender_identity_key=src.identity_key,
                sender_device_key=src.device_key,
                ciphertext=olm,
            )
        else:
            envelope = seal(
                dst.bundle.sealing_key,
                sender_identity_key=src.identity_key,
                sender_device_key=src.device_key,
                ciphertext=olm,
            )
        cur.execute("INSERT INTO k9_outbox (seq, envelope) VALUES (?, ?)", (seq, envelope))


# -------------------------------------------------------------------- the worker


class Worker:
    """Both devices and the network, stepping the conversation until ``stop_at``."""

    def __init__(self, folder: Path, stop_at: int) -> None:
        self.sides = {name: Side.open(folder, name) for name in NAMES}
        self.net = sqlite3.connect(folder / "network.db", isolation_level=None)
        self.net.execute("PRAGMA journal_mode = WAL")
        self.net.execute("PRAGMA synchronous = NORMAL")
        self.stop_at = stop_at

    def step(self, out: Any) -> bool:
        """Transmit and receive once for each side; False when nothing was left to do."""
        busy = False
        for name in NAMES:
            side = self.sides[name]
            busy |= self.send_owed(side, out)
            busy |= self.transmit(side, out)
            busy |= self.receive(side, out)
        return busy

    def send_owed(self, side: Side, out: Any) -> bool:
        """The send round: each reply owed is encrypted and queued in a transaction of
        its own (the ratchet step is journaled before that transaction commits)."""
        other = self.sides[NAMES[1 - NAMES.index(side.name)]]
        with side.account.db.transaction() as cur:
            cur.execute("SELECT seq FROM k9_owed ORDER BY seq")
            owed = [int(seq) for (seq,) in cur.fetchall()]
        for seq in owed:
            with side.account.db.transaction() as cur:
                queue(side, other, seq)  # nested: one transaction with the delete
                cur.execute("DELETE FROM k9_owed WHERE seq = ?", (seq,))
            print(f"queued {seq}", file=out, flush=True)
        return bool(owed)

    def transmit(self, side: Side, out: Any) -> bool:
        with side.account.db.transaction() as cur:
            cur.execute("SELECT seq, envelope FROM k9_outbox WHERE transmitted = 0 ORDER BY seq")
            pending = [(int(seq), bytes(env)) for seq, env in cur.fetchall()]
        other = NAMES[1 - NAMES.index(side.name)]
        for seq, envelope in pending:
            with self.net:
                self.net.execute("BEGIN IMMEDIATE")
                self.net.execute(
                    "INSERT INTO messages (recipient, payload) VALUES (?, ?)", (other, envelope)
                )
            print(f"net {seq}", file=out, flush=True)
            with side.account.db.transaction() as cur:
                cur.execute("UPDATE k9_outbox SET transmitted = 1 WHERE seq = ?", (seq,))
            print(f"transmitted {seq}", file=out, flush=True)
        return bool(pending)

    def receive(self, side: Side, out: Any) -> bool:
        other = self.sides[NAMES[1 - NAMES.index(side.name)]]
        with side.account.db.transaction() as cur:
            cur.execute("SELECT last FROM k9_cursor WHERE id = 1")
            row = cur.fetchone()
        last = -1 if row is None else int(row[0])
        incoming = self.net.execute(
            "SELECT id, payload FROM messages WHERE recipient = ? AND id > ? ORDER BY id",
            (side.name, last),
        ).fetchall()
        if not incoming:
            return False
        # One transaction for everything waiting, like the client's receive batch:
        # the ratchet steps are deferred (decrypt defer=True) and flushed before the
        # batch commits (journaled once it did); the replies it owes are noted in
        # it and sent by the next send round (send_owed), as the client's outbox does.
        try:
            with side.account.db.transaction() as cur:
                for _msg_id, payload in incoming:
                    digest = hashlib.sha256(payload).digest()
                    cur.execute("SELECT 1 FROM k9_seen WHERE hash = ?", (digest,))
                    if cur.fetchone() is not None:
                        continue
                    if is_pairwise(payload):
                        opened = side.pairwise.open(
                            other.device_key, other.bundle.sealing_key, TOPIC, payload
                        )
                    else:
                        opened = open_envelope(side.sealing, payload)
                    plain = side.sessions.decrypt(
                        opened.sender_device_key, opened.ciphertext, cur=cur, defer=True
                    )
                    seq = int(plain.split(b":")[0].split()[1])
                    cur.execute("INSERT INTO k9_received (seq, body) VALUES (?, ?)", (seq, plain))
                    cur.execute("INSERT INTO k9_seen (hash) VALUES (?)", (digest,))
                    if seq + 1 < self.stop_at:
                        cur.execute("INSERT INTO k9_owed (seq) VALUES (?)", (seq + 1,))
                side.sessions.flush(cur)
                cur.execute(
                    "INSERT INTO k9_cursor (id, last) VALUES (1, ?)"
                    " ON CONFLICT (id) DO UPDATE SET last = excluded.last",
                    (incoming[-1][0],),
                )
        except BaseException:
            side.sessions.discard()
            raise
        print(f"received {incoming[-1][0]}", file=out, flush=True)
        if os.environ.get(DIE_AFTER_RECEIVE):
            # the targeted kill: the batch committed, its ratchet steps not yet
            # journaled (they wait for the reply's step, or a later write)
            os.kill(os.getpid(), signal.SIGKILL)
        return True

    def close(self) -> None:
        for side in self.sides.values():
            side.close()
        self.net.close()


def worker_main(folder: Path, stop_at: int) -> None:
    worker = Worker(folder, stop_at)
    print("ready", flush=True)
    try:
        while worker.step(sys.stdout):
            pass
    finally:
        worker.close()
    print("done", flush=True)


# ------------------------------------------------------------------- the harness


@dataclass
class Campaign:
    """What a kill campaign did."""

    kills: int = 0
    targeted_kills: int = 0
    steps_before_kill: int = 0
    messages: int = 0
    network_copies: int = 0
    pairwise_copies: int = 0
    seconds: float = 0.0


def _worker_command(folder: Path, stop_at: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.olm_kill9",
        "worker",
        str(folder),
        "--stop-at",
        str(stop_at),
    ]


@contextmanager
def _spawn(
    folder: Path, stop_at: int, die_after_receive: bool = False
) -> Iterator[subprocess.Popen[str]]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    env.pop(DIE_AFTER_RECEIVE, None)
    if die_after_receive:
        env[DIE_AFTER_RECEIVE] = "1"
    proc = subprocess.Popen(
        _worker_command(folder, stop_at),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def kill_once(folder: Path, rng: random.Random, max_steps: int = 12) -> int:
    """Start a worker, let it commit a random number of steps, kill -9 it mid-flight.

    Returns the number of progress lines seen. Raises AssertionError if the
    worker failed on its own (a traceback is a broken invariant).
    """
    steps = rng.randint(0, max_steps)
    with _spawn(folder, NEVER) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        seen = 0
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"worker did not start: {line!r} {proc.stderr.read()}")
        while seen < steps:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"worker died on its own:\n{proc.stderr.read()}")
            seen += 1
        # A random delay after the step, so the kill lands anywhere in the next ones.
        time.sleep(rng.uniform(0, 0.003))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"worker exited {proc.returncode}:\n{proc.stderr.read()}")
    return seen


def kill_after_receive(folder: Path) -> None:
    """Run a worker that kills itself (SIGKILL) right after its first receive
    batch commits: the step is committed but not journaled."""
    with _spawn(folder, NEVER, die_after_receive=True) as proc:
        _out, err = proc.communicate(timeout=300)
        if proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"worker exited {proc.returncode}, not killed:\n{err}")


def finish(folder: Path) -> int:
    """Run the conversation to its end without kills; return the number of messages."""
    stop_at = max(_max_queued(folder), 0) + 4
    with _spawn(folder, stop_at) as proc:
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or not out.rstrip().endswith("done"):
            raise AssertionError(f"finishing worker failed ({proc.returncode}):\n{err}")
    return stop_at


def _max_queued(folder: Path) -> int:
    top = -1
    for name in NAMES:
        with closing(open_account(folder / name, PASS)) as account:
            with account.db.transaction() as cur:
                cur.execute("SELECT COALESCE(MAX(seq), -1) FROM k9_outbox")
                top = max(top, int(cur.fetchone()[0]))
    return top


def received(folder: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Each side's received messages, in the order it processed them."""
    found = {}
    for name in NAMES:
        with closing(open_account(folder / name, PASS)) as account:
            with account.db.transaction() as cur:
                cur.execute("SELECT seq, body FROM k9_received ORDER BY n")
                found[name] = [(int(seq), bytes(text)) for seq, text in cur.fetchall()]
    return found


def check_prefix(folder: Path) -> int:
    """After a kill: each side got an unbroken prefix of its messages, none twice.

    Returns how many messages the two sides processed together.
    """
    found = received(folder)
    total = 0
    for name, got in found.items():
        seqs = [seq for seq, _ in got]
        first = 1 if name == NAMES[0] else 0
        expected = list(range(first, first + 2 * len(seqs), 2))
        assert seqs == expected, f"{name} processed {seqs} (a message twice or one skipped)"
        assert all(text == body(seq) for seq, text in got), f"{name}: a text came out wrong"
        total += len(seqs)
    return total


def verify(folder: Path, messages: int) -> tuple[int, int]:
    """Check every message < ``messages`` arrived once, in order, on the right side.

    Then exchange one more message each way through reopened managers (the
    ratchets are in sync). Returns how many envelopes the network holds (copies
    re-sent after a crash included), and how many of them are v2.
    """
    for name, got in received(folder).items():
        expected = [seq for seq in range(messages) if sender_of(seq) != name]
        seqs = [seq for seq, _ in got]
        assert seqs == expected, f"{name} received {seqs}, expected {expected}"
        assert all(text == body(seq) for seq, text in got), f"{name}: a text came out wrong"
    alice, bob = (Side.open(folder, name) for name in NAMES)
    try:
        for src, dst in ((alice, bob), (bob, alice)):
            with src.sessions.transaction():
                olm = src.sessions.encrypt(dst.bundle, b"still in sync?")
            with dst.sessions.transaction():
                assert dst.sessions.decrypt(src.device_key, olm) == b"still in sync?"
    finally:
        alice.close()
        bob.close()
    with closing(sqlite3.connect(folder / "network.db")) as net:
        payloads = [bytes(row[0]) for row in net.execute("SELECT payload FROM messages")]
    return len(payloads), sum(is_pairwise(payload) for payload in payloads)


def campaign(
    folder: Path, kills: int, seed: int, max_steps: int = 12, targeted: int = 0
) -> Campaign:
    """Create two accounts, kill -9 the ping-pong ``kills`` times at random points
    (the first ``targeted`` of them each followed by one right after a receive
    commit, see :func:`kill_after_receive`), finish, verify."""
    started = time.perf_counter()
    rng = random.Random(seed)
    create(folder)
    result = Campaign()
    for i in range(kills):
        result.steps_before_kill += kill_once(folder, rng, max_steps)
        result.kills += 1
        check_prefix(folder)
        if i < targeted:
            kill_after_receive(folder)
            result.targeted_kills += 1
            check_prefix(folder)
    result.messages = finish(folder)
    result.network_copies, result.pairwise_copies = verify(folder, result.messages)
    result.seconds = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    work = sub.add_parser("worker", help="run both devices until killed (used by the harness)")
    work.add_argument("folder", type=Path)
    work.add_argument("--stop-at", type=int, default=NEVER)
    args = parser.parse_args()
    worker_main(args.folder, args.stop_at)


if __name__ == "__main__":
    main()
