"""Backup and restore of a whole account (client/backup.py) and the file format's bounds."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.client import backup_format as bf
from boxless.client.backup import (
    DEVICE_TABLES,
    BackupDamaged,
    BackupError,
    WrongPhrase,
    create_backup,
    read_manifest,
    restore_backup,
)
from boxless.client.memory_transport import MemoryNetwork
from boxless.identity.account import account_exists, create_account, open_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase, phrase_to_seed
from tests.memnet_fixtures import (
    BASE,
    FAST_KDF,
    PASS,
    homes,
    make_account,
    running,
    wait_for,
    wall,
    wall_ns,
)
from tests.unit.test_groups_memnet import make_group, texts

__all__ = ["homes"]  # a fixture

SEED = phrase_to_seed(generate_phrase())
#: Rows that differ by design on the restored device (see docs/devices.md).
CHANGED = DEVICE_TABLES | {"crypto_megolm_outbound", "devices_rosters"}


def dump(person_db: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted (shadow tables of the search index excepted)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with person_db.transaction() as cur:
        cur.execute("PRAGMA table_list")
        names = [r[1] for r in cur.fetchall() if r[0] == "main" and r[2] == "table"]
        for name in names:
            if name.startswith("sqlite_") or name in CHANGED:
                continue
            cur.execute(f'SELECT * FROM "{name}"')  # noqa: S608
            out[name] = sorted(cur.fetchall(), key=repr)
    return out


def make_phrase_account(home: Path, name: str) -> str:
    phrase = generate_phrase()
    identity = Identity.from_phrase(phrase)
    create_account(
        home, PASS, identity, Profile(display_name=name, updated_at=int(BASE)), BASE, kdf=FAST_KDF
    ).close()
    return phrase


async def test_an_account_restored_from_its_backup_is_equal_and_works(
    homes: Path, autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    net = MemoryNetwork(now_ns=wall_ns)
    phrase = make_phrase_account(homes / "alice", "Alice")
    for name in ("bob", "carol"):
        make_account(homes / name, name.title())
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        await nursery.start(net.run)
        alice, bob, carol = [
            await stack.enter_async_context(running(net, homes / n, n))
            for n in ("alice", "bob", "carol")
        ]
        gid = await make_group(alice, [bob, carol])
        for i in range(5):
            await bob.client.send_text(alice.me, f"bob {i}")
            await alice.client.groups.send_text(gid, f"group {i}")
        await wait_for(alice, lambda: len(alice.texts(bob)) == 5)
        await wait_for(bob, lambda: len(texts(bob, gid)) == 5)
        await alice.client.send_text(bob.me, "searchable words")
        (blobs := homes / "alice" / "blobs" / "blocks" / "ab").mkdir(parents=True)
        (blobs / "block1").write_bytes(b"x" * 3_000_000)

        out = tmp_path / "alice.bxbk"
        seen: list[tuple[int, int]] = []
        stats = create_backup(
            alice.client.db,
            out,
            files_root=homes / "alice" / "blobs",
            progress=lambda d, t: seen.append((d, t)),
        )
        assert stats.rows > 20 and stats.files == 1
        assert seen and seen[-1][0] == seen[-1][1]  # the progress reaches its total
        assert b"searchable" not in out.read_bytes() and b"Alice" not in out.read_bytes()
        before = dump(alice.client.db)

        who = Identity.from_phrase(phrase)
        assert read_manifest(out, who)["identity"] == alice.me.hex()
        # a wrong phrase, a truncated file, a tampered byte, an existing account: refused
        home2 = homes / "alice2"
        with pytest.raises(WrongPhrase):
            restore_backup(out, home2, Identity.from_phrase(generate_phrase()), PASS, kdf=FAST_KDF)
        raw = out.read_bytes()
        for bad, error in (
            (raw[:-1], BackupDamaged),
            (raw[: len(raw) // 2], BackupDamaged),
            (raw[:100] + bytes([raw[100] ^ 1]) + raw[101:], BackupDamaged),
            (raw + b"\0", BackupDamaged),
            (b"not a backup" * 10, BackupDamaged),
        ):
            (bad_path := tmp_path / "bad.bxbk").write_bytes(bad)
            with pytest.raises(error):
                restore_backup(bad_path, home2, who, PASS, kdf=FAST_KDF)
            assert not account_exists(home2) and list(home2.iterdir()) == []
        with pytest.raises(BackupError, match="already has an account"):
            restore_backup(out, homes / "bob", who, PASS, kdf=FAST_KDF)
        with pytest.raises(BackupDamaged, match="over the limit"):
            restore_backup(out, home2, who, PASS, kdf=FAST_KDF, max_total=10_000)
        assert list(home2.iterdir()) == []

        restored = restore_backup(out, home2, who, PASS, kdf=FAST_KDF, now=wall())
        assert restored.rows == stats.rows
        got = (home2 / "blobs" / "blocks" / "ab" / "block1").read_bytes()
        assert len(got) == 3_000_000, len(got)
        assert got == b"x" * 3_000_000
        with open_account(home2, PASS) as account:
            assert account.identity.public_key == alice.me
            assert account.device.device_id != alice.account.device.device_id
            after = dump(account.db)
        assert after == before

        # the restored device runs: it reads its history, searches it, and is in its groups
        a2 = await stack.enter_async_context(running(net, home2, "alice2"))
        assert a2.texts(bob)[:5] == [f"bob {i}" for i in range(5)]
        assert set(texts(a2, gid)) >= {f"group {i}" for i in range(5)}
        hits = a2.client.search.search("searchable", limit=5)
        assert any("searchable" in m.text for m in hits.messages)
        nursery.cancel_scope.cancel()


def test_restore_over_an_account_moves_it_aside_when_asked(homes: Path, tmp_path: Path) -> None:
    phrase = make_phrase_account(homes / "a", "A")
    with open_account(homes / "a", PASS) as account:
        create_backup(account.db, tmp_path / "a.bxbk")
    restore_backup(
        tmp_path / "a.bxbk",
        homes / "a",
        Identity.from_phrase(phrase),
        PASS,
        replace=True,
        kdf=FAST_KDF,
    )
    aside = [p for p in (homes / "a").iterdir() if p.name.startswith("replaced-")]
    assert len(aside) == 1 and (aside[0] / "user.db").exists()
    with open_account(homes / "a", PASS) as account:
        assert account.profile.display_name == "A"


def _file(records: list[bf.Record]) -> bytes:
    w = bf.BackupWriter(SEED)
    out = w.start({"format": "boxless-backup"})
    for r in records:
        out += w.write(r)
    return out + w.finish()


def test_the_reader_refuses_records_after_the_end_and_rows_that_lie() -> None:
    good = _file([bf.Record(bf.RecordKind.ROWS, ["t", ["a"], [[1], [2]]])])
    r = bf.BackupReader(SEED)
    assert [x.kind for x in r.feed(good) + r.finish()] == [1, 3, 5]
    assert r.rows == 2
    for records, why in (
        ([bf.Record(bf.RecordKind.ROWS, ["t", ["a"], [[1, 2]]])], "malformed"),
        ([bf.Record(bf.RecordKind.END, [2, 0])], "after its end"),
        ([bf.Record(bf.RecordKind.END, [5, 0])], "does not match"),
        ([bf.Record(bf.RecordKind.MANIFEST, {})], "first record"),
    ):
        reader = bf.BackupReader(SEED)
        with pytest.raises(BackupDamaged, match=why):
            reader.feed(_file(records))
            reader.finish()


scalars = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
values = scalars | st.lists(scalars | st.lists(scalars, max_size=4), max_size=5)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_values_round_trip(value: Any) -> None:
    assert bf.decode_value(bf.encode_value(value)) == value


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_the_value_decoder_takes_any_bytes(data: bytes) -> None:
    try:
        bf.decode_value(data)
    except BackupDamaged:
        pass


@settings(max_examples=100)
@given(st.binary(max_size=300), st.integers(0, 400))
def test_the_reader_takes_any_bytes_after_a_valid_header(junk: bytes, cut: int) -> None:
    good = _file([bf.Record(bf.RecordKind.ROWS, ["t", ["a"], [[1]]])])
    data = good[: min(cut, len(good))] + junk
    reader = bf.BackupReader(SEED)
    try:
        reader.feed(data)
        reader.finish()
    except BackupError:  # damaged, or a changed salt (which reads as another key)
        return
    assert data == good  # only the untouched file reads to its end


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_the_record_decoder_takes_any_authenticated_plaintext(plain: bytes) -> None:
    """Plaintext sealed with the right key (as a holder of the phrase could make):
    the record layer refuses what is malformed, with BackupDamaged only."""
    w = bf.BackupWriter(SEED)
    enc = w._enc  # the STREAM under the header, fed raw plaintext
    data = w._header + enc.feed(plain) + enc.finish()
    reader = bf.BackupReader(SEED)
    try:
        reader.feed(data)
        reader.finish()
    except BackupDamaged:
        return
    assert reader.ended


def test_a_nested_or_huge_list_is_bounded() -> None:
    deep: Any = 1
    for _ in range(bf.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(BackupDamaged, match="deeply"):
        bf.decode_value(bf.encode_value(deep))
    # a list claiming 2**32-1 items in 5 bytes
    with pytest.raises(BackupDamaged, match="longer"):
        bf.decode_value(bytes([5]) + b"\xff\xff\xff\xff")


def test_scheduled_backups_are_due_by_period_and_keep_the_newest(
    homes: Path, tmp_path: Path
) -> None:
    from boxless.client.backup_schedule import (
        Schedule,
        backup_now,
        due,
        get_schedule,
        set_schedule,
        to_prune,
    )
    from boxless.errors import UsageError

    day = Schedule(tmp_path / "auto", 86_400, 2)
    assert due(day, BASE)
    done = Schedule(day.folder, 86_400, 2, last_at_ms=int(BASE * 1000))
    assert not due(done, BASE + 86_399) and due(done, BASE + 86_400)
    failed = Schedule(day.folder, 86_400, 2, last_at_ms=int(BASE * 1000), last_error="disk full")
    assert not due(failed, BASE + 8_000) and due(failed, BASE + 8_640)
    with pytest.raises(UsageError):
        Schedule(day.folder, 10, 2)
    names = [f"boxless-backup-2026010{d}-000000-0123abcd.bxbk" for d in range(1, 5)]
    assert to_prune([*names, "notes.txt", "boxless-backup-x.bxbk"], 2) == names[1::-1]

    make_phrase_account(homes / "a", "A")
    with open_account(homes / "a", PASS) as account:
        assert get_schedule(account.db) is None
        set_schedule(account.db, day)
        assert get_schedule(account.db) == day
        (day.folder).mkdir()
        (day.folder / "notes.txt").write_text("mine")
        for i in range(3):
            backup_now(account.db, day, homes / "a", "0123abcd" * 8, BASE + i * 86_400)
        kept = sorted(p.name for p in day.folder.iterdir())
        assert len(kept) == 3 and "notes.txt" in kept
        assert kept[0].startswith("boxless-backup-20270116")  # the two newest of three
        set_schedule(account.db, None)
        assert get_schedule(account.db) is None


async def test_the_phrase_alone_recovers_contacts_and_groups_not_history(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from boxless.client.account_state import (
        DEBOUNCE_S,
        NoAccountState,
        StatePublisher,
        assemble,
        recover,
        split_state,
        state_topic,
    )

    net = MemoryNetwork(now_ns=wall_ns)
    phrase = make_phrase_account(homes / "alice", "Alice")
    make_account(homes / "bob", "Bob")
    make_account(homes / "carol", "Carol")
    who = Identity.from_phrase(phrase)
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        await nursery.start(net.run)
        alice, bob, carol = [
            await stack.enter_async_context(running(net, homes / n, n))
            for n in ("alice", "bob", "carol")
        ]
        with pytest.raises(NoAccountState):
            await recover(net.transport("x"), who, homes / "x", PASS, now=wall(), kdf=FAST_KDF)
        gid = await make_group(alice, [bob, carol])
        await alice.client.send_text(bob.me, "history is not in the state")
        publisher = StatePublisher(alice.client.db, alice.transport, clock=wall)
        assert await publisher.publish_if_due()
        assert not await publisher.publish_if_due()  # unchanged: nothing sent
        assert not publisher.due(b"changed", wall() + DEBOUNCE_S - 1)  # debounced
        assert publisher.due(b"changed", wall() + DEBOUNCE_S)
        await trio.sleep(DEBOUNCE_S)
        # a stranger's pieces on the topic, a forged state: skipped
        seed = who.wallet_seed()
        assert seed is not None
        for msg in split_state(b"BXBK" + b"\0" * 300, state_topic(seed), wall()):
            await bob.transport.send(msg)

        home2 = homes / "alice2"
        restored = await recover(net.transport("x2"), who, home2, PASS, now=wall(), kdf=FAST_KDF)
        assert restored.rows > 0
        with open_account(home2, PASS) as account, account.db.transaction() as cur:
            cur.execute("SELECT identity_key, state FROM client_contacts ORDER BY identity_key")
            contacts = cur.fetchall()
            cur.execute("SELECT count(*) FROM client_messages")
            assert cur.fetchone()[0] == 0
        with alice.client.db.transaction() as cur:
            cur.execute("SELECT identity_key, state FROM client_contacts ORDER BY identity_key")
            assert contacts == cur.fetchall()
        a2 = await stack.enter_async_context(running(net, home2, "alice2"))
        assert a2.client.groups.state(gid).members == alice.client.groups.state(gid).members
        nursery.cancel_scope.cancel()

    # pieces: bounded, grouped by state, incomplete states dropped
    msgs = split_state(b"x" * 300_000, "/boxless/1/acct-00/proto", BASE)
    assert len(msgs) == 4 and assemble(msgs) == [b"x" * 300_000]
    assert assemble(msgs[:-1]) == []


async def test_the_backup_api(
    homes: Path, autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    import httpx

    from boxless.api.app import build_app
    from tests.memnet_fixtures import memnet

    origin, token = "http://127.0.0.1:9", "t" * 32
    async with memnet(homes, ("alice",)) as (_net, (alice,)):
        app = build_app(alice.client, token, origin, lambda: {"ok": True})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=origin + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
        ) as api:
            made = await api.post("/backup", json={})
            assert made.status_code == 201, made.text
            name = made.json()["name"]
            assert [f["name"] for f in (await api.get("/backup/files")).json()] == [name]
            got = await api.get(f"/backup/files/{name}")
            assert got.status_code == 200 and got.content[:4] == b"BXBK"
            assert len(got.content) == made.json()["bytes"]
            assert (await api.get("/backup/files/..%2Fuser.db")).status_code == 404
            assert (await api.get("/backup/schedule")).json() == {"scheduled": False}
            bad = await api.put(
                "/backup/schedule", json={"folder": "rel", "every_hours": 24, "keep": 3}
            )
            assert bad.status_code == 422 and "full path" in bad.text
            too_often = await api.put(
                "/backup/schedule", json={"folder": str(tmp_path), "every_hours": 0.001, "keep": 3}
            )
            assert too_often.status_code == 422
            ok = await api.put(
                "/backup/schedule", json={"folder": str(tmp_path), "every_hours": 12, "keep": 3}
            )
            assert ok.json()["scheduled"] and ok.json()["every_hours"] == 12
            assert (await api.delete("/backup/schedule")).status_code == 204
            assert (await api.get("/backup/schedule")).json() == {"scheduled": False}


def test_a_restored_device_joins_the_accounts_roster(homes: Path, tmp_path: Path) -> None:
    from boxless.client import devices_store
    from boxless.identity.device_certs import DeviceLink, first_roster
    from boxless.storage.userdb import migration_files

    phrase = make_phrase_account(homes / "a", "A")
    who = Identity.from_phrase(phrase)
    with open_account(homes / "a", PASS) as account:
        account.db.migrate("devices", migration_files("boxless.client", "migrations_devices"))
        cert = account.device.certificate
        link = DeviceLink.issue(who, cert, "Laptop", "Linux", int(BASE))
        with account.db.transaction() as cur:
            devices_store.put_roster(cur, first_roster(who, link, int(BASE)), int(BASE * 1000))
        old = account.device.certificate.device_curve25519
        create_backup(account.db, tmp_path / "a.bxbk")
    restore_backup(tmp_path / "a.bxbk", homes / "b", who, PASS, kdf=FAST_KDF, now=BASE + 60)
    with open_account(homes / "b", PASS) as account, account.db.transaction() as cur:
        roster = devices_store.get_roster(cur, who.public_key)
        assert roster is not None and roster.serial == 2
        roster.verify()
        new = account.device.certificate.device_curve25519
        assert roster.active(old) is not None and roster.active(new) is not None
        assert roster.active(new).name == "Restored device"  # type: ignore[union-attr]
