"""Backup and restore of an account with 10,000 messages and 50 contacts (client/backup.py).

Builds a real account (SQLCipher, default Argon2id, every client migration: a
``Client`` is constructed over an in-memory transport, not run), fills 50
contacts and 10,000 1:1 messages through the client's store functions (so the
search index's triggers run), then times ``create_backup`` and
``restore_backup`` into a fresh home, checks that every table of the restored
database equals the original (the device's own rows excepted, by design) and
that the restored account opens and starts a client. Goal: each < 10 s.

    python bench/bench_backup.py [--messages 10000] [--contacts 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from boxless.client import store as db
from boxless.client.backup import DEVICE_TABLES, create_backup, restore_backup
from boxless.client.core import Client
from boxless.client.memory_transport import MemoryNetwork
from boxless.identity.account import create_account, open_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase

PASS = "bench passphrase 1"
WORDS = "the of and to in is you that it he was for on are as with his they at be this".split()


def fill(account: Any, contacts: int, messages: int) -> None:
    rng = random.Random(7)
    keys = [os.urandom(32) for _ in range(contacts)]
    now_ms = int(time.time() * 1000)
    with account.db.transaction() as cur:
        for i, key in enumerate(keys):
            db.put_contact(
                cur,
                db.ContactRow(
                    key,
                    f"Contact {i}",
                    os.urandom(300),
                    os.urandom(32),
                    "accepted",
                    "",
                    f"/boxless/1/c-{key.hex()[:16]}/proto",
                    None,
                    0,
                    now_ms,
                    now_ms,
                ),
            )
    for start in range(0, messages, 500):
        with account.db.transaction() as cur:
            for n in range(start, min(messages, start + 500)):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20)))
                db.add_message(
                    cur,
                    db.MessageRow(
                        os.urandom(16),
                        keys[n % contacts],
                        n % 3 == 0,
                        n,
                        now_ms + n,
                        now_ms + n + 5,
                        text,
                        None,
                        False,
                        False,
                        "delivered",
                        {},
                    ),
                )


def dump(userdb: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    with userdb.transaction() as cur:
        cur.execute("PRAGMA table_list")
        names = [r[1] for r in cur.fetchall() if r[0] == "main" and r[2] == "table"]
        for name in names:
            if name.startswith("sqlite_") or name in DEVICE_TABLES:
                continue
            cur.execute(f'SELECT * FROM "{name}"')  # noqa: S608
            out[name] = sorted(cur.fetchall(), key=repr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--contacts", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    net = MemoryNetwork(now_ns=time.time_ns)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        phrase = generate_phrase()
        identity = Identity.from_phrase(phrase)
        profile = Profile(display_name="Bench", updated_at=int(time.time()))
        account = create_account(base / "a", PASS, identity, profile, time.time())
        Client(account, net.transport("a"))  # every migration, as `boxless up` runs them
        t = time.perf_counter()
        fill(account, args.contacts, args.messages)
        print(
            f"filled {args.contacts} contacts, {args.messages} messages in "
            f"{time.perf_counter() - t:.1f} s"
        )
        before = dump(account.db)
        backups, restores = [], []
        for run in range(args.runs):
            out = base / f"a{run}.bxbk"
            stats = create_backup(account.db, out)
            backups.append(stats.seconds)
            home = base / f"r{run}"
            t = time.perf_counter()
            restored = restore_backup(out, home, Identity.from_phrase(phrase), PASS)
            restores.append(time.perf_counter() - t)
            with open_account(home, PASS) as again:
                assert dump(again.db) == before, "the restored account differs"
                Client(again, net.transport(f"r{run}"))  # opens and migrates as `up` would
            print(
                f"run {run + 1}: backup {stats.seconds:.2f} s ({stats.rows} rows, "
                f"{stats.bytes / 1e6:.1f} MB); restore {restores[-1]:.2f} s "
                f"({restored.rows} rows, incl. Argon2id); equal: yes"
            )
        account.close()
    print(
        f"median of {args.runs}: backup {statistics.median(backups):.2f} s, "
        f"restore {statistics.median(restores):.2f} s (goal < 10 s each)"
    )


if __name__ == "__main__":
    main()
