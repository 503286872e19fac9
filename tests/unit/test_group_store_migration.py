"""Migration 0007: queued group direct bodies move to chat/outbox's row shape."""

from __future__ import annotations

from pathlib import Path

from boxless.chat.outbox import Outbox
from boxless.client import group_store as gs
from boxless.client.store import client_migrations
from boxless.crypto.olm_sessions import migration_files as crypto_migrations
from tests.chat_fixtures import make_account


def test_queued_bodies_survive_the_outbox_migration(tmp_path: Path) -> None:
    account = make_account(tmp_path / "a", "A")
    try:
        files = sorted(client_migrations(), key=lambda f: f.name)
        account.db.migrate("crypto", crypto_migrations())
        account.db.migrate("client", [f for f in files if f.name < "0007"])
        with account.db.transaction() as cur:
            cur.execute(
                "INSERT INTO client_group_outbox (recipient, payload, attempts, next_attempt_at)"
                " VALUES (?,?,?,?)",
                (b"r" * 32, b"payload", 2, 123.0),
            )
        account.db.migrate("client", files)
        with account.db.transaction() as cur:
            rows = gs.due_direct(cur, 200.0, 10)
        outbox = Outbox.from_rows(rows, now=200.0)
        (entry,) = outbox.entries()
        assert (entry.recipient, entry.payload, entry.attempts) == (b"r" * 32, b"payload", 2)
    finally:
        account.close()
