"""Group replies, edits, deletes and reactions: the wire bodies, the rules (an
attacker table), and real clients over the in-memory network on virtual time."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat.topics import group_topic
from boxless.client import group_action_store as gas
from boxless.client import group_store as gs
from boxless.client.group_actions import PENDING_PER_GROUP
from boxless.client.groups import NotAMember
from boxless.client.transport import Incoming
from boxless.errors import DecodeError, UsageError
from boxless.groups.auth import (
    MAX_EMOJI_PER_MESSAGE,
    MAX_REACTIONS_PER_MEMBER,
    Action,
    Target,
    authorize,
)
from boxless.groups.membership import GroupState, Member, Role
from tests.memnet_fixtures import Person, befriend, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture

# -- the wire ------------------------------------------------------------------------------

sds_ids = st.text("0123456789abcdef", min_size=1, max_size=128)
emoji = st.sampled_from(["👍", "❤️", "😂", "👨‍👩‍👧", "🏳️‍🌈", "+1"])
action_bodies = st.one_of(
    st.builds(env.GroupEdit, sds_ids, st.text(min_size=1, max_size=100)),
    st.builds(env.GroupDelete, sds_ids),
    st.builds(env.GroupReaction, sds_ids, emoji, st.booleans()),
    st.builds(
        env.Text,
        st.text(min_size=1, max_size=100),
        st.none(),
        st.just(()),
        st.booleans(),
        st.none() | sds_ids,
    ),
)


@given(action_bodies)
@settings(max_examples=200, deadline=None)
def test_group_action_bodies_roundtrip(body: env.Body) -> None:
    msg = env.new_message(body, lamport=1, sent_at_ms=2)
    assert env.decode(env.encode(msg)) == msg


@given(action_bodies, st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_group_action_bodies_decode_or_raise_decode_error(
    body: env.Body, data: st.DataObject
) -> None:
    raw = bytearray(env.encode(env.new_message(body, lamport=1, sent_at_ms=2)))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        env.decode(bytes(raw[: data.draw(st.integers(0, len(raw)))]))
    except DecodeError:
        pass


def test_bad_group_action_fields_are_refused_when_built() -> None:
    with pytest.raises(UsageError, match="emoji"):
        env.GroupReaction("abc", "x" * 33)
    with pytest.raises(UsageError, match="spaces"):
        env.GroupReaction("abc", "a b")
    with pytest.raises(UsageError, match="ASCII"):
        env.GroupDelete("é")
    with pytest.raises(UsageError, match="ASCII"):
        env.GroupEdit("x" * 129, "t")
    with pytest.raises(UsageError, match="ASCII"):
        env.Text("hi", group_reply_to="")


# -- the rules: who may do what -----------------------------------------------------------

OWNER, ADMIN, BOB, CAROL, FORMER, STRANGER = (bytes([i]) * 32 for i in range(1, 7))


def _state(announcements_only: bool = False) -> GroupState:
    op = b"o" * 32
    members = {
        OWNER: Member(Role.ADMIN, op),
        ADMIN: Member(Role.ADMIN, op),
        BOB: Member(Role.MEMBER, op),
        CAROL: Member(Role.MEMBER, op),
    }
    return GroupState(
        group_id=b"g" * 32,
        creator=OWNER,
        name="g",
        description="",
        avatar=b"",
        members=members,
        removed=frozenset({FORMER}),
        announcements_only=announcements_only,
        history_sharing=False,
    )


def bobs(**kw: int | bool) -> Target:
    """A text by Bob."""
    return Target(author=BOB, **kw)  # type: ignore[arg-type]


CASES = [
    # (who, action, target, announcements-only, allowed?)
    (BOB, Action.EDIT, bobs(), False, True),
    (CAROL, Action.EDIT, bobs(), False, False),  # not the author
    (OWNER, Action.EDIT, bobs(), False, False),  # admins do not edit others' texts
    (BOB, Action.EDIT, Target(author=BOB, deleted=True), False, False),  # no resurrection
    (BOB, Action.EDIT, Target(author=BOB, in_group=False), False, False),  # another group's
    (BOB, Action.EDIT, Target(author=BOB, is_text=False), False, False),  # an event line
    (BOB, Action.EDIT, bobs(), True, False),  # announcements only: admins post
    (FORMER, Action.EDIT, Target(author=FORMER), False, False),  # removed: refused
    (STRANGER, Action.EDIT, Target(author=STRANGER), False, False),
    (BOB, Action.DELETE, bobs(), False, True),
    (BOB, Action.DELETE, bobs(), True, True),  # withdrawing is not posting
    (CAROL, Action.DELETE, bobs(), False, False),  # a member: only their own
    (ADMIN, Action.DELETE, bobs(), False, True),  # an admin: for everyone
    (OWNER, Action.DELETE, bobs(), False, True),
    (ADMIN, Action.DELETE, Target(author=BOB, in_group=False), False, False),
    (FORMER, Action.DELETE, Target(author=FORMER), False, False),
    (STRANGER, Action.DELETE, bobs(), False, False),
    (CAROL, Action.REACT, bobs(adds_reaction=True, new_emoji=True), False, True),
    (CAROL, Action.REACT, bobs(adds_reaction=True), True, True),
    (CAROL, Action.REACT, Target(author=BOB, deleted=True, adds_reaction=True), False, False),
    (CAROL, Action.REACT, Target(author=BOB, in_group=False), False, False),
    (
        CAROL,
        Action.REACT,
        bobs(adds_reaction=True, member_reactions=MAX_REACTIONS_PER_MEMBER),
        False,
        False,
    ),
    (
        CAROL,
        Action.REACT,
        bobs(adds_reaction=True, new_emoji=True, emoji_count=MAX_EMOJI_PER_MESSAGE),
        False,
        False,
    ),
    (  # an emoji the message carries already does not grow the set
        CAROL,
        Action.REACT,
        bobs(adds_reaction=True, emoji_count=MAX_EMOJI_PER_MESSAGE),
        False,
        True,
    ),
    (  # taking one back is always allowed
        CAROL,
        Action.REACT,
        bobs(member_reactions=MAX_REACTIONS_PER_MEMBER),
        False,
        True,
    ),
    (FORMER, Action.REACT, bobs(adds_reaction=True), False, False),
    (STRANGER, Action.REACT, bobs(adds_reaction=True), False, False),
    # a target not seen yet: only membership (and the role) now; kept pending
    (CAROL, Action.DELETE, Target(known=False), False, True),
    (FORMER, Action.DELETE, Target(known=False), False, False),
]


@pytest.mark.parametrize(("who", "action", "target", "announce", "allowed"), CASES)
def test_who_may_edit_delete_and_react(
    who: bytes, action: Action, target: Target, announce: bool, allowed: bool
) -> None:
    refused = authorize(_state(announce), who, action, target)
    assert (refused is None) == allowed, refused


def test_nobody_acts_in_a_group_we_are_not_in() -> None:
    assert authorize(None, BOB, Action.REACT, bobs()) == "not a group we are in"


# -- real clients --------------------------------------------------------------------------


def rows(p: Person, gid: bytes) -> dict[str, gs.GroupMessageRow]:
    return {m.message_id: m for _, m in p.client.groups.messages(gid, 10_000)}


def row(p: Person, gid: bytes, mid: str) -> gs.GroupMessageRow | None:
    return rows(p, gid).get(mid)


async def make_group(admin: Person, others: list[Person], name: str = "Actions") -> bytes:
    for p in others:
        await befriend(admin, p)
    gid = (await admin.client.groups.create(name)).group_id
    for p in others:
        await admin.client.groups.invite(gid, p.me)
        await trio.sleep(0.001)
    everyone = {admin.me} | {p.me for p in others}

    def joined(p: Person) -> bool:
        try:
            return set(p.client.groups.state(gid).members) == everyone
        except NotAMember:
            return False

    for p in others:
        await wait_for(p, lambda p=p: joined(p))  # type: ignore[misc]
    return gid


async def forge(p: Person, gid: bytes, body: env.Body, *, as_member: bool = True) -> None:
    """Publish ``body`` on the group topic as a modified client would: past the
    local checks of :meth:`GroupManager.edit` and friends (the receivers decide)."""
    await p.client.groups._publish(gid, body, as_member=as_member)  # type: ignore[arg-type]


def reactions(m: gs.GroupMessageRow | None) -> set[tuple[bytes, str]]:
    return set(m.reactions) if m is not None else set()


async def test_reply_react_edit_delete_seen_by_three_and_attackers_refused(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol])
        everyone = (alice, bob, carol)
        g = {p.name: p.client.groups for p in everyone}
        hello = (await g["bob"].send_text(gid, "hello from Bob")).message_id
        for p in everyone:
            await wait_for(p, lambda p=p: row(p, gid, hello) is not None)  # type: ignore[misc]
        # own messages never count as unread
        assert g["bob"].summary(gid).unread == 0
        assert g["alice"].summary(gid).unread == 1

        # a reply, reactions from two members, an edit by the author
        answer = (await g["carol"].send_text(gid, "hi Bob", reply_to=hello)).message_id
        await g["alice"].react(gid, hello, "👍")
        await g["carol"].react(gid, hello, "👍")
        await g["carol"].react(gid, hello, "❤️")
        await g["carol"].react(gid, hello, "❤️", remove=True)
        await g["bob"].edit(gid, hello, "hello from Bob (edited)")
        want = {(alice.me, "👍"), (carol.me, "👍")}
        for p in everyone:
            await wait_for(
                p,
                lambda p=p: (
                    (m := row(p, gid, hello)) is not None
                    and m.edited
                    and reactions(m) == want
                    and row(p, gid, answer) is not None
                ),  # type: ignore[misc]
            )
            m, r = row(p, gid, hello), row(p, gid, answer)
            assert m is not None and r is not None
            assert m.text == "hello from Bob (edited)" and r.reply_to == hello

        # the local rules say no before anything is published
        with pytest.raises(UsageError, match="author"):
            await g["carol"].edit(gid, hello, "Carol rewrites Bob")
        with pytest.raises(UsageError, match="author or an admin"):
            await g["carol"].delete(gid, hello)
        with pytest.raises(UsageError, match="no such message"):
            await g["bob"].react(gid, "f" * 64, "👍")

        # a modified client: Carol edits and deletes Bob's text, reacts 1 + 6 times
        await forge(carol, gid, env.GroupEdit(hello, "Carol rewrites Bob"))
        await forge(carol, gid, env.GroupDelete(hello))
        spam = ["😂", "🎉", "🔥", "👀", "🙏", "💯"]
        for e in spam:
            await forge(carol, gid, env.GroupReaction(hello, e))
        marker = (await g["carol"].send_text(gid, "after the forgeries")).message_id
        for p in (alice, bob):
            await wait_for(p, lambda p=p: row(p, gid, marker) is not None)  # type: ignore[misc]
            m = row(p, gid, hello)
            assert m is not None and m.text == "hello from Bob (edited)" and not m.deleted
            carols = [e for k, e in m.reactions if k == carol.me]
            assert len(carols) == MAX_REACTIONS_PER_MEMBER  # 👍 + four of the six

        # an admin deletes Carol's text for everyone; an edit after it does not resurrect
        await g["alice"].delete(gid, answer)
        await forge(carol, gid, env.GroupEdit(answer, "back from the dead"))
        marker = (await g["carol"].send_text(gid, "after the delete")).message_id
        for p in everyone:
            await wait_for(
                p,
                lambda p=p: (
                    row(p, gid, marker) is not None
                    and (r := row(p, gid, answer)) is not None
                    and r.deleted
                ),  # type: ignore[misc]
            )
            r = row(p, gid, answer)
            assert r is not None and r.text == "" and not r.edited
        with pytest.raises(UsageError, match="deleted"):
            await g["carol"].react(gid, answer, "👍")

        # a removed member's later actions are refused
        await g["alice"].remove(gid, carol.me)
        for p in (bob, carol):
            await wait_for(p, lambda p=p: carol.me not in p.client.groups.state(gid).members)  # type: ignore[misc]
        with pytest.raises(NotAMember):
            await g["carol"].react(gid, hello, "🎉")
        await forge(carol, gid, env.GroupDelete(marker), as_member=False)
        await forge(carol, gid, env.GroupReaction(hello, "🥷"), as_member=False)
        last = (await g["bob"].send_text(gid, "after Carol left")).message_id
        await wait_for(alice, lambda: row(alice, gid, last) is not None)
        await trio.sleep(60)
        for p in (alice, bob):
            m, gone = row(p, gid, hello), row(p, gid, marker)
            assert m is not None and gone is not None and not gone.deleted
            assert "🥷" not in {e for _, e in m.reactions}


async def test_replies_across_groups_and_actions_before_their_target(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        first = await make_group(alice, [bob], "First")
        second = (await alice.client.groups.create("Second")).group_id
        await alice.client.groups.invite(second, bob.me)
        await wait_for(bob, lambda: second in {s.group_id for s in bob.client.groups.groups()})
        elsewhere = (await alice.client.groups.send_text(first, "in the first")).message_id
        await wait_for(bob, lambda: row(bob, first, elsewhere) is not None)
        # Bob answers without marking anything read: what he answered is read, and
        # Alice learns it (a read marker goes with the text)
        assert bob.client.groups.summary(first).unread == 1
        await bob.client.groups.send_text(first, "ok")
        assert bob.client.groups.summary(first).unread == 0
        await wait_for(
            alice, lambda: (m := row(alice, first, elsewhere)) is not None and m.read_count == 1
        )

        # a reply naming another group's message: refused here, ignored there
        with pytest.raises(UsageError, match="reply_to"):
            await alice.client.groups.send_text(second, "re", reply_to=elsewhere)
        forged = env.Text("re", None, (), False, elsewhere)
        await forge(alice, second, forged)
        await wait_for(bob, lambda: any(m.text == "re" for m in rows(bob, second).values()))
        [re] = [m for m in rows(bob, second).values() if m.text == "re"]
        assert re.reply_to is None
        # ... and one whose target arrives later, in another group, quotes nothing
        later, quoting = "c" * 64, "d" * 64
        with bob.client.db.transaction() as cur:
            text = gs.GroupMessageRow(quoting, second, alice.me, False, 50, 1, 1, "q", "received")
            assert gs.add_message(cur, text)
            bob.client.groups.actions.text_added(
                cur, second, quoting, env.Text("q", None, (), False, later)
            )
        assert (q := row(bob, second, quoting)) is not None and q.reply_to == later
        with bob.client.db.transaction() as cur:
            other = gs.GroupMessageRow(later, first, alice.me, False, 51, 1, 1, "x", "received")
            assert gs.add_message(cur, other)
        assert (q := row(bob, second, quoting)) is not None and q.reply_to is None

        # actions whose target this device has not seen wait, bounded, and are
        # judged on the target when it comes (with the role at delivery)
        groups = bob.client.groups
        state = groups.state(second)
        unseen = "a" * 64
        with bob.client.db.transaction() as cur:
            for body in (
                env.GroupEdit(unseen, "edited by Alice before Bob saw it"),
                env.GroupReaction(unseen, "👍"),
            ):
                content = env.encode(env.new_message(body, lamport=0, sent_at_ms=1))
                assert groups.actions.receive(cur, second, state, alice.me, content, body) is None
            assert gas.pending_counts(cur, second) == (2, 2)
            # Bob (not an admin) deleting Alice's unseen text is kept, then refused
            bogus = env.GroupDelete(unseen)
            content = env.encode(env.new_message(bogus, lamport=0, sent_at_ms=1))
            assert groups.actions.receive(cur, second, state, bob.me, content, bogus) is None
            text = gs.GroupMessageRow(unseen, second, alice.me, False, 9, 1, 1, "orig", "received")
            assert gs.add_message(cur, text)
            groups.actions.text_added(cur, second, unseen, env.Text("orig"))
            assert gas.pending_counts(cur, second) == (0, 0)
        m = row(bob, second, unseen)
        assert m is not None and m.text == "edited by Alice before Bob saw it" and m.edited
        assert not m.deleted and m.reactions == ((alice.me, "👍"),)

        # a member flooding actions for messages nobody has: the table stops growing
        with bob.client.db.transaction() as cur:
            refused = None
            for i in range(PENDING_PER_GROUP + 5):
                body = env.GroupReaction(f"{i:064x}", "👍")
                content = env.encode(env.new_message(body, lamport=0, sent_at_ms=1))
                refused = groups.actions.receive(cur, second, state, alice.me, content, body)
            assert refused is not None and "too many" in refused
            assert gas.pending_counts(cur, second)[0] == PENDING_PER_GROUP
            # rows expire: the next action past their age makes room without a timer
            kept = gas.add_pending(
                cur,
                second,
                "b" * 64,
                gas.PendingAction(alice.me, False, b"x", 10**15),
                per_group=PENDING_PER_GROUP,
                in_all=10 * PENDING_PER_GROUP,
                expire_before_ms=10**15,
            )
            assert kept and gas.pending_counts(cur, second) == (1, 1)

        # our own message handed back by the network before its hash was marked
        # seen: recognised, it waits for no key (we hold none to our own sessions)
        await alice.client.groups.send_text(first, "echo")
        for i, item in enumerate(net.stored(group_topic(first))):  # ours and Bob's
            await alice.client.groups.handle(Incoming(item.message, bytes([i]) * 32))
        with alice.client.db.transaction() as cur:
            assert gs.pending_counts(cur, first) == (0, 0)


keys = st.sampled_from([OWNER, ADMIN, BOB, CAROL, FORMER, STRANGER])
targets = st.builds(
    Target,
    known=st.booleans(),
    author=st.none() | keys,
    in_group=st.booleans(),
    is_text=st.booleans(),
    deleted=st.booleans(),
    adds_reaction=st.booleans(),
    new_emoji=st.booleans(),
    emoji_count=st.integers(0, 2 * MAX_EMOJI_PER_MESSAGE),
    member_reactions=st.integers(0, 2 * MAX_REACTIONS_PER_MEMBER),
)


@given(keys, st.sampled_from([Action.EDIT, Action.DELETE, Action.REACT]), targets, st.booleans())
@settings(max_examples=300, deadline=None)
def test_the_rules_hold_for_any_target(
    who: bytes, action: Action, t: Target, announce: bool
) -> None:
    state = _state(announce)
    allowed = authorize(state, who, action, t) is None
    if not state.is_member(who):
        assert not allowed  # strangers and former members never act
    if not allowed or not t.known:
        return
    assert t.in_group and t.is_text  # never on another group's message or an event line
    if action is Action.EDIT:
        assert t.author == who and not t.deleted  # the author only, never resurrects
    elif action is Action.DELETE:
        assert t.author == who or state.is_admin(who)
    elif t.adds_reaction:
        assert not t.deleted and t.member_reactions < MAX_REACTIONS_PER_MEMBER
        assert not t.new_emoji or t.emoji_count < MAX_EMOJI_PER_MESSAGE
