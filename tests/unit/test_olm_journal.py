"""The ratchet journal (``crypto/ratchet_journal.py``) and SessionManager on it.

Real SQLCipher accounts (``tests/olm_kill9.py``'s two devices); each test plays
a short conversation and then breaks something on disk or in the process.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.crypto import DuplicateMessage
from boxless.crypto import olm_sessions as olm_module
from boxless.crypto.ratchet_journal import (
    JournalBusy,
    JournalClosed,
    Step,
    epoch_key,
    journal_path,
    read_records,
    seal_record,
)
from tests.olm_kill9 import NAMES, Side, create

KEY = bytes(range(32))
EPOCH = b"e" * 16


def _step(i: int) -> Step:
    return Step(bytes([i % 256]) * 32, f"session {i}", i, "pickle" * (i % 7 + 1))


def _file(steps: list[Step], epoch: bytes = EPOCH) -> bytes:
    aead = epoch_key(KEY, epoch)
    return b"".join(seal_record(aead, seq, step) for seq, step in enumerate(steps, 1))


# ---------------------------------------------------------------- the records


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(0, 6),
    cut=st.integers(0, 10_000),
    flip=st.one_of(st.none(), st.integers(0, 10_000)),
    tail=st.binary(max_size=64),
)
def test_a_damaged_file_gives_its_good_prefix_and_never_raises(
    count: int, cut: int, flip: int | None, tail: bytes
) -> None:
    """Torn (cut anywhere), flipped (one bit anywhere) or followed by junk: the
    records read are exactly the intact leading ones, never a wrong one."""
    steps = [_step(i) for i in range(count)]
    data = bytearray(_file(steps))
    ends = []
    aead = epoch_key(KEY, EPOCH)
    for seq, step in enumerate(steps, 1):
        ends.append((ends[-1] if ends else 0) + len(seal_record(aead, seq, step)))
    damaged_at = len(data)
    if flip is not None and data:
        flip %= len(data)
        data[flip] ^= 0x01
        damaged_at = flip
    if cut < len(data):
        data = data[:cut]
        damaged_at = min(damaged_at, cut)
    data += tail
    got, good = read_records(aead, bytes(data))
    intact = sum(1 for end in ends if end <= damaged_at)
    assert got[:intact] == steps[:intact]
    assert len(got) in (intact, intact + 0)  # nothing past the damage is accepted
    assert good == (ends[intact - 1] if intact else 0)


@given(st.binary(max_size=2048))
def test_random_bytes_are_no_records(data: bytes) -> None:
    assert read_records(epoch_key(KEY, EPOCH), data) == ([], 0)


def test_records_of_another_epoch_or_reordered_do_not_authenticate() -> None:
    steps = [_step(i) for i in range(3)]
    assert read_records(epoch_key(KEY, EPOCH), _file(steps))[0] == steps
    assert read_records(epoch_key(KEY, b"f" * 16), _file(steps)) == ([], 0)
    aead = epoch_key(KEY, EPOCH)
    swapped = seal_record(aead, 2, steps[1]) + seal_record(aead, 1, steps[0])
    assert read_records(aead, swapped) == ([], 0)
    # the peer's key and the session id are not in the clear
    blob = _file(steps)
    assert steps[1].remote_key not in blob and b"session 1" not in blob


# ----------------------------------------------------- SessionManager on a journal


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    create(tmp_path)  # alice and bob, alice's message 0 queued (a pre-key message)
    return tmp_path


def _pair(folder: Path) -> tuple[Side, Side]:
    alice, bob = (Side.open(folder, name) for name in NAMES)
    return alice, bob


def _send(src: Side, dst: Side, text: bytes) -> bytes:
    """One message: the sender's transaction, then the receiver's (deferred + flush)."""
    with src.sessions.transaction() as cur:
        olm = src.sessions.encrypt(dst.bundle, text, cur=cur)
    with dst.sessions.transaction() as cur:
        plain = dst.sessions.decrypt(src.device_key, olm, cur=cur, defer=True)
        cur.execute("INSERT INTO k9_seen (hash) VALUES (?)", (os.urandom(32),))
        dst.sessions.flush(cur)
    return plain


def _talk(alice: Side, bob: Side, rounds: int, tag: str = "") -> None:
    for i in range(rounds):
        assert _send(alice, bob, f"a{tag}{i}".encode()) == f"a{tag}{i}".encode()
        assert _send(bob, alice, f"b{tag}{i}".encode()) == f"b{tag}{i}".encode()


def _copy(folder: Path, name: str, into: Path) -> None:
    """What a kill -9 of ``name``'s process leaves now: its files as they are."""
    shutil.copytree(folder / name, into / name)


def test_steps_go_to_the_journal_and_a_reopen_replays_them(folder: Path) -> None:
    alice, bob = _pair(folder)
    _talk(alice, bob, 5)
    assert alice.sessions._journal is not None and alice.sessions._journal.records >= 5
    with alice.account.db.transaction() as cur:
        cur.execute("SELECT version FROM crypto_olm_sessions")
        (stale,) = cur.fetchone()
    # reopened without a clean close (as after a kill): the journal is replayed
    for side in (alice, bob):
        side.account.close()
    alice, bob = _pair(folder)
    with alice.account.db.transaction() as cur:
        cur.execute("SELECT version FROM crypto_olm_sessions")
        (replayed,) = cur.fetchone()
    assert replayed > stale
    assert journal_path(alice.account.db.path).stat().st_size == 0  # checkpointed, cut
    _talk(alice, bob, 3, "again")


def test_a_kill_between_the_receive_commit_and_its_journal_loses_nothing(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Bob commits a message (with its "seen" mark) and dies before its step is
    journaled: restarted on the older state, he still reads Alice's next messages
    (Olm redoes the lost ratchet turn and keeps the skipped key), and the
    conversation goes on both ways."""
    alice, bob = _pair(folder)
    _talk(alice, bob, 3)
    with alice.sessions.transaction() as cur:
        lost = alice.sessions.encrypt(bob.bundle, b"turns the ratchet", cur=cur)
    with bob.sessions.transaction() as cur:
        assert bob.sessions.decrypt(alice.device_key, lost, cur=cur, defer=True)
        cur.execute("INSERT INTO k9_seen (hash) VALUES (?)", (b"lost" * 8,))
        bob.sessions.flush(cur)
    assert bob.sessions._unjournaled  # committed, its step not yet in the journal
    snapshot = tmp_path_factory.mktemp("killed")
    _copy(folder, "bob", snapshot)  # the kill
    alice2 = alice
    bob2 = Side.open(snapshot, "bob")
    with bob2.account.db.transaction() as cur:
        cur.execute("SELECT 1 FROM k9_seen WHERE hash = ?", (b"lost" * 8,))
        assert cur.fetchone() is not None  # processed: a re-delivery is dropped by it
    _talk(bob2, alice2, 3, "after")  # bob speaks first, from the older state
    _talk(alice2, bob2, 3, "later")


def test_an_encrypt_is_journaled_before_it_returns(folder: Path, tmp_path: Path) -> None:
    """A kill right after encrypt returned (the message may leave next) keeps its
    step: the restarted sender never uses that message key again."""
    alice, bob = _pair(folder)
    _talk(alice, bob, 2)
    with alice.sessions.transaction() as cur:
        first = alice.sessions.encrypt(bob.bundle, b"sent, then killed", cur=cur)
    snapshot = tmp_path / "killed"
    _copy(folder, "alice", snapshot)
    alice2 = Side.open(snapshot, "alice")
    with alice2.sessions.transaction() as cur:
        second = alice2.sessions.encrypt(bob.bundle, b"after the restart", cur=cur)
    for olm, text in ((first, b"sent, then killed"), (second, b"after the restart")):
        with bob.sessions.transaction() as cur:
            assert bob.sessions.decrypt(alice.device_key, olm, cur=cur) == text


def test_a_rolled_back_receive_is_never_journaled(folder: Path) -> None:
    alice, bob = _pair(folder)
    _talk(alice, bob, 2)
    with alice.sessions.transaction() as cur:
        olm = alice.sessions.encrypt(bob.bundle, b"rolled back", cur=cur)
    with pytest.raises(RuntimeError), bob.sessions.transaction() as cur:
        bob.sessions.decrypt(alice.device_key, olm, cur=cur, defer=True)
        bob.sessions.flush(cur)
        raise RuntimeError("the batch failed")
    bob.sessions.discard()
    assert not bob.sessions._unjournaled
    with bob.sessions.transaction() as cur:
        assert bob.sessions.decrypt(alice.device_key, olm, cur=cur) == b"rolled back"
        with pytest.raises(DuplicateMessage):
            bob.sessions.decrypt(alice.device_key, olm, cur=cur)


def test_a_torn_or_forged_tail_is_dropped_and_an_old_file_never_rolls_back(
    folder: Path, tmp_path: Path
) -> None:
    alice, bob = _pair(folder)
    _talk(alice, bob, 3)
    journal = journal_path(alice.account.db.path)
    old = tmp_path / "old.ratchets"
    shutil.copy(journal, old)  # an attacker (or a backup) keeps this epoch's file
    with journal.open("ab") as f:
        f.write(b"\x00\x00\x10\x00" + os.urandom(100))  # torn / forged tail
    alice.account.close()
    alice = Side.open(folder, "alice")  # replays, checkpoints, new epoch
    _talk(alice, bob, 2, "x")
    alice.account.close()
    alice = Side.open(folder, "alice")  # checkpointed again: the table holds it all
    alice.sessions.close()
    alice.account.close()
    # put back the old file: its epoch is gone, so none of its records applies
    # (nor could it: each is older than its row's version)
    shutil.copy(old, journal)
    alice = Side.open(folder, "alice")
    _talk(alice, bob, 2, "y")


def test_one_writer_another_process_is_refused_this_one_takes_over(folder: Path) -> None:
    alice, bob = _pair(folder)
    _talk(alice, bob, 1)
    # this process opens the account again: the newer manager takes the journal
    again = Side.open(folder, "alice")
    with pytest.raises(JournalClosed), alice.sessions.transaction() as cur:
        alice.sessions.encrypt(bob.bundle, b"stale manager", cur=cur)
    _talk(again, bob, 2)
    again.sessions.close()
    # another process holds the lock: a clear error, nothing opened
    fd = os.open(journal_path(again.account.db.path), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(JournalBusy, match="another Boxless process"):
            Side.open(folder, "alice")
    finally:
        os.close(fd)


def test_a_checkpoint_cuts_the_journal_and_keeps_every_state(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(olm_module, "CHECKPOINT_RECORDS", 4)
    alice, bob = _pair(folder)
    _talk(alice, bob, 6)
    assert alice.sessions._journal is not None and alice.sessions._journal.records < 4
    for side in (alice, bob):
        side.sessions.close()
        side.account.close()
    alice, bob = _pair(folder)
    _talk(alice, bob, 3, "z")


def test_wiped_keys_leave_no_state_in_the_journal(folder: Path) -> None:
    """A revoked device deletes every session row (``devices_store.wipe_keys``):
    the journal is cut at that commit, so no pickle outlives its row."""
    alice, bob = _pair(folder)
    _talk(alice, bob, 3)
    journal = journal_path(alice.account.db.path)
    assert journal.stat().st_size > 0
    with alice.account.db.transaction() as cur:
        cur.execute("DELETE FROM crypto_olm_sessions")
    assert journal.stat().st_size == 0
    with alice.sessions.transaction() as cur:
        assert alice.sessions.session_ids(bob.device_key) == []


def test_a_forged_or_replayed_message_changes_nothing_on_the_fast_paths(folder: Path) -> None:
    """A forged message (one flipped bit) and a replay, each first in its batch
    (the inline decrypt takes them), leave the session as it was: the genuine
    message still decrypts, once."""
    from boxless.crypto import OlmCiphertext, TamperedMessage

    alice, bob = _pair(folder)
    _talk(alice, bob, 2)
    with alice.sessions.transaction() as cur:
        olm = alice.sessions.encrypt(bob.bundle, b"genuine", cur=cur)
    body = bytearray(olm.body)
    body[-1] ^= 0x01
    forged = OlmCiphertext(olm.type, bytes(body), olm.session_id)
    with pytest.raises(TamperedMessage), bob.sessions.transaction() as cur:
        bob.sessions.decrypt(alice.device_key, forged, cur=cur, defer=True)
    bob.sessions.discard()
    with bob.sessions.transaction() as cur:
        assert bob.sessions.decrypt(alice.device_key, olm, cur=cur, defer=True) == b"genuine"
        bob.sessions.flush(cur)
    with pytest.raises(DuplicateMessage), bob.sessions.transaction() as cur:
        bob.sessions.decrypt(alice.device_key, olm, cur=cur, defer=True)
    bob.sessions.discard()
    _talk(bob, alice, 2, "on")
