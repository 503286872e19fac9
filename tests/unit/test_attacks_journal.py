"""Playing the attacker (and the crash) against the Olm ratchet journal.

Each test is one finding of the W10 review (it failed before its fix) or one
rule the review checked; see docs/protocols.md "The ratchet journal".
"""

from __future__ import annotations

import os
import stat
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.crypto import olm_sessions as olm_module
from boxless.crypto.errors import CryptoStateError
from boxless.crypto.ratchet_journal import JournalClosed, RatchetJournal, Step, journal_path
from tests.olm_kill9 import Side, create
from tests.unit.test_olm_journal import _copy, _pair, _talk

KEY = bytes(range(32))
EPOCH = b"e" * 16


def _step(i: int) -> Step:
    return Step(bytes([i]) * 32, f"session {i}", i, f"pickle {i}")


def _journal(path: Path, epoch: bytes | None = None) -> tuple[RatchetJournal, list[Step]]:
    journal = RatchetJournal(path, KEY)
    steps = journal.open(epoch)
    return journal, steps


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    create(tmp_path)
    return tmp_path


def test_a_forked_child_never_appends_under_the_parents_epoch(tmp_path: Path) -> None:
    """A process forked while the journal is open shares its fd and its lock: a
    child's append would number a record n+1 under the parent's epoch key (nonce
    reuse) and push the parent's own record n+1 out of the file."""
    path = tmp_path / "db.ratchets"
    journal, _ = _journal(path)
    journal.restart(EPOCH)
    journal.append([_step(1)])
    pid = os.fork()
    if pid == 0:  # the child: must be refused
        try:
            journal.append([_step(99)])
        except JournalClosed:
            os._exit(0)
        except BaseException:
            os._exit(2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child could append"
    journal.append([_step(2)])
    journal.close()
    again, steps = _journal(path, EPOCH)
    again.close()
    assert steps == [_step(1), _step(2)]


def test_a_symlink_or_odd_file_at_the_journal_path_is_refused(tmp_path: Path) -> None:
    """A symlink at the path would make the checkpoint cut (truncate) its target."""
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"keep me")
    path = tmp_path / "db.ratchets"
    path.symlink_to(victim)
    with pytest.raises(CryptoStateError, match="not a regular file"):
        journal, _ = _journal(path)
        journal.restart(EPOCH)  # before the fix: truncates the victim
    assert victim.read_bytes() == b"keep me"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(CryptoStateError, match="not a regular file"):
        _journal(path)


def test_the_file_is_private_even_if_it_existed(tmp_path: Path) -> None:
    path = tmp_path / "new.ratchets"
    journal, _ = _journal(path)
    journal.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path = tmp_path / "old.ratchets"
    path.write_bytes(b"")
    path.chmod(0o644)  # put back by a copy, or made under another umask
    journal, _ = _journal(path)
    journal.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_huge_file_is_not_read_into_memory(tmp_path: Path) -> None:
    """Open reads record by record and stops at the first bad one: a 256 MiB
    file of junk after two good records costs no more memory than the records."""
    path = tmp_path / "db.ratchets"
    journal, _ = _journal(path)
    journal.restart(EPOCH)
    journal.append([_step(1), _step(2)])
    journal.close()
    with path.open("r+b") as f:
        f.truncate(256 << 20)  # sparse: junk (zeros) after the records
    tracemalloc.start()
    try:
        again, steps = _journal(path, EPOCH)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    again.close()
    assert steps == [_step(1), _step(2)]
    assert peak < 8 << 20, f"open used {peak} bytes"


def test_a_checkpoint_that_fails_after_its_commit_never_lets_a_key_be_reused(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint commits the new epoch, then fails to sync or cut the file.
    Before the fix the journal went on appending under the OLD epoch's key: those
    records never open after a kill (the database names the new epoch), so the
    restarted sender encrypted again from an older state -- a message key used
    twice. Now the journal refuses every later step with a clear error."""
    monkeypatch.setattr(olm_module, "CHECKPOINT_RECORDS", 3)
    alice, bob = _pair(folder)
    _talk(alice, bob, 1)

    def broken_disk(path: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(olm_module, "_fsync_file", broken_disk)
    sent: list[tuple[object, bytes]] = []
    failed = False
    for i in range(10):  # the checkpoint falls due within these
        text = f"m{i}".encode()
        try:
            with alice.sessions.transaction() as cur:
                sent.append((alice.sessions.encrypt(bob.bundle, text, cur=cur), text))
        except OSError:  # before the fix the failed checkpoint surfaced here
            failed = True
        if failed or alice.sessions._journal.closed:  # type: ignore[union-attr]
            break
    monkeypatch.undo()
    refused = None
    with alice.sessions.transaction() as cur:
        try:  # the message leaves, then a kill before the transaction commits
            sent.append((alice.sessions.encrypt(bob.bundle, b"in flight", cur=cur), b"in flight"))
        except CryptoStateError as exc:
            refused = exc
        _copy(folder, "alice", tmp_path / "killed")
    alice2 = Side.open(tmp_path / "killed", "alice")
    with alice2.sessions.transaction() as cur:
        sent.append((alice2.sessions.encrypt(bob.bundle, b"after", cur=cur), b"after"))
    for olm, text in sent:  # each key used once: every message decrypts
        with bob.sessions.transaction() as cur:
            assert bob.sessions.decrypt(alice.device_key, olm, cur=cur) == text  # type: ignore[arg-type]
    assert refused is not None and "restart" in str(refused)


def test_a_kill_between_a_delete_and_its_checkpoint_resurrects_nothing(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows deleted (a revoked device's keys wiped), then a kill before the
    checkpoint that follows the commit: the journal still holds the sessions'
    records, and the reopen applies none of them (no row, nothing inserted)."""
    alice, bob = _pair(folder)
    _talk(alice, bob, 3)
    monkeypatch.setattr(olm_module.SessionManager, "_after_delete", lambda self: None)
    with alice.account.db.transaction() as cur:
        cur.execute("DELETE FROM crypto_olm_sessions")
    journal = journal_path(alice.account.db.path)
    assert journal.stat().st_size > 0  # the kill came before the cut
    monkeypatch.undo()
    _copy(folder, "alice", tmp_path / "killed")
    alice2 = Side.open(tmp_path / "killed", "alice")
    assert alice2.sessions.session_ids(bob.device_key) == []
    with alice2.account.db.transaction() as cur:
        cur.execute("SELECT count(*) FROM crypto_olm_sessions")
        assert cur.fetchone()[0] == 0


def test_a_short_write_never_lets_the_next_record_take_its_nonce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that failed wrote nothing: the same record number is free again.
    A SHORT write put part of record n+1 (sealed with nonce n+1) in the file:
    the journal then takes no more records in that epoch."""
    from boxless.crypto import ratchet_journal as module

    path = tmp_path / "db.ratchets"
    journal, _ = _journal(path)
    journal.restart(EPOCH)
    journal.append([_step(1)])
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module.os, "write", full_disk)
    with pytest.raises(OSError):
        journal.append([_step(2)])
    monkeypatch.setattr(module.os, "write", lambda fd, data: real_write(fd, data[:10]))
    with pytest.raises(OSError, match="short write"):
        journal.append([_step(3)])
    monkeypatch.undo()
    with pytest.raises(JournalClosed, match="short write"):
        journal.append([_step(4)])
    assert path.stat().st_size == journal.size  # cut back: only record 1
    again, steps = _journal(path, EPOCH)
    again.close()
    assert steps == [_step(1)]


def test_a_takeover_in_another_thread_never_lands_an_old_record_in_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second journal of the same file (the account reopened in this process)
    takes the file over while a thread of the first is between its check and
    its ``os.write``. Before the fix the takeover closed the fd under the write
    and the new open got the same fd number: the old epoch's record landed in
    the new epoch's file, and every later record of the new epoch was dropped
    at the next open (a kill there: message keys used twice)."""
    import threading

    from boxless.crypto import ratchet_journal as module

    path = tmp_path / "db.ratchets"
    old, _ = _journal(path)
    old.restart(EPOCH)
    old.append([_step(1)])
    real_write = os.write
    new_epoch = b"n" * 16
    box: dict[str, object] = {}

    def take_over() -> None:
        new, steps = _journal(path, EPOCH)
        new.restart(new_epoch)
        box["new"], box["replayed"] = new, steps

    def racing_write(fd: int, data: bytes) -> int:
        monkeypatch.setattr(module.os, "write", real_write)
        thread = threading.Thread(target=take_over)
        thread.start()
        thread.join(0.2)  # with the fix it waits for this write: it cannot finish
        box["thread"] = thread
        return real_write(fd, data)

    monkeypatch.setattr(module.os, "write", racing_write)
    try:
        old.append([_step(2)])
    except OSError:
        pass  # also acceptable: the write found its fd closed
    thread = box["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join(10)
    new = box["new"]
    assert isinstance(new, RatchetJournal)
    new.append([_step(3)])
    new.close()
    again, steps = _journal(path, new_epoch)
    again.close()
    assert steps == [_step(3)]
    with pytest.raises(JournalClosed):
        old.append([_step(4)])


def test_a_journal_of_another_account_or_epoch_opens_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.ratchets"
    journal, _ = _journal(path)
    journal.restart(EPOCH)
    journal.append([_step(1), _step(2)])
    journal.close()
    other = RatchetJournal(path, bytes(32))  # another account's database key
    assert other.open(EPOCH) == []
    other.close()
    again, steps = _journal(path, b"o" * 16)  # an epoch the database no longer names
    again.close()
    assert steps == []


def test_a_kill_between_the_epochs_commit_and_the_cut_loses_no_step(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint committed the table and the new epoch; the kill comes before
    the file is cut. The file's records (old epoch) no longer open, and need not:
    the table has every state. The restarted sender reuses no message key."""
    monkeypatch.setattr(olm_module, "CHECKPOINT_RECORDS", 3)
    alice, bob = _pair(folder)
    _talk(alice, bob, 1)
    killed = tmp_path / "killed"

    def kill_here(path: Path) -> None:
        if not killed.exists():
            _copy(folder, "alice", killed)

    monkeypatch.setattr(olm_module, "_fsync_file", kill_here)
    sent = []
    for i in range(6):
        with alice.sessions.transaction() as cur:
            sent.append((alice.sessions.encrypt(bob.bundle, b"m%d" % i, cur=cur), b"m%d" % i))
        if killed.exists():
            break
    assert killed.exists() and journal_path(killed / "alice" / "user.db").stat().st_size > 0
    monkeypatch.undo()
    alice2 = Side.open(killed, "alice")
    with alice2.sessions.transaction() as cur:
        sent.append((alice2.sessions.encrypt(bob.bundle, b"after", cur=cur), b"after"))
    for olm, text in sent:
        with bob.sessions.transaction() as cur:
            assert bob.sessions.decrypt(alice.device_key, olm, cur=cur) == text


def test_received_steps_wait_in_memory_for_one_step_at_most(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lag of a received state on disk is bounded: the session's next decrypt
    journals it first, and past MAX_CACHED_SESSIONS sessions waiting the commit
    journals them all."""
    from tests.unit.test_olm_journal import _send

    alice, bob = _pair(folder)
    _talk(alice, bob, 2)
    assert _send(alice, bob, b"one") == b"one"
    key = (alice.device_key, alice.sessions.session_ids(bob.device_key)[0])
    assert key in bob.sessions._unjournaled
    journal = bob.sessions._journal
    assert journal is not None
    before = journal.records
    with alice.sessions.transaction() as cur:
        olm = alice.sessions.encrypt(bob.bundle, b"two", cur=cur)
    with bob.sessions.transaction() as cur:
        assert bob.sessions.decrypt(alice.device_key, olm, cur=cur, defer=True) == b"two"
        assert journal.records == before + 1  # "one"'s state, before "two" is read
        bob.sessions.flush(cur)
    monkeypatch.setattr(olm_module, "MAX_CACHED_SESSIONS", 0)
    assert _send(alice, bob, b"three") == b"three"
    assert not bob.sessions._unjournaled and journal.records == before + 3  # two, three


def test_the_rows_cache_sees_a_retire_from_another_connection(folder: Path) -> None:
    """The hot path trusts its cached rows only while no other connection
    committed (``PRAGMA data_version``): a reset through a second connection of
    the same process is seen, and the next encrypt opens a new session."""
    from boxless.crypto import SessionManager
    from boxless.identity.account import open_account
    from tests.olm_kill9 import PASS

    alice, bob = _pair(folder)
    _talk(alice, bob, 2)
    assert alice.sessions.has_session(bob.device_key)  # rows cached
    other = open_account(folder / "alice", PASS)
    try:
        plain = SessionManager(other.db, other.keystore, other.db.derive_key("olm sessions v1"))
        plain.reset(bob.device_key)
    finally:
        other.close()
    assert not alice.sessions.has_session(bob.device_key)
    with alice.sessions.transaction() as cur:
        olm = alice.sessions.encrypt(bob.bundle, b"new session", cur=cur)
    assert olm.is_prekey
    with bob.sessions.transaction() as cur:
        assert bob.sessions.decrypt(alice.device_key, olm, cur=cur) == b"new session"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(0, 4),
    cut=st.integers(0, 2_000),
    flip=st.one_of(st.none(), st.integers(0, 2_000)),
    tail=st.binary(max_size=40),
)
def test_open_reads_exactly_what_read_records_reads(
    tmp_path: Path, count: int, cut: int, flip: int | None, tail: bytes
) -> None:
    """Open's record-by-record reader and :func:`read_records` of the whole file
    agree on any damaged file (torn, flipped, junk after)."""
    from boxless.crypto.ratchet_journal import epoch_key, read_records, seal_record

    aead = epoch_key(KEY, EPOCH)
    data = bytearray(b"".join(seal_record(aead, n, _step(n)) for n in range(1, count + 1)))
    if flip is not None and data:
        data[flip % len(data)] ^= 0x04
    data = data[:cut] + tail
    path = tmp_path / "db.ratchets"
    path.write_bytes(bytes(data))
    journal, steps = _journal(path, EPOCH)
    journal.close()
    assert steps == read_records(aead, bytes(data))[0]
