"""SessionManager on two real sqlite3 database files: Alice's device and Bob's."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import vodozemac

from boxless.crypto import (
    CryptoStateError,
    CryptoUsageError,
    DuplicateMessage,
    OlmCiphertext,
    SessionManager,
    TamperedMessage,
    UnknownSession,
)
from boxless.crypto.olm_sessions import MAX_SESSIONS_PER_DEVICE
from boxless.errors import DecodeError, PeerError
from tests.crypto_fixtures import Device


@pytest.fixture
def alice(tmp_path: Path) -> Device:
    return Device(tmp_path / "alice.db")


@pytest.fixture
def bob(tmp_path: Path) -> Device:
    return Device(tmp_path / "bob.db")


def converse(a: Device, b: Device, n: int, *, tag: str = "") -> None:
    """n round trips, each message one ratchet step, checked both ways."""
    for i in range(n):
        text = f"{tag}a->b {i}".encode()
        assert b.manager.decrypt(a.curve25519, a.manager.encrypt(b.bundle(), text)) == text
        text = f"{tag}b->a {i}".encode()
        assert a.manager.decrypt(b.curve25519, b.manager.encrypt(a.bundle(), text)) == text


def flip(ct: OlmCiphertext, index: int = -1) -> OlmCiphertext:
    body = bytearray(ct.body)
    body[index] ^= 0x01
    return OlmCiphertext(ct.type, bytes(body), ct.session_id)


def test_first_contact_offline_via_bundle(alice: Device, bob: Device) -> None:
    bundle = bob.bundle()  # what Alice's contact code for Bob carries
    assert bundle.one_time_key is not None
    # Bob is offline: Alice writes three messages on the bundle alone.
    sent = [alice.manager.encrypt(bundle, f"hello {i}".encode()) for i in range(3)]
    assert all(ct.is_prekey for ct in sent)
    assert len({ct.session_id for ct in sent}) == 1
    assert not bob.manager.has_session(alice.curve25519)

    # Bob comes online later and reads them.
    assert [bob.manager.decrypt(alice.curve25519, ct) for ct in sent] == [
        b"hello 0",
        b"hello 1",
        b"hello 2",
    ]
    # The one-time key was consumed, and that was saved with the session.
    assert bundle.one_time_key not in {k.to_bytes() for k in bob.account().one_time_keys.values()}
    bob.reopen()
    assert bob.manager.session_ids(alice.curve25519) == [sent[0].session_id]

    # Bob's reply is a normal message; once Alice has it, she stops sending pre-keys.
    reply = bob.manager.encrypt(alice.bundle(), b"hi Alice")
    assert not reply.is_prekey
    assert alice.manager.decrypt(bob.curve25519, reply) == b"hi Alice"
    assert not alice.manager.encrypt(bundle, b"ok").is_prekey


def test_two_hundred_messages_both_ways_with_restarts(alice: Device, bob: Device) -> None:
    converse(alice, bob, 100)
    alice.reopen()  # a restart mid-conversation: only the database files survive
    bob.reopen()
    converse(alice, bob, 100, tag="after restart ")
    assert len(alice.manager.session_ids(bob.curve25519)) == 1
    assert len(bob.manager.session_ids(alice.curve25519)) == 1


def test_bursts_one_way(alice: Device, bob: Device) -> None:
    converse(alice, bob, 1)
    for burst in range(3):
        sent = [alice.manager.encrypt(bob.bundle(), b"%d/%d" % (burst, i)) for i in range(100)]
        got = [bob.manager.decrypt(alice.curve25519, ct) for ct in sent]
        assert got == [b"%d/%d" % (burst, i) for i in range(100)]


def test_out_of_order_within_and_across_ratchet_steps(alice: Device, bob: Device) -> None:
    bundle = bob.bundle()
    # Pre-key messages out of order: the second one starts the session.
    first, second = (alice.manager.encrypt(bundle, m) for m in (b"p1", b"p2"))
    assert bob.manager.decrypt(alice.curve25519, second) == b"p2"
    assert bob.manager.decrypt(alice.curve25519, first) == b"p1"
    converse(alice, bob, 1)

    # A shuffled burst of normal messages.
    sent = [(i, alice.manager.encrypt(bundle, b"m%d" % i)) for i in range(30)]
    random.Random(4).shuffle(sent)
    for i, ct in sent:
        assert bob.manager.decrypt(alice.curve25519, ct) == b"m%d" % i

    # A message from an older sending chain arrives after a newer chain's.
    old = alice.manager.encrypt(bundle, b"old chain")
    converse(alice, bob, 1)  # the ratchet turns: Alice's next message is on a new chain
    new = alice.manager.encrypt(bundle, b"new chain")
    bob.reopen()
    assert bob.manager.decrypt(alice.curve25519, new) == b"new chain"
    assert bob.manager.decrypt(alice.curve25519, old) == b"old chain"


def test_duplicates_are_refused_and_harmless(alice: Device, bob: Device) -> None:
    bundle = bob.bundle()
    prekey = alice.manager.encrypt(bundle, b"first")
    assert bob.manager.decrypt(alice.curve25519, prekey) == b"first"
    with pytest.raises(DuplicateMessage):
        bob.manager.decrypt(alice.curve25519, prekey)

    converse(alice, bob, 2)
    normal = alice.manager.encrypt(bundle, b"once")
    assert bob.manager.decrypt(alice.curve25519, normal) == b"once"
    with pytest.raises(DuplicateMessage):
        bob.manager.decrypt(alice.curve25519, normal)
    # Without the session id hint too.
    with pytest.raises(DuplicateMessage):
        bob.manager.decrypt(alice.curve25519, OlmCiphertext(normal.type, normal.body))
    converse(alice, bob, 2)  # the session is unharmed


def test_replayed_fallback_prekey_after_pruning_is_a_duplicate(alice: Device, bob: Device) -> None:
    """A fallback key is reusable, so only the remembered session id stops a replay."""
    bundle = bob.bundle(with_one_time_key=False)
    first = alice.manager.encrypt(bundle, b"on the fallback key")
    assert bob.manager.decrypt(alice.curve25519, first) == b"on the fallback key"
    for i in range(MAX_SESSIONS_PER_DEVICE):  # new sessions push the first one out
        alice.manager.reset(bob.curve25519)
        ct = alice.manager.encrypt(bundle, b"session %d" % i)
        assert bob.manager.decrypt(alice.curve25519, ct) == b"session %d" % i
    assert first.session_id not in bob.manager.session_ids(alice.curve25519)
    assert len(bob.manager.session_ids(alice.curve25519)) == MAX_SESSIONS_PER_DEVICE
    # vodozemac alone would happily start the session again and decrypt it twice:
    with pytest.raises(DuplicateMessage):
        bob.manager.decrypt(alice.curve25519, first)


def test_tampered_messages_are_rejected_and_the_session_survives(
    alice: Device, bob: Device
) -> None:
    bundle = bob.bundle()
    prekey = alice.manager.encrypt(bundle, b"hello")
    with pytest.raises(TamperedMessage, match="failed authentication"):
        bob.manager.decrypt(alice.curve25519, flip(prekey))
    # The one-time key was not consumed by the forgery: the genuine message still works.
    assert bob.manager.decrypt(alice.curve25519, prekey) == b"hello"
    converse(alice, bob, 1)

    normal = alice.manager.encrypt(bundle, b"genuine")
    with pytest.raises(TamperedMessage) as info:
        bob.manager.decrypt(alice.curve25519, flip(normal))
    assert isinstance(info.value, PeerError)
    assert "genuine" not in str(info.value)
    assert bob.manager.decrypt(alice.curve25519, normal) == b"genuine"
    converse(alice, bob, 3)


def test_malformed_bodies_are_decode_errors(alice: Device, bob: Device) -> None:
    converse(alice, bob, 1)
    for msg_type in (0, 1):
        with pytest.raises(DecodeError):
            bob.manager.decrypt(alice.curve25519, OlmCiphertext(msg_type, b"\x03garbage"))
    converse(alice, bob, 1)


def test_a_message_claimed_by_another_device_does_not_decrypt(
    alice: Device, bob: Device, tmp_path: Path
) -> None:
    mallory = Device(tmp_path / "mallory.db")
    prekey = alice.manager.encrypt(bob.bundle(), b"for bob")
    # The sealed envelope claims the sender is Mallory's device: the pre-key
    # message's own identity key does not match, so no session starts.
    with pytest.raises(UnknownSession):
        bob.manager.decrypt(mallory.curve25519, prekey)
    assert bob.manager.decrypt(alice.curve25519, prekey) == b"for bob"
    converse(alice, bob, 1)
    normal = alice.manager.encrypt(bob.bundle(), b"again")
    with pytest.raises(UnknownSession):
        bob.manager.decrypt(mallory.curve25519, normal)


def test_unknown_session_then_reset_recovers_without_loss(alice: Device, bob: Device) -> None:
    converse(alice, bob, 3)
    # Bob loses his sessions (say, a database restored from an older backup).
    with bob.db.transaction() as cur:
        cur.execute("DELETE FROM crypto_olm_sessions")
    unacked = alice.manager.encrypt(bob.bundle(), b"are you there?")
    with pytest.raises(UnknownSession):
        bob.manager.decrypt(alice.curve25519, unacked)
    with pytest.raises(UnknownSession):  # without the hint, same answer
        bob.manager.decrypt(alice.curve25519, OlmCiphertext(unacked.type, unacked.body))

    # The recipient re-establishes: reset, then a bundle-based pre-key message
    # carrying the chat layer's session_reset control.
    bob.manager.reset(alice.curve25519)
    control = bob.manager.encrypt(alice.bundle(), b"session_reset")
    assert control.is_prekey
    assert alice.manager.decrypt(bob.curve25519, control) == b"session_reset"
    # Alice re-sends what was not acknowledged; it goes on the new session.
    resent = alice.manager.encrypt(bob.bundle(), b"are you there?")
    assert resent.session_id == control.session_id
    assert bob.manager.decrypt(alice.curve25519, resent) == b"are you there?"
    converse(alice, bob, 3)


def test_reset_keeps_old_sessions_for_messages_in_flight(alice: Device, bob: Device) -> None:
    converse(alice, bob, 2)
    in_flight = alice.manager.encrypt(bob.bundle(), b"sent before the reset")
    bob.manager.reset(alice.curve25519)
    assert not bob.manager.has_session(alice.curve25519)
    fresh = bob.manager.encrypt(alice.bundle(), b"new session")
    assert fresh.is_prekey
    assert bob.manager.decrypt(alice.curve25519, in_flight) == b"sent before the reset"
    assert alice.manager.decrypt(bob.curve25519, fresh) == b"new session"
    converse(alice, bob, 2)


def test_both_sides_start_a_session_at_once(alice: Device, bob: Device) -> None:
    a_first = alice.manager.encrypt(bob.bundle(), b"hi from alice")
    b_first = bob.manager.encrypt(alice.bundle(), b"hi from bob")
    assert bob.manager.decrypt(alice.curve25519, a_first) == b"hi from alice"
    assert alice.manager.decrypt(bob.curve25519, b_first) == b"hi from bob"
    converse(alice, bob, 20)


def test_decrypt_commits_with_the_callers_transaction(alice: Device, bob: Device) -> None:
    converse(alice, bob, 1)
    ct = alice.manager.encrypt(bob.bundle(), b"exactly once")
    with bob.db.transaction() as cur:
        cur.execute("CREATE TABLE processed (body BLOB)")

    class Crash(Exception):
        pass

    # The caller fails after decrypting: the ratchet step is rolled back too.
    with pytest.raises(Crash), bob.manager.transaction() as cur:
        plaintext = bob.manager.decrypt(alice.curve25519, ct)
        cur.execute("INSERT INTO processed VALUES (?)", (plaintext,))
        raise Crash
    # So the re-delivered message decrypts again; this time it is committed.
    with bob.manager.transaction() as cur:
        plaintext = bob.manager.decrypt(alice.curve25519, ct)
        cur.execute("INSERT INTO processed VALUES (?)", (plaintext,))
    bob.reopen()
    with bob.db.transaction() as cur:
        cur.execute("SELECT body FROM processed")
        assert cur.fetchall() == [(b"exactly once",)]
    with pytest.raises(DuplicateMessage):
        bob.manager.decrypt(alice.curve25519, ct)


def test_forward_secrecy_stored_state_cannot_decrypt_earlier_messages(
    alice: Device, bob: Device
) -> None:
    """After the ratchet advances, Bob's stored state has no key for old messages."""

    def stored_pickle() -> str:
        with bob.db.transaction() as cur:
            cur.execute("SELECT pickle FROM crypto_olm_sessions")
            (row,) = cur.fetchall()
            return str(row[0])

    bundle = bob.bundle()
    first = alice.manager.encrypt(bundle, b"first contact")
    account_then = bob.account().pickle(bob.pickle_key)
    assert bob.manager.decrypt(alice.curve25519, first) == b"first contact"
    converse(alice, bob, 1)

    captured = alice.manager.encrypt(bundle, b"captured on the wire")
    pickle_then = stored_pickle()
    assert bob.manager.decrypt(alice.curve25519, captured) == b"captured on the wire"
    # At the time, the stored state could decrypt it:
    message = vodozemac.AnyOlmMessage.from_parts(captured.type, captured.body)
    then = vodozemac.Session.from_pickle(pickle_then, bob.pickle_key)
    assert then.decrypt(message) == b"captured on the wire"

    converse(alice, bob, 3)  # a few ratchet steps in each direction

    # An attacker who takes Bob's database (and pickle key) now gets nothing:
    now = vodozemac.Session.from_pickle(stored_pickle(), bob.pickle_key)
    with pytest.raises(vodozemac.OlmDecryptionException):
        now.decrypt(message)
    with pytest.raises(vodozemac.OlmDecryptionException):
        now.decrypt(vodozemac.AnyOlmMessage.from_parts(first.type, first.body))
    # ... nor can the stored account redo the first key agreement: the
    # one-time key's secret is gone from it, while the old account had it.
    prekey = vodozemac.AnyOlmMessage.from_parts(first.type, first.body).to_pre_key()
    assert prekey is not None
    remote = vodozemac.Curve25519PublicKey.from_bytes(alice.curve25519)
    old_account = vodozemac.Account.from_pickle(account_then, bob.pickle_key)
    assert old_account.create_inbound_session(remote, prekey)[1] == b"first contact"
    with pytest.raises(vodozemac.SessionCreationException):
        bob.account().create_inbound_session(remote, prekey)

    # And the old pickle is not lying around in the database files either
    # (secure_delete, as UserDB sets it, zeroes replaced rows; a checkpoint
    # folds the WAL back). vodozemac pickles of one session share a prefix
    # (the encryption IV is derived from the pickle key), so skip that part.
    bob.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = b"".join(p.read_bytes() for p in bob.path.parent.glob(bob.path.name + "*"))
    current = stored_pickle()
    common = next(i for i, (x, y) in enumerate(zip(pickle_then, current, strict=False)) if x != y)
    chunks = [
        pickle_then[i : i + 24].encode() for i in range(common + 8, len(pickle_then) - 24, 24)
    ]
    assert chunks and not any(chunk in files for chunk in chunks)


def test_wrong_pickle_key_is_a_storage_error(alice: Device, bob: Device) -> None:
    converse(alice, bob, 1)
    wrong = SessionManager(bob.db, bob.accounts, bytes(32))
    with pytest.raises(CryptoStateError):
        wrong.encrypt(alice.bundle(), b"x")


def test_misuse_is_a_usage_error(alice: Device, bob: Device) -> None:
    with pytest.raises(CryptoUsageError):
        SessionManager(bob.db, bob.accounts, b"short")
    with pytest.raises(CryptoUsageError):
        OlmCiphertext(2, b"x")
    with pytest.raises(CryptoUsageError):
        bob.manager.decrypt(b"short key", OlmCiphertext(1, b"x"))
    # A bundle whose one-time key was used and that has no fallback key.
    bundle = bob.bundle()
    alice.manager.encrypt(bundle, b"x")
    alice.manager.reset(bob.curve25519)
    without_fallback = type(bundle)(
        identity_key=bundle.identity_key,
        curve25519=bundle.curve25519,
        ed25519=bundle.ed25519,
        sealing_key=bundle.sealing_key,
        one_time_key=bundle.one_time_key,
    )
    with pytest.raises(CryptoUsageError, match="fresh bundle"):
        alice.manager.encrypt(without_fallback, b"y")


def test_reprs_hold_no_secrets(alice: Device, bob: Device) -> None:
    ct = alice.manager.encrypt(bob.bundle(), b"secret plaintext")
    assert ct.session_id not in repr(ct)
    assert repr(ct.body) not in repr(ct)
    assert bob.pickle_key.hex() not in repr(bob.manager)
    assert bob.bundle().curve25519.hex() not in repr(bob.bundle())


class _Abort(Exception):
    pass


def test_a_rolled_back_encrypt_leaves_memory_as_the_database(alice: Device, bob: Device) -> None:
    """The cache of unpickled sessions must never run ahead of the database.

    The fault: an encrypt inside a caller's transaction that then rolls back.
    A cache that kept the stepped session would encrypt the next message one
    chain step further than the stored state (after a restart the same key
    would be used twice); within one chain Olm encryption is deterministic, so
    the live manager must produce exactly the bytes a restarted one does.
    """
    converse(alice, bob, 1)
    alice.manager.encrypt(bob.bundle(), b"turns the ratchet")  # later ones: same chain
    with pytest.raises(_Abort), alice.manager.transaction():
        alice.manager.encrypt(bob.bundle(), b"never sent")
        raise _Abort
    with pytest.raises(_Abort), alice.manager.transaction():
        live = alice.manager.encrypt(bob.bundle(), b"next")
        raise _Abort
    alice.reopen()
    assert alice.manager.encrypt(bob.bundle(), b"next") == live


def test_a_decrypt_undone_by_a_savepoint_decrypts_again(alice: Device, bob: Device) -> None:
    """A decrypt rolled back by an inner block, while the outer one commits."""
    converse(alice, bob, 2)
    ct = alice.manager.encrypt(bob.bundle(), b"once")
    with bob.manager.transaction():
        with pytest.raises(_Abort), bob.manager.transaction():
            assert bob.manager.decrypt(alice.curve25519, ct) == b"once"
            raise _Abort
    assert bob.manager.decrypt(alice.curve25519, ct) == b"once"
    bob.reopen()
    with pytest.raises(DuplicateMessage):
        bob.manager.decrypt(alice.curve25519, ct)
    converse(alice, bob, 2)


def test_the_session_cache_is_bounded(
    tmp_path: Path, alice: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boxless.crypto.olm_sessions.MAX_CACHED_SESSIONS", 2)
    peers = [Device(tmp_path / f"peer{i}.db") for i in range(4)]
    for _ in range(3):
        for peer in peers:
            converse(alice, peer, 1)
    assert len(alice.manager._cache) == 2
