"""GroupLog.admit: ops from the network are judged before they enter the log.

The attack (issue 10, finding 1, "join poisoning"): a stranger sends the admin a
Join built on the group's genesis with a token it signed itself (or a member
"rejoins" with a real link). The old admin added it to its log before judging
it; the refused Join stayed a head, unsaved and unannounced; the admin's next
op (a Remove) named it as parent, and every other member held that Remove
pending forever -- keeping the removed member in the key shares.
"""

from __future__ import annotations

import dataclasses

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from boxless.groups import (
    Demote,
    GroupLog,
    Invite,
    OpStatus,
    Promote,
    Remove,
    Rename,
    create_op,
    issue_token,
    join_op,
    sign_op,
)
from boxless.identity.keys import Identity

ADMIN, BOB, CAROL, MALLORY = (Identity.from_private_bytes(bytes([i + 40]) * 32) for i in range(4))
T0 = 1_800_000_000_000


def _group() -> tuple[GroupLog, GroupLog]:
    """The admin's log and Bob's: admin, Bob and Carol are members."""
    genesis = create_op(ADMIN, "Club", T0)
    admin = GroupLog.replay(genesis.op_id, [genesis])
    admin.next_op(ADMIN, Invite(BOB.public_key, "bob"), T0 + 1)
    admin.next_op(ADMIN, Invite(CAROL.public_key, "carol"), T0 + 2)
    return admin, GroupLog.replay(admin.group_id, admin.ops())


def _self_issued_join(admin: GroupLog) -> object:
    gid = admin.group_id
    token = issue_token(MALLORY, gid, [gid], 0, T0 + 10**9)
    return join_op(MALLORY, token, T0 + 5)


def _rejoin(admin: GroupLog) -> object:
    token = admin.issue_token(ADMIN, T0 + 10**9)
    return join_op(BOB, token, T0 + 5)  # Bob is a member already: valid, but a no-op


def test_a_refused_join_never_becomes_a_parent_and_the_removal_reaches_everyone() -> None:
    for forge in (_self_issued_join, _rejoin):
        admin, bob = _group()
        join = forge(admin)
        verdict = admin.admit(join, only_applied=True)  # type: ignore[arg-type]
        assert verdict.status is not OpStatus.APPLIED
        assert join.op_id not in admin  # type: ignore[attr-defined]
        remove = admin.next_op(ADMIN, Remove(CAROL.public_key), T0 + 6)
        assert join.op_id not in remove.parents  # type: ignore[attr-defined]
        assert bob.admit(remove).status is OpStatus.APPLIED
        assert not bob.state.is_member(CAROL.public_key)
        assert bob.missing() == set() and bob.pending() == []


def test_invalid_ops_and_bad_signatures_are_not_kept() -> None:
    admin, bob = _group()
    forged = sign_op(CAROL, admin.group_id, Remove(BOB.public_key), list(admin.heads()), 9, T0)
    assert bob.admit(forged).status is OpStatus.INVALID  # Carol is no admin
    assert forged.op_id not in bob
    rename = sign_op(ADMIN, admin.group_id, Remove(CAROL.public_key), list(bob.heads()), 9, T0)
    tampered = dataclasses.replace(rename, signature=bytes(64))
    assert bob.admit(tampered).reason == "bad signature"
    assert tampered.op_id not in bob
    # An op built on a refused one is refused too (it could never be placed).
    child = sign_op(CAROL, admin.group_id, Invite(MALLORY.public_key), [forged.op_id], 10, T0)
    assert bob.admit(child).status is OpStatus.INVALID
    assert bob.missing() == set()


def test_a_pending_op_is_judged_when_its_parents_arrive() -> None:
    admin, bob = _group()
    remove = admin.next_op(ADMIN, Remove(CAROL.public_key), T0 + 6)
    late = sign_op(CAROL, admin.group_id, Invite(MALLORY.public_key), [remove.op_id], 20, T0 + 7)
    assert bob.admit(late).status is OpStatus.PENDING
    assert bob.missing() == {remove.op_id}
    assert bob.admit(remove).status is OpStatus.APPLIED
    assert late.op_id not in bob.heads() and not bob.state.is_member(MALLORY.public_key)


def test_next_op_skips_an_invalid_head_from_an_old_log() -> None:
    """A log replayed from an older version may hold an invalid head: not a parent."""
    admin, _ = _group()
    bad = sign_op(MALLORY, admin.group_id, Remove(BOB.public_key), list(admin.heads()), 9, T0)
    admin.add(bad)
    assert bad.op_id in admin.heads()
    op = admin.next_op(ADMIN, Remove(CAROL.public_key), T0 + 8)
    assert bad.op_id not in op.parents
    fresh = GroupLog.replay(admin.group_id, [o for o in admin.ops() if o != bad])
    assert fresh.admit(op).status is OpStatus.APPLIED


def test_a_join_on_unknown_heads_is_not_kept_by_the_admin() -> None:
    """A Join whose token names heads the admin never saw cannot be judged: refused
    and not kept pending (it would wait forever in the admin's log)."""
    admin, _ = _group()
    token = issue_token(MALLORY, admin.group_id, [bytes(32)], 0, T0 + 10**9)
    join = join_op(MALLORY, token, T0 + 5)
    assert admin.admit(join, only_applied=True).status is OpStatus.PENDING
    assert join.op_id not in admin and admin.pending() == []


PEOPLE = (ADMIN, BOB, CAROL, MALLORY)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 3), st.booleans()),
        max_size=12,
    )
)
def test_whatever_peers_send_the_admins_next_op_is_placeable_by_any_member(
    steps: list[tuple[int, int, int, bool]],
) -> None:
    """Property: admit ops of any author, kind and target (valid or not, on the heads or
    on the genesis), then the admin's next op plus what it sends along is placed by a
    member who has only the ops the admin kept: the admin never builds on anything
    another member could not get."""
    admin, _ = _group()
    genesis = admin.group_id
    for author, kind, target, on_genesis in steps:
        who, whom = PEOPLE[author], PEOPLE[target].public_key
        parents = [genesis] if on_genesis else sorted(admin.heads())
        lamport = 1 + len(admin)
        if kind == 0:
            token = issue_token(who, genesis, [genesis], 0, T0 + 10**9)
            op = join_op(who, token, T0 + lamport)
        else:
            body = (Invite(whom), Remove(whom), Promote(whom), Demote(whom), Rename("x"))[kind - 1]
            op = sign_op(who, genesis, body, parents, lamport, T0 + lamport)
        admin.admit(op, only_applied=kind == 0)
    assume(admin.state.is_admin(ADMIN.public_key))  # it may have demoted itself: no next op
    op = admin.next_op(ADMIN, Rename("after"), T0 + 100)
    member = GroupLog.replay(genesis, [o for o in admin.ops() if o.op_id in admin and o != op])
    assert member.admit(op).status is not OpStatus.PENDING
    assert all(admin.verdict(p).status is not OpStatus.INVALID for p in op.parents)
