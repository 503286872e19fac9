"""Group membership: signed ops, the rules, concurrent conflicts, catch-up in any order, fuzzing."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError
from boxless.groups import (
    AddResult,
    Create,
    Demote,
    GroupLog,
    GroupOp,
    GroupState,
    InvalidOpSignature,
    Invite,
    Join,
    Leave,
    OpStatus,
    Promote,
    Remove,
    Rename,
    Role,
    SetAnnouncementsOnly,
    SetAvatar,
    SetDescription,
    SetHistorySharing,
    create_op,
    decode_op,
    encode_op,
    issue_token,
    join_op,
    sign_op,
    verify_op,
)
from boxless.identity.keys import Identity

CREATOR, ALICE, BOB, CAROL, DAVE, EVE = (
    Identity.from_private_bytes(bytes([i + 1]) * 32) for i in range(6)
)
C, A, B, CA, D, E = (i.public_key for i in (CREATOR, ALICE, BOB, CAROL, DAVE, EVE))
T0 = 1_800_000_000_000


def _group() -> GroupLog:
    """Creator + Alice and Bob (admins) + Carol and Dave (members): 5 members."""
    genesis = create_op(CREATOR, "Friends", T0, description="hi")
    group = GroupLog(genesis.op_id)
    assert group.add(genesis) is AddResult.NEW
    for key in (A, B, CA, D):
        group.next_op(CREATOR, Invite(key, "friend"), T0 + 1)
    group.next_op(CREATOR, Promote(A), T0 + 2)
    group.next_op(CREATOR, Promote(B), T0 + 2)
    return group


BASE = _group()
BASE_OPS = BASE.ops()


def _fork(group: GroupLog = BASE) -> GroupLog:
    """Another device holding the same ops."""
    return GroupLog.replay(group.group_id, group.ops())


def _status(group: GroupLog, op: GroupOp) -> OpStatus:
    return group.verdict(op.op_id).status


def _concurrent(*steps: tuple[Identity, object]) -> list[GroupOp]:
    """Each (author, body) made on its own fork of BASE: all mutually concurrent."""
    ops = []
    for author, body in steps:
        ops.append(_fork().next_op(author, body, T0 + 10))  # type: ignore[arg-type]
    return ops


# ------------------------------------------------------------------- basics


def test_create_and_invite() -> None:
    state = BASE.state
    assert state.group_id == BASE_OPS[0].op_id
    assert state.creator == C and state.name == "Friends" and state.description == "hi"
    assert set(state.members) == {C, A, B, CA, D}
    assert state.admins == {C, A, B}
    assert state.role(CA) is Role.MEMBER and state.members[CA].name == "friend"
    assert state.members[A].joined_at_op == BASE_OPS[1].op_id
    assert not state.announcements_only and not state.history_sharing
    assert BASE.missing() == set() and len(BASE.heads()) == 1


def test_settings_by_admin() -> None:
    group = _fork()
    group.next_op(ALICE, Rename("New name"), T0 + 5)
    group.next_op(BOB, SetDescription("line 1\nline 2"), T0 + 5)
    group.next_op(ALICE, SetAvatar(b"\x89PNG..."), T0 + 5)
    group.next_op(BOB, SetAnnouncementsOnly(True), T0 + 5)
    group.next_op(CREATOR, SetHistorySharing(True), T0 + 5)
    s = group.state
    assert (s.name, s.description, s.avatar) == ("New name", "line 1\nline 2", b"\x89PNG...")
    assert s.announcements_only and s.history_sharing


@pytest.mark.parametrize(
    "author,body,reason",
    [
        (CAROL, Rename("x"), "only admins"),
        (CAROL, Invite(E), "only admins"),
        (CAROL, Remove(D), "only admins"),
        (CAROL, Promote(CA), "only admins"),
        (CAROL, SetAnnouncementsOnly(True), "only admins"),
        (EVE, Leave(), "not a member"),
        (EVE, Rename("x"), "not a member"),
        (ALICE, Remove(C), "creator cannot be removed"),
        (ALICE, Demote(C), "only the creator can demote the creator"),
        (ALICE, Remove(E), "not a member"),
        (ALICE, Remove(A), "Leave"),
    ],
)
def test_rules_reject(author: Identity, body: object, reason: str) -> None:
    group = _fork()
    with pytest.raises(UsageError, match=reason):
        group.next_op(author, body, T0 + 5)  # type: ignore[arg-type]
    assert group.ops() == BASE_OPS and group.heads() == BASE.heads()
    # The same op built by a misbehaving client is stored, judged invalid, ignored.
    op = sign_op(author, BASE.group_id, body, BASE.heads(), 99, T0 + 5)  # type: ignore[arg-type]
    assert group.add(op) is AddResult.NEW
    assert group.verdict(op.op_id).status is OpStatus.INVALID
    assert reason in group.verdict(op.op_id).reason
    assert group.state == BASE.state


def test_noops_and_creator_self_demote() -> None:
    group = _fork()
    again = group.next_op(ALICE, Invite(CA), T0 + 5)
    promote = group.next_op(ALICE, Promote(B), T0 + 5)
    assert _status(group, again) is OpStatus.NO_OP
    assert _status(group, promote) is OpStatus.NO_OP
    group.next_op(CREATOR, Demote(C), T0 + 6)
    assert group.state.role(C) is Role.MEMBER and group.state.creator == C


def test_leave_and_removed_members_later_ops_are_ignored() -> None:
    group = _fork()
    group.next_op(DAVE, Leave(), T0 + 5)
    assert not group.state.is_member(D) and D not in group.state.removed
    group.next_op(ALICE, Remove(B), T0 + 6)
    assert not group.state.is_member(B) and B in group.state.removed
    # Bob, having seen his removal, tries anyway: invalid.
    late = sign_op(BOB, group.group_id, Remove(A), group.heads(), 50, T0 + 7)
    assert group.add(late) is AddResult.NEW
    assert _status(group, late) is OpStatus.INVALID
    # Bob back-dates an op onto the heads from before his removal: overridden.
    backdated = sign_op(BOB, group.group_id, Rename("pwned"), BASE.heads(), 50, T0 + 7)
    group.add(backdated)
    assert _status(group, backdated) is OpStatus.OVERRIDDEN
    assert group.state.name == "Friends" and group.state.is_admin(A)
    # An admin can re-invite him.
    group.next_op(CREATOR, Invite(B), T0 + 8)
    assert group.state.role(B) is Role.MEMBER and B not in group.state.removed


def test_forged_signature_is_dropped_and_cannot_shadow_the_real_op() -> None:
    group = _fork()
    real = sign_op(ALICE, group.group_id, Remove(D), group.heads(), 20, T0 + 5)
    forged = dataclasses.replace(real, signature=bytes(64))
    with pytest.raises(InvalidOpSignature):
        verify_op(forged)
    assert group.add(forged) is AddResult.BAD_SIGNATURE
    assert forged.op_id not in group
    assert group.add(real) is AddResult.NEW and not group.state.is_member(D)
    # Carol (not an admin) signs an op claiming to be Alice's: bad signature.
    carol = dataclasses.replace(real, signature=CAROL.sign(real.signed_bytes()))
    assert _fork().add(carol) is AddResult.BAD_SIGNATURE


def test_other_groups_and_duplicates() -> None:
    other = create_op(EVE, "Other", T0)
    group = _fork()
    assert group.add(other) is AddResult.WRONG_GROUP
    assert group.add(BASE_OPS[3]) is AddResult.DUPLICATE
    with pytest.raises(UsageError, match="op_id"):
        dataclasses.replace(BASE_OPS[2], lamport=77)


def test_lamport_lie_still_orders_parents_first() -> None:
    group = _fork()
    low = sign_op(ALICE, group.group_id, Rename("low"), group.heads(), 0, T0 + 5)
    group.add(low)
    after = sign_op(BOB, group.group_id, Rename("after"), [low.op_id], 1, T0 + 6)
    group.add(after)
    assert group.state.name == "after"
    assert group.ops()[-2:] == [low, after]


# ------------------------------------------------------- concurrent conflicts


def _converge(ops: list[GroupOp]) -> tuple[GroupState, dict[bytes, OpStatus]]:
    """Apply BASE_OPS + ops in every order on fresh devices; all must agree."""
    results = []
    for order in itertools.permutations(ops):
        group = GroupLog.replay(BASE.group_id, [*BASE_OPS, *order])
        results.append((group.state, {op.op_id: _status(group, op) for op in ops}))
    assert all(result == results[0] for result in results)
    return results[0]


def test_removal_beats_concurrent_demotion_by_the_removed() -> None:
    remove_a, demote_b = _concurrent((BOB, Remove(A)), (ALICE, Demote(B)))
    state, verdicts = _converge([remove_a, demote_b])
    assert not state.is_member(A) and A in state.removed
    assert state.is_admin(B)
    assert verdicts == {remove_a.op_id: OpStatus.APPLIED, demote_b.op_id: OpStatus.OVERRIDDEN}


def test_mutual_removal_removes_both_and_mutual_demotion_demotes_both() -> None:
    state, _ = _converge(_concurrent((BOB, Remove(A)), (ALICE, Remove(B))))
    assert not state.is_member(A) and not state.is_member(B)
    state, _ = _converge(_concurrent((BOB, Demote(A)), (ALICE, Demote(B))))
    assert state.role(A) is Role.MEMBER and state.role(B) is Role.MEMBER


def test_revoked_admins_concurrent_actions_are_overridden() -> None:
    ops = _concurrent(
        (CREATOR, Demote(A)),
        (ALICE, Remove(CA)),  # not a strike-back at the creator: overridden
        (ALICE, Rename("Alice's")),
        (BOB, Promote(D)),
        (CREATOR, Remove(D)),  # remove wins over the concurrent promotion
    )
    state, verdicts = _converge(ops)
    assert state.role(A) is Role.MEMBER and state.is_member(CA) and state.name == "Friends"
    assert not state.is_member(D) and not state.is_admin(D)
    assert [verdicts[op.op_id] for op in ops] == [
        OpStatus.APPLIED,
        OpStatus.OVERRIDDEN,
        OpStatus.OVERRIDDEN,
        OpStatus.OVERRIDDEN,
        OpStatus.APPLIED,
    ]


def test_removed_admin_cannot_escape_through_a_backdated_accomplice() -> None:
    removal = _fork().next_op(BOB, Remove(A), T0 + 10)
    backdated = _fork()  # Alice's view from before her removal
    invite = backdated.next_op(ALICE, Invite(E), T0 + 11)
    promote = backdated.next_op(ALICE, Promote(E), T0 + 12)
    kick = backdated.next_op(EVE, Remove(D), T0 + 13)
    rename = backdated.next_op(EVE, Rename("pwned"), T0 + 13)
    ops = [removal, invite, promote, kick, rename]
    state, verdicts = _converge(ops)
    assert not state.is_member(A) and not state.is_member(E)
    assert state.is_member(D) and state.name == "Friends"
    assert [verdicts[op.op_id] for op in ops] == [OpStatus.APPLIED] + [OpStatus.OVERRIDDEN] * 4
    group = GroupLog.replay(BASE.group_id, [*BASE_OPS, *ops])
    assert "overridden op" in group.verdict(kick.op_id).reason


def test_concurrent_readd_loses_to_removal_and_renames_are_last_writer_wins() -> None:
    group = _fork()
    group.next_op(DAVE, Leave(), T0 + 5)
    left = group.ops()
    base = GroupLog.replay(group.group_id, left)
    readd = GroupLog.replay(group.group_id, left).next_op(ALICE, Invite(D), T0 + 6)
    removal = sign_op(BOB, group.group_id, Remove(D), BASE.heads(), 30, T0 + 6)
    rename_1 = sign_op(ALICE, group.group_id, Rename("one"), BASE.heads(), 40, T0 + 6)
    rename_2 = sign_op(BOB, group.group_id, Rename("two"), BASE.heads(), 40, T0 + 6)
    states = set()
    for order in itertools.permutations([readd, removal, rename_1, rename_2]):
        replica = GroupLog.replay(base.group_id, [*left, *order])
        states.add(repr((sorted(replica.state.members), replica.state)))
        assert not replica.state.is_member(D)
        winner = max((rename_1, rename_2), key=lambda op: op.op_id)
        assert replica.state.name == winner.body.name  # type: ignore[union-attr]
    assert len(states) == 1


def test_five_members_conflicting_ops_converge_in_any_order() -> None:
    ops = _concurrent(
        (BOB, Remove(A)),
        (ALICE, Demote(B)),
        (ALICE, Invite(E)),
        (CREATOR, Rename("Creator's")),
        (BOB, Promote(CA)),
        (CAROL, Leave()),
    )
    # Some ops built on top of others: a small DAG, not just siblings.
    merged = GroupLog.replay(BASE.group_id, [*BASE_OPS, *ops])
    ops.append(merged.next_op(CREATOR, SetHistorySharing(True), T0 + 20))
    ops.append(sign_op(DAVE, BASE.group_id, Leave(), [ops[0].op_id], 60, T0 + 21))
    reference = GroupLog.replay(BASE.group_id, [*BASE_OPS, *ops])
    assert reference.state.members.keys() == {C, B}
    assert reference.state.name == "Creator's" and reference.state.history_sharing
    assert not reference.state.is_member(E)  # Alice's invite fell with her

    @settings(max_examples=60, deadline=None)
    @given(st.permutations([*BASE_OPS[1:], *ops]), st.integers(0, 3))
    def same_everywhere(order: list[GroupOp], dups: int) -> None:
        device = GroupLog(BASE.group_id)
        for op in [*order[:dups], BASE_OPS[0], *order]:
            device.add(op)
        assert device.missing() == set()
        assert device.state == reference.state
        assert device.heads() == reference.heads()
        assert device.ops() == reference.ops()
        for op in ops:
            assert device.verdict(op.op_id) == reference.verdict(op.op_id)

    same_everywhere()


def test_offline_member_catches_up_from_any_order() -> None:
    online = _fork()
    offline = _fork()
    changes = [
        online.next_op(ALICE, Remove(B), T0 + 5),
        online.next_op(CREATOR, Invite(E, "Eve"), T0 + 6),
        online.next_op(ALICE, Promote(CA), T0 + 7),
    ]
    # Meanwhile Dave, offline, renamed the group... no: he is not an admin. He leaves.
    dave = offline.next_op(DAVE, Leave(), T0 + 5)
    online.add(dave)
    final = online.state

    @settings(max_examples=60, deadline=None)
    @given(st.permutations(changes), st.integers(0, 3))
    def catch_up(order: list[GroupOp], partial: int) -> None:
        device = _fork(offline)
        # A store page may come newest first: parents arrive later.
        device.apply(order[:partial])
        if partial and order[0] is not changes[0]:
            assert device.missing() <= {changes[0].op_id, changes[1].op_id}
        device.apply(order)
        assert device.missing() == set()
        assert device.state == final
        assert device.state.members.keys() == {C, A, CA, E}

    catch_up()


def test_missing_names_only_unknown_parents() -> None:
    group = _fork()
    one = group.next_op(ALICE, Rename("one"), T0 + 5)
    two = group.next_op(ALICE, Rename("two"), T0 + 6)
    three = group.next_op(ALICE, Rename("three"), T0 + 7)
    device = _fork()
    device.apply([three, two])
    assert device.missing() == {one.op_id}
    assert device.verdict(three.op_id).status is OpStatus.PENDING
    assert device.state.name == "Friends"
    assert device.apply([one]).name == "three"
    assert device.missing() == set()


def test_many_branches_merge_over_several_ops() -> None:
    branches = [_fork().next_op(ALICE, Rename(f"n{i}"), T0 + i) for i in range(40)]
    group = GroupLog.replay(BASE.group_id, [*BASE_OPS, *branches])
    assert len(group.heads()) == 40
    group.next_op(BOB, SetHistorySharing(True), T0 + 50)
    assert len(group.heads()) == 40 - 32 + 1
    group.next_op(BOB, SetHistorySharing(False), T0 + 51)
    assert len(group.heads()) == 1


# --------------------------------------------------------------------- join


def test_join_with_a_token() -> None:
    group = _fork()
    token = group.issue_token(ALICE, T0 + 3_600_000)
    join = join_op(EVE, token, T0 + 60_000)
    assert isinstance(join.body, Join) and set(join.parents) == set(token.heads)
    group.next_op(BOB, Rename("meanwhile"), T0 + 5)  # the Join is concurrent with this
    group.add(join)
    assert _status(group, join) is OpStatus.APPLIED
    assert group.state.role(E) is Role.MEMBER and group.state.name == "meanwhile"
    # Eve, now a member, can leave.
    group.next_op(EVE, Leave(), T0 + 70_000)
    assert not group.state.is_member(E)


def test_join_rules() -> None:
    group = _fork()
    with pytest.raises(UsageError, match="only an admin"):
        group.issue_token(CAROL, T0 + 1000)
    cases = [
        (issue_token(ALICE, group.group_id, group.heads(), 9, T0 + 1000), T0 + 2000, "expired"),
        (issue_token(ALICE, group.group_id, group.heads(), 9, T0 + 9, invitee=D), T0, "someone"),
        (issue_token(CAROL, group.group_id, group.heads(), 9, T0 + 9), T0, "not an admin"),
    ]
    for token, now, reason in cases:
        op = sign_op(EVE, group.group_id, Join(token), token.heads, 10, now)
        group.add(op)
        assert _status(group, op) is OpStatus.INVALID and reason in group.verdict(op.op_id).reason
    assert not group.state.is_member(E)
    # A removed member cannot come back by link.
    group.next_op(ALICE, Remove(D), T0 + 5)
    token = group.issue_token(ALICE, T0 + 10_000)
    op = join_op(DAVE, token, T0 + 5)
    group.add(op)
    assert "removed member" in group.verdict(op.op_id).reason


def test_token_dies_with_its_issuers_admin_rights() -> None:
    group = _fork()
    token = group.issue_token(ALICE, T0 + 3_600_000)
    group.next_op(CREATOR, Demote(A), T0 + 5)
    join = join_op(EVE, token, T0 + 6)
    group.add(join)
    assert _status(group, join) is OpStatus.OVERRIDDEN
    assert not group.state.is_member(E)


def test_join_forged_token_is_a_bad_signature() -> None:
    token = BASE.issue_token(ALICE, T0 + 3_600_000)
    forged = dataclasses.replace(token, expires_at_ms=T0 + 9_000_000)
    op = join_op(EVE, forged, T0 + 6)
    assert _fork().add(op) is AddResult.BAD_SIGNATURE


# -------------------------------------------------------------------- codec


BODIES = [
    Invite(E, "Eve 🦊"),
    Join(BASE.issue_token(ALICE, T0 + 1000, invitee=E)),
    Leave(),
    Remove(D),
    Promote(D),
    Demote(A),
    Rename("Name"),
    SetAvatar(b"\xff\xd8\xff" + bytes(100)),
    SetDescription("about\nus"),
    SetAnnouncementsOnly(True),
    SetHistorySharing(False),
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_roundtrip_every_body(body: object) -> None:
    op = sign_op(ALICE, BASE.group_id, body, BASE.heads(), 7, -5)  # type: ignore[arg-type]
    assert decode_op(encode_op(op)) == op
    verify_op(decode_op(encode_op(op)))


def test_roundtrip_create() -> None:
    genesis = BASE_OPS[0]
    assert isinstance(genesis.body, Create)
    assert decode_op(encode_op(genesis)) == genesis


def test_decode_rejects_tampering() -> None:
    data = encode_op(BASE_OPS[1])
    from boxless.wire import group_pb2

    pb = group_pb2.GroupOp()
    pb.ParseFromString(data)
    pb.invite.member = E
    with pytest.raises(DecodeError, match="op_id"):
        decode_op(pb.SerializeToString())
    pb.ClearField("invite")
    with pytest.raises(DecodeError, match="no body"):
        decode_op(pb.SerializeToString())
    pb.version = 2
    with pytest.raises(DecodeError, match="version"):
        decode_op(pb.SerializeToString())
    with pytest.raises(DecodeError, match="limit"):
        decode_op(bytes(70_000))


SAMPLES = [encode_op(op) for op in BASE_OPS[:3]] + [
    encode_op(sign_op(ALICE, BASE.group_id, b, BASE.heads(), 7, 1))  # type: ignore[arg-type]
    for b in BODIES
]


def _check_decoder(data: bytes) -> None:
    try:
        op = decode_op(data)
    except DecodeError:
        return
    assert isinstance(op, GroupOp)


@given(st.binary(max_size=600))
def test_fuzz_decoder_arbitrary_bytes(data: bytes) -> None:
    _check_decoder(data)


@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_decoder_mutations(sample: bytes, data: st.DataObject) -> None:
    raw = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _check_decoder(bytes(raw))
    _check_decoder(bytes(raw[:cut]))


def test_an_op_too_large_to_send_is_refused_and_not_added() -> None:
    group = _fork()
    heads, state = frozenset(group.heads()), group.state
    with pytest.raises(UsageError, match="must fit in 1000"):
        group.next_op(ALICE, SetAvatar(b"\x89PNG" + b"\x00" * 1500), T0 + 5, max_bytes=1000)
    assert frozenset(group.heads()) == heads and group.state == state
    group.next_op(ALICE, SetAvatar(b"\x89PNG" + b"\x00" * 100), T0 + 5, max_bytes=1000)
    assert frozenset(group.heads()) != heads
