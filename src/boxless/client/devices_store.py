"""All the SQL of linked devices: rosters, extra device bundles, used pairings,
and the account snapshot a new device receives.

The snapshot is a copy of the account's rows (profile, contacts, bundles,
messages of the last N days, groups with their ops, member cards and
messages, chat settings, favourites, the search index, sync points, wallet
metadata) plus the Megolm inbound sessions re-pickled for the new database
(their pickle key is derived from each database's own key). Olm sessions,
our outbox, seen-hashes and our device keys are never copied: they belong to
one device. Both devices run the same code, so the same tables exist; a
column the receiver lacks is left out.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import vodozemac

from boxless.identity.device_certs import DeviceRoster
from boxless.identity.keys import DeviceBundle, bundle_from_bytes
from boxless.storage.userdb import Cursor
from boxless.wire import device_pb2

SNAPSHOT_VERSION = 1
MAX_SNAPSHOT_ROWS = 2_000_000

# table -> the time column that limits history to the last N days (or None: all rows)
_TABLES: tuple[tuple[str, str | None], ...] = (
    ("profile", None),
    ("client_contacts", None),
    ("client_bundles", None),
    ("client_messages", "sent_at_ms"),
    ("client_groups", None),
    ("client_group_ops", None),
    ("client_group_cards", None),
    ("client_group_reads", None),
    ("client_group_messages", "sent_at_ms"),
    ("client_group_message_extra", None),
    ("client_group_reactions", None),
    ("client_chat_settings", None),
    ("client_favourites", None),
    ("client_search_docs", None),
    ("client_sync", None),
    ("payment_chain", None),
    ("devices_rosters", None),
    ("devices_bundles", None),
    ("devices_sync_registers", None),
)


# ------------------------------------------------------------------ rosters


def get_roster(cur: Cursor, identity_key: bytes) -> DeviceRoster | None:
    """The roster held (verified when it was stored: parsed, not verified again)."""
    cur.execute("SELECT roster FROM devices_rosters WHERE identity_key = ?", (identity_key,))
    row = cur.fetchone()
    if row is None:
        return None
    msg = device_pb2.DeviceRoster()
    msg.ParseFromString(bytes(row[0]))
    return DeviceRoster.from_proto(msg)


def put_roster(cur: Cursor, roster: DeviceRoster, now_ms: int) -> None:
    cur.execute(
        "INSERT INTO devices_rosters (identity_key, serial, roster, fetched_at_ms)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (identity_key) DO UPDATE SET"
        " serial = excluded.serial, roster = excluded.roster,"
        " fetched_at_ms = excluded.fetched_at_ms",
        (roster.identity_key, roster.serial, roster.to_bytes(), now_ms),
    )
    active = [link.curve25519 for link in roster.devices]
    marks = ",".join("?" * len(active))
    cur.execute(
        f"DELETE FROM devices_bundles WHERE identity_key = ? AND device_key NOT IN ({marks})",
        (roster.identity_key, *active),
    )


def roster_fetched_at(cur: Cursor, identity_key: bytes) -> int | None:
    cur.execute("SELECT fetched_at_ms FROM devices_rosters WHERE identity_key = ?", (identity_key,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def touch_roster(cur: Cursor, identity_key: bytes, now_ms: int) -> None:
    """Asked the network just now (the roster held, if any, is current)."""
    cur.execute(
        "INSERT INTO devices_roster_checks (identity_key, checked_at_ms) VALUES (?, ?)"
        " ON CONFLICT (identity_key) DO UPDATE SET checked_at_ms = excluded.checked_at_ms",
        (identity_key, now_ms),
    )


def roster_checked_at(cur: Cursor, identity_key: bytes) -> int | None:
    cur.execute(
        "SELECT checked_at_ms FROM devices_roster_checks WHERE identity_key = ?", (identity_key,)
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])


def put_device_bundle(cur: Cursor, bundle: DeviceBundle) -> bool:
    """Keep a verified bundle unless one as new is held; True if kept."""
    cur.execute(
        "SELECT created_at FROM devices_bundles WHERE identity_key = ? AND device_key = ?",
        (bundle.identity_key, bundle.curve25519),
    )
    row = cur.fetchone()
    if row is not None and int(row[0]) >= bundle.created_at:
        return False
    cur.execute(
        "INSERT INTO devices_bundles (identity_key, device_key, bundle, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (identity_key, device_key) DO UPDATE SET"
        " bundle = excluded.bundle, created_at = excluded.created_at",
        (
            bundle.identity_key,
            bundle.curve25519,
            bundle.to_proto().SerializeToString(deterministic=True),
            bundle.created_at,
        ),
    )
    return True


def device_bundles(cur: Cursor, identity_key: bytes) -> list[DeviceBundle]:
    cur.execute(
        "SELECT bundle FROM devices_bundles WHERE identity_key = ? ORDER BY device_key",
        (identity_key,),
    )
    return [bundle_from_bytes(bytes(row[0])) for row in cur.fetchall()]


def delete_device_bundle(cur: Cursor, identity_key: bytes, device_key: bytes) -> None:
    cur.execute(
        "DELETE FROM devices_bundles WHERE identity_key = ? AND device_key = ?",
        (identity_key, device_key),
    )


# --------------------------------------------------------- pairings, seen


def pairing_used(cur: Cursor, secret_hash: bytes) -> bool:
    cur.execute("SELECT 1 FROM devices_used_pairings WHERE secret_hash = ?", (secret_hash,))
    return cur.fetchone() is not None


def use_pairing(cur: Cursor, secret_hash: bytes, now_ms: int) -> None:
    cur.execute(
        "INSERT INTO devices_used_pairings (secret_hash, used_at_ms) VALUES (?, ?)",
        (secret_hash, now_ms),
    )


def touch_device(cur: Cursor, device_key: bytes, now_ms: int) -> None:
    cur.execute(
        "INSERT INTO devices_seen (device_key, last_seen_ms) VALUES (?, ?)"
        " ON CONFLICT (device_key) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
        (device_key, now_ms),
    )


def last_seen(cur: Cursor) -> dict[bytes, int]:
    cur.execute("SELECT device_key, last_seen_ms FROM devices_seen")
    return {bytes(k): int(v) for k, v in cur.fetchall()}


# ------------------------------------------------------------------- snapshot


def _enc(value: object) -> object:
    if isinstance(value, (bytes, memoryview)):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _dec(value: object) -> object:
    if isinstance(value, dict):
        return base64.b64decode(str(value["b"]))
    return value


def _columns(cur: Cursor, table: str) -> list[str] | None:
    cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    if cur.fetchone() is None:
        return None
    cur.execute(f"PRAGMA table_info({table})")
    return [str(row[1]) for row in cur.fetchall()]


def export_snapshot(
    cur: Cursor,
    *,
    since_ms: int,
    megolm_pickle_key: bytes,
    my_identity: bytes,
    my_device_key: bytes,
) -> bytes:
    """The account's rows for a new device (messages sent at or after ``since_ms``)."""
    tables: dict[str, Any] = {}
    for table, time_col in _TABLES:
        cols = _columns(cur, table)
        if cols is None:
            continue
        where, args = (f" WHERE {time_col} >= ?", (since_ms,)) if time_col else ("", ())
        cur.execute(f"SELECT {', '.join(cols)} FROM {table}{where}", args)
        tables[table] = {"columns": cols, "rows": [[_enc(v) for v in r] for r in cur.fetchall()]}
    return json.dumps(
        {
            "version": SNAPSHOT_VERSION,
            "tables": tables,
            "megolm": _export_megolm(cur, megolm_pickle_key, my_identity, my_device_key),
        },
        separators=(",", ":"),
    ).encode()


def _export_megolm(
    cur: Cursor, key: bytes, my_identity: bytes, my_device_key: bytes
) -> list[list[str]]:
    """Inbound sessions as exported keys (from their first known index), and our own
    outbound sessions as inbound ones (so the new device reads what we sent)."""
    out: list[list[str]] = []
    cur.execute(
        "SELECT group_id, sender_key, pickle, first_known_index, sender_identity"
        " FROM crypto_megolm_inbound"
    )
    for group_id, sender_key, pickle, first, sender_identity in cur.fetchall():
        session = vodozemac.InboundGroupSession.from_pickle(str(pickle), key)
        exported = session.export_at(int(first))
        assert exported is not None
        out.append(
            [
                bytes(group_id).hex(),
                bytes(sender_key).hex(),
                bytes(sender_identity).hex(),
                exported.to_base64(),
            ]
        )
    cur.execute("SELECT group_id, origin_pickle FROM crypto_megolm_outbound")
    for group_id, origin in cur.fetchall():  # each session from its first message
        inbound = vodozemac.InboundGroupSession.from_pickle(str(origin), key)
        exported = inbound.export_at(inbound.first_known_index)
        assert exported is not None
        out.append(
            [bytes(group_id).hex(), my_device_key.hex(), my_identity.hex(), exported.to_base64()]
        )
    return out


def import_snapshot(cur: Cursor, raw: bytes, megolm_pickle_key: bytes) -> int:
    """Write a snapshot into a new device's (migrated, empty) tables; rows written."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
        raise ValueError("the account snapshot is from another Boxless version")
    written = 0
    known = {t for t, _ in _TABLES}
    for table, body in dict(data["tables"]).items():
        if table not in known:
            continue
        have = _columns(cur, table)
        if have is None:
            continue
        cols = [str(c) for c in body["columns"]]
        keep = [i for i, c in enumerate(cols) if c in have]
        names = ", ".join(cols[i] for i in keep)
        marks = ", ".join("?" * len(keep))
        rows = body["rows"]
        if written + len(rows) > MAX_SNAPSHOT_ROWS:
            raise ValueError("the account snapshot holds too many rows")
        cur.executemany(
            f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})",
            [[_dec(row[i]) for i in keep] for row in rows],
        )
        written += len(rows)
    for group_hex, sender_hex, identity_hex, key_b64 in data["megolm"]:
        session = vodozemac.InboundGroupSession.import_session(
            vodozemac.ExportedSessionKey(key_b64)
        )
        cur.execute(
            "INSERT OR REPLACE INTO crypto_megolm_inbound (group_id, sender_key, session_id,"
            " pickle, first_known_index, sender_identity, exported) VALUES (?, ?, ?, ?, ?, ?, 1)",
            (
                bytes.fromhex(group_hex),
                bytes.fromhex(sender_hex),
                session.session_id,
                session.pickle(megolm_pickle_key),
                session.first_known_index,
                bytes.fromhex(identity_hex),
            ),
        )
        written += 1
    return written


def retire_group_sessions(cur: Cursor) -> int:
    """Our current Megolm sessions stop (as a rotation does): the next group message
    starts a new one, shared with the devices allowed now. Returns how many."""
    cur.execute("UPDATE crypto_megolm_outbound SET current = 0, pickle = NULL WHERE current = 1")
    return int(cur.rowcount)


def wipe_keys(cur: Cursor) -> None:
    """A revoked device forgets every key it holds (the account can't open again)."""
    for table in (
        "crypto_olm_sessions",
        "crypto_olm_known_sessions",
        "crypto_megolm_inbound",
        "crypto_megolm_outbound",
        "crypto_megolm_outbound_devices",
        "device",
        "wallet_seed",
        "identity",
    ):
        if _columns(cur, table) is not None:
            cur.execute(f"DELETE FROM {table}")
