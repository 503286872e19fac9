"""GroupSessions on real sqlite3 files: a small group whose keys travel over real Olm."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
import vodozemac
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.crypto import DuplicateMessage, TamperedMessage, migration_files
from boxless.crypto.megolm import (
    EXPORTED_KEY_BYTES,
    SESSION_KEY_BYTES,
    GroupCiphertext,
    GroupKeyShare,
    GroupSessions,
    KeyShare,
    MessageBeforeKeyShare,
    RotationNeeded,
    RotationPolicy,
    UnknownGroupSession,
    decode_group_message,
    decode_key_share,
    encode_group_message,
    encode_key_share,
)
from boxless.errors import DecodeError, ValidationError
from boxless.storage.userdb import KdfParams, create_user_db
from boxless.wire import megolm_pb2
from tests.crypto_fixtures import Device, SqliteDB

GROUP = bytes(range(32))
T0 = 1_760_000_000.0


class Member:
    """One member device: a crypto fixture Device (Olm) plus its GroupSessions."""

    def __init__(self, path: Path, name: str, policy: RotationPolicy | None = None) -> None:
        self.name = name
        self.policy = policy
        self.device = Device(path / f"{name}.db")
        self.groups = GroupSessions(self.device.db, self.device.pickle_key, policy=policy)
        self.key = self.device.curve25519

    def restart(self) -> None:
        self.device.reopen()
        self.groups = GroupSessions(self.device.db, self.device.pickle_key, policy=self.policy)

    def read(self, ct: GroupCiphertext) -> bytes:
        return self.groups.decrypt(GROUP, None, ct).plaintext


def deliver(sender: Member, members: list[Member], shares: list[KeyShare]) -> None:
    """What the client does: each share over Olm 1:1, then into the recipient's store."""
    by_key = {m.key: m for m in members}
    for share in shares:
        to = by_key[share.device]
        # The fallback key: several senders may open a session to the same device here.
        bundle = to.device.bundle(with_one_time_key=False)
        olm = sender.device.manager.encrypt(bundle, share.payload)
        payload = to.device.manager.decrypt(sender.key, olm)
        to.groups.add_key_share(sender.device.identity_key, sender.key, payload)


def setup_group(
    sender: Member, others: list[Member], now: float = T0, *, history: bool = False
) -> None:
    state, shares = sender.groups.outbound(
        GROUP, [m.key for m in others], now, share_history=history
    )
    deliver(sender, others, shares)


@pytest.fixture
def five(tmp_path: Path) -> list[Member]:
    return [Member(tmp_path, name) for name in ("alice", "bob", "carol", "dave", "eve")]


def test_one_encrypt_all_four_decrypt(five: list[Member]) -> None:
    alice, *others = five
    state, shares = alice.groups.outbound(GROUP, [m.key for m in others], T0)
    assert state.rotated and state.reason == "new" and state.message_index == 0
    assert sorted(s.device for s in shares) == sorted(m.key for m in others)
    assert all(s.first_index == 0 and not s.exported for s in shares)
    deliver(alice, others, shares)

    ct = alice.groups.encrypt(GROUP, b"hello group", T0 + 1)  # once, for everyone
    wire = encode_group_message(ct)
    for member in others:
        got = member.groups.decrypt(GROUP, alice.key, decode_group_message(wire))
        assert got.plaintext == b"hello group"
        assert got.message_index == 0
        assert got.sender_device == alice.key
        assert got.sender_identity == alice.device.identity_key

    # Everyone sends on their own session; everyone reads everyone.
    for sender in others:
        setup_group(sender, [m for m in five if m is not sender])
    for i, sender in enumerate(five):
        ct = sender.groups.encrypt(GROUP, f"from {sender.name}".encode(), T0 + 10 + i)
        for reader in five:
            if reader is not sender:
                got = reader.groups.decrypt(GROUP, None, ct)
                assert (got.plaintext, got.sender_device) == (
                    f"from {sender.name}".encode(),
                    sender.key,
                )


def test_group_padding_buckets_fit_sds_sized_messages(five: list[Member]) -> None:
    """An SDS-wrapped short text is ~19 KB: it pads to 20 KiB, not the envelope's 64 KiB."""
    alice, *others = five
    _, shares = alice.groups.outbound(GROUP, [m.key for m in others], T0)
    deliver(alice, others, shares)
    sizes = {}
    for n in (100, 19_200, 20_479, 20_480, 70_000):
        ct = alice.groups.encrypt(GROUP, b"x" * n, T0 + 1)
        sizes[n] = len(encode_group_message(ct))
        assert others[0].groups.decrypt(GROUP, None, ct).plaintext == b"x" * n
    assert sizes[19_200] == sizes[20_479] < 20_480 + 1024  # one 20 KiB bucket
    assert sizes[20_480] > sizes[20_479]  # the padding byte moves it up a 4 KiB step
    assert 262_144 < sizes[70_000] < 262_144 + 1024


def test_nothing_changes_nothing_is_shared(five: list[Member]) -> None:
    alice, *others = five
    setup_group(alice, others)
    alice.groups.encrypt(GROUP, b"one", T0)
    state, shares = alice.groups.outbound(GROUP, [m.key for m in others], T0 + 5)
    assert not state.rotated and state.reason == "" and shares == []
    assert state.message_index == 1


def test_removal_rotates_and_the_removed_member_cannot_read_on(five: list[Member]) -> None:
    alice, bob, carol, dave, eve = five
    setup_group(alice, [bob, carol, dave, eve])
    before = alice.groups.encrypt(GROUP, b"eve is still here", T0 + 1)
    assert eve.read(before) == b"eve is still here"

    state, shares = alice.groups.outbound(GROUP, [bob.key, carol.key, dave.key], T0 + 2)
    assert state.rotated and state.reason == "member removed"
    assert state.session_id != before.session_id
    assert sorted(s.device for s in shares) == sorted([bob.key, carol.key, dave.key])
    deliver(alice, [bob, carol, dave], shares)

    after = [alice.groups.encrypt(GROUP, b"eve is gone %d" % i, T0 + 3 + i) for i in range(2)]
    assert after[0].session_id == state.session_id
    for ct in after:
        for member in (bob, carol, dave):
            assert member.read(ct).startswith(b"eve is gone")
        # Eve has no key for the new session ...
        with pytest.raises(UnknownGroupSession):
            eve.read(ct)
        # ... and the key she kept cannot read it either, even if the message is relabelled.
        with pytest.raises(TamperedMessage):
            eve.read(GroupCiphertext(session_id=before.session_id, body=ct.body))


def test_late_joiner_reads_only_from_its_join(tmp_path: Path, five: list[Member]) -> None:
    alice, *others = five
    setup_group(alice, others)
    early = [alice.groups.encrypt(GROUP, f"early {i}".encode(), T0 + i) for i in range(3)]

    frank = Member(tmp_path, "frank")
    state, shares = alice.groups.outbound(GROUP, [m.key for m in [*others, frank]], T0 + 10)
    assert not state.rotated  # a join does not rotate: the joiner gets the current index
    assert [(s.device, s.first_index) for s in shares] == [(frank.key, 3)]
    deliver(alice, [frank], shares)

    for ct in early:
        with pytest.raises(MessageBeforeKeyShare):
            frank.read(ct)
    late = alice.groups.encrypt(GROUP, b"welcome frank", T0 + 11)
    assert frank.read(late) == b"welcome frank"
    assert others[0].read(late) == b"welcome frank"


def test_history_sharing_exports_earlier_indices(tmp_path: Path, five: list[Member]) -> None:
    alice, bob, carol, dave, eve = five
    setup_group(alice, [bob, carol, dave, eve])
    first_session = [alice.groups.encrypt(GROUP, f"s1 {i}".encode(), T0 + i) for i in range(2)]
    alice.groups.outbound(GROUP, [bob.key, carol.key, dave.key], T0 + 5)  # eve removed
    second_session = [alice.groups.encrypt(GROUP, f"s2 {i}".encode(), T0 + 6 + i) for i in range(3)]

    frank = Member(tmp_path, "frank")
    state, shares = alice.groups.outbound(
        GROUP, [bob.key, carol.key, dave.key, frank.key], T0 + 20, share_history=True
    )
    assert not state.rotated
    assert all(s.device == frank.key and s.exported and s.first_index == 0 for s in shares)
    assert len(shares) == 2  # both of alice's sessions, from index 0
    deliver(alice, [frank], shares)

    for i, ct in enumerate(first_session):
        assert frank.read(ct) == f"s1 {i}".encode()
    for i, ct in enumerate(second_session):
        assert frank.read(ct) == f"s2 {i}".encode()
    assert frank.read(alice.groups.encrypt(GROUP, b"now", T0 + 21)) == b"now"


def test_an_earlier_export_upgrades_a_later_key(tmp_path: Path, five: list[Member]) -> None:
    alice, bob, *_ = five
    setup_group(alice, [bob])
    first = alice.groups.encrypt(GROUP, b"first", T0)
    frank = Member(tmp_path, "frank")
    _, shares = alice.groups.outbound(GROUP, [bob.key, frank.key], T0 + 1)
    deliver(alice, [frank], shares)
    with pytest.raises(MessageBeforeKeyShare):
        frank.read(first)
    # The group turns history sharing on later; a fresh export at index 0 replaces the key.
    alice_origin = _origin_export(alice)
    frank.groups.add_inbound(
        GROUP, alice.device.identity_key, alice.key, alice_origin, exported=True
    )
    assert frank.read(first) == b"first"
    # A later-starting key never downgrades what we hold.
    frank.groups.add_key_share(alice.device.identity_key, alice.key, shares[0].payload)
    with frank.device.db.transaction() as cur:
        cur.execute("SELECT first_known_index, exported FROM crypto_megolm_inbound")
        assert cur.fetchall() == [(0, 1)]


def _origin_export(member: Member) -> bytes:
    with member.device.db.transaction() as cur:
        cur.execute("SELECT origin_pickle FROM crypto_megolm_outbound WHERE current = 1")
        pickle = cur.fetchone()[0]
    origin = vodozemac.InboundGroupSession.from_pickle(pickle, member.device.pickle_key)
    export = origin.export_at(0)
    assert export is not None
    return base64.b64decode(export.to_base64() + "==")


def test_replay_is_refused_even_after_a_restart(five: list[Member]) -> None:
    alice, bob, *_ = five
    setup_group(alice, [bob])
    ct = alice.groups.encrypt(GROUP, b"once", T0)
    assert bob.read(ct) == b"once"
    with pytest.raises(DuplicateMessage):
        bob.read(ct)
    bob.restart()
    with pytest.raises(DuplicateMessage):
        bob.read(ct)


def test_a_failed_caller_transaction_leaves_the_message_unread(five: list[Member]) -> None:
    alice, bob, *_ = five
    setup_group(alice, [bob])
    ct = alice.groups.encrypt(GROUP, b"retry me", T0)
    with pytest.raises(RuntimeError), bob.groups.transaction():
        assert bob.read(ct) == b"retry me"
        raise RuntimeError("the caller's own write failed")
    assert bob.read(ct) == b"retry me"  # re-delivered: decrypts again, once


def test_tampered_and_misrouted_messages(five: list[Member]) -> None:
    alice, bob, carol, *_ = five
    setup_group(alice, [bob, carol])
    ct = alice.groups.encrypt(GROUP, b"genuine", T0)
    for position in (0, 5, len(ct.body) // 2, -70, -1):
        body = bytearray(ct.body)
        body[position] ^= 0x01
        with pytest.raises((TamperedMessage, DecodeError)):
            bob.read(GroupCiphertext(ct.session_id, bytes(body)))
    body = bytearray(ct.body)
    body[-1] ^= 0x01  # the signature: decodes, fails authentication
    with pytest.raises(TamperedMessage):
        bob.read(GroupCiphertext(ct.session_id, bytes(body)))
    with pytest.raises(DecodeError):
        bob.read(GroupCiphertext(ct.session_id, b"\x03garbage"))
    # Claimed by another sender, or in another group: no such session.
    with pytest.raises(UnknownGroupSession):
        bob.groups.decrypt(GROUP, carol.key, ct)
    with pytest.raises(UnknownGroupSession):
        bob.groups.decrypt(bytes(32), None, ct)
    # None of that spent the genuine message.
    assert bob.read(ct) == b"genuine"


def test_a_session_belongs_to_one_sender_device(five: list[Member]) -> None:
    alice, bob, carol, *_ = five
    _, shares = alice.groups.outbound(GROUP, [bob.key, carol.key], T0)
    deliver(alice, [bob, carol], shares)
    # Carol forwards Alice's key to Bob as if it were her own session.
    forwarded = next(s for s in shares if s.device == carol.key).payload
    with pytest.raises(ValidationError):
        bob.groups.add_key_share(carol.device.identity_key, carol.key, forwarded)
    # Or back to Alice, to pass her own messages off as Carol's.
    with pytest.raises(ValidationError):
        alice.groups.add_key_share(carol.device.identity_key, carol.key, forwarded)
    ct = alice.groups.encrypt(GROUP, b"still alice's", T0)
    assert bob.groups.decrypt(GROUP, None, ct).sender_device == alice.key


def test_restart_mid_conversation(five: list[Member]) -> None:
    alice, *others = five
    setup_group(alice, others)
    for i in range(5):
        ct = alice.groups.encrypt(GROUP, f"m{i}".encode(), T0 + i)
        assert all(m.read(ct) == f"m{i}".encode() for m in others)
    alice.restart()
    for m in others:
        m.restart()
    state, shares = alice.groups.outbound(GROUP, [m.key for m in others], T0 + 10)
    assert not state.rotated and shares == [] and state.message_index == 5
    for i in range(5, 10):
        ct = alice.groups.encrypt(GROUP, f"m{i}".encode(), T0 + i)
        got = others[0].groups.decrypt(GROUP, alice.key, ct)
        assert (got.plaintext, got.message_index) == (f"m{i}".encode(), i)


def test_rotation_by_count_and_by_age(tmp_path: Path) -> None:
    policy = RotationPolicy(max_messages=5, max_age_seconds=3600)
    alice, bob = Member(tmp_path, "alice", policy), Member(tmp_path, "bob")
    with pytest.raises(RotationNeeded):
        alice.groups.encrypt(GROUP, b"no session yet", T0)
    setup_group(alice, [bob])
    sent = [alice.groups.encrypt(GROUP, b"x", T0 + i) for i in range(5)]
    with pytest.raises(RotationNeeded):
        alice.groups.encrypt(GROUP, b"sixth", T0 + 6)
    state, shares = alice.groups.outbound(GROUP, [bob.key], T0 + 6)
    assert state.rotated and state.reason == "message count"
    assert state.session_id != sent[0].session_id
    deliver(alice, [bob], shares)
    assert bob.read(alice.groups.encrypt(GROUP, b"sixth", T0 + 6)) == b"sixth"

    with pytest.raises(RotationNeeded):
        alice.groups.encrypt(GROUP, b"an hour on", T0 + 6 + 3600)
    state, shares = alice.groups.outbound(GROUP, [bob.key], T0 + 6 + 3600)
    assert state.rotated and state.reason == "age"
    deliver(alice, [bob], shares)
    assert bob.read(alice.groups.encrypt(GROUP, b"an hour on", T0 + 6 + 3600)) == b"an hour on"
    # Bob's old keys still read what was sent on the old sessions.
    assert all(bob.read(ct) == b"x" for ct in sent)


def test_forget_group(five: list[Member]) -> None:
    alice, bob, *_ = five
    setup_group(alice, [bob])
    ct = alice.groups.encrypt(GROUP, b"bye", T0)
    bob.groups.forget_group(GROUP)
    with pytest.raises(UnknownGroupSession):
        bob.read(ct)
    alice.groups.forget_group(GROUP)
    with pytest.raises(RotationNeeded):
        alice.groups.encrypt(GROUP, b"gone", T0)


def test_reprs_hold_no_secrets(five: list[Member]) -> None:
    alice, bob, *_ = five
    _, shares = alice.groups.outbound(GROUP, [bob.key], T0)
    deliver(alice, [bob], shares)
    ct = alice.groups.encrypt(GROUP, b"SECRET-PLAINTEXT", T0)
    got = bob.groups.decrypt(GROUP, None, ct)
    share = decode_key_share(shares[0].payload)
    for obj in (shares[0], ct, got, share, alice.groups):
        text = repr(obj)
        assert "SECRET" not in text and ct.session_id not in text
        assert repr(shares[0].payload) not in text


def test_on_the_sqlcipher_user_database(tmp_path: Path) -> None:
    fast = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
    dbs = []
    for name in ("a", "b"):
        db = create_user_db(tmp_path / f"{name}.db", "correct horse battery", kdf=fast)
        assert db.migrate("crypto", migration_files()) == len(migration_files())
        dbs.append(db)
    sender = GroupSessions(dbs[0], dbs[0].derive_key("megolm pickle v1"))
    reader = GroupSessions(dbs[1], dbs[1].derive_key("megolm pickle v1"))
    _, shares = sender.outbound(GROUP, [b"\x01" * 32], T0)
    reader.add_key_share(b"\x02" * 32, b"\x03" * 32, shares[0].payload)
    ct = sender.encrypt(GROUP, b"on sqlcipher", T0)
    assert reader.decrypt(GROUP, b"\x03" * 32, ct).plaintext == b"on sqlcipher"
    with pytest.raises(DuplicateMessage):
        reader.decrypt(GROUP, b"\x03" * 32, ct)
    for db in dbs:
        db.close()


# ---------------------------------------------------------------- codecs


def _valid_share() -> bytes:
    session = vodozemac.GroupSession()
    session.encrypt(b"advance")
    raw = base64.b64decode(session.session_key.to_base64() + "==")
    return encode_key_share(
        GroupKeyShare(GROUP, session.session_id, raw, first_index=1, exported=False)
    )


VALID_SHARE = _valid_share()


def test_key_share_round_trip_and_shape_checks() -> None:
    share = decode_key_share(VALID_SHARE)
    assert share.group_id == GROUP and share.first_index == 1 and not share.exported
    assert len(share.session_key) == SESSION_KEY_BYTES
    assert decode_key_share(encode_key_share(share)) == share
    msg = megolm_pb2.GroupKeyShare()
    msg.ParseFromString(VALID_SHARE)
    for change in (
        {"version": 2},
        {"group_id": b"short"},
        {"session_id": bytes(32)},  # disagrees with the key
        {"first_index": 0},  # disagrees with the key
        {"exported": True},  # a 229-byte signed key is not an export
        {"session_key": msg.session_key[:EXPORTED_KEY_BYTES]},
    ):
        bad = megolm_pb2.GroupKeyShare()
        bad.CopyFrom(msg)
        for name, value in change.items():
            setattr(bad, name, value)
        with pytest.raises(DecodeError):
            decode_key_share(bad.SerializeToString())


def _share_only_expected_errors(data: bytes) -> None:
    try:
        share = decode_key_share(data)
    except DecodeError:
        return
    assert len(share.group_id) == 32 and len(share.session_key) in (165, 229)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=700))
def test_fuzz_key_share_arbitrary_bytes(data: bytes) -> None:
    _share_only_expected_errors(data)


FUZZ_DB = SqliteDB(Path(":memory:"))
FUZZ_DB.migrate_crypto()


@settings(max_examples=300)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255), st.data())
def test_fuzz_key_share_mutated(position: int, xor: int, data: st.DataObject) -> None:
    mutated = bytearray(VALID_SHARE)
    mutated[position % len(mutated)] ^= xor
    cut = data.draw(st.integers(min_value=0, max_value=len(mutated)))
    blob = bytes(mutated[:cut])
    _share_only_expected_errors(blob)
    # Whatever decodes must store or be refused with a decode/validation error.
    groups = GroupSessions(FUZZ_DB, secrets.token_bytes(32))
    try:
        groups.add_key_share(b"\x02" * 32, b"\x03" * 32, blob)
    except (DecodeError, ValidationError):
        pass


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_group_message(data: bytes) -> None:
    try:
        ct = decode_group_message(data)
    except DecodeError:
        return
    assert len(ct.body) > 0
    assert decode_group_message(encode_group_message(ct)) == ct
