"""Group membership: the op DAG folded into one state, identically on every device.

Theory of operation
-------------------
A :class:`GroupLog` holds a group's signed ops (:mod:`boxless.groups.ops`),
deduplicated by op id (a hash of the op, so one id is one op). An op whose
parents are not all here yet is *pending* (:meth:`GroupLog.missing` names
the ids to fetch); the others are *ready*. The state is a pure function of
the set of ready ops -- never of the order they arrived in -- so every device
holding the same ops computes the same :class:`GroupState`. That is how an
offline member catches up: fetch ops from the store (or members) in any
order, :meth:`GroupLog.apply` them, fetch what :meth:`GroupLog.missing` still
names, repeat.

The fold has three steps.

1. **Total order.** Ops are applied by ``(effective lamport, op_id)``. The
   effective lamport is ``max(lamport, 1 + every parent's effective lamport)``;
   for honest ops it is the lamport itself, and it makes the order a
   topological one (parents first) even if a peer lies about its clock.

2. **Causal validity.** Each op is judged against the state of its own
   causal past -- the fold of its ancestors only -- not against whatever a
   device happened to have applied. Hence a rule holds or fails for an op
   the same way everywhere. The rules (:func:`_authorize`):

   ==================  ======================================================
   Create              the genesis (its id is the group id); author = creator,
                       the first admin
   Join                author is not a member and was not removed; the token
                       is for this group (and for the author, if it names
                       one), signed by someone who was an admin, and not
                       expired at the Join's ``created_at_ms``
   Leave               author is a member (the creator may leave too)
   anything else       author is an admin
   Remove(m)           m is a member, not the author, not the creator
   Promote/Demote(m)   m is a member; only the creator demotes the creator
   ==================  ======================================================

   An op failing its rule is **invalid**: ignored and reported
   (:meth:`GroupLog.verdict`). So a removed member's later ops (whose past
   holds the removal) are invalid, and so is anything by a non-member.
   Inviting an existing member (or promoting an admin, ...) is valid but a
   **no-op**.

3. **Concurrent revocations win.** Two ops are concurrent when neither is
   an ancestor of the other. A *revocation* of X is a valid Remove(X)
   (strength 2), Leave by X (strength 2, leaving is removing oneself) or
   Demote(X) (strength 1). An op is **overridden** (valid, but not applied):

   - a Remove or Demote by X, if a concurrent revocation r of X exists --
     unless it strikes back at r's author with at least r's strength. So of
     "B removes A" and a concurrent "A demotes B", the removal wins (A goes,
     B stays admin); two admins removing (or demoting) each other concurrently
     both lose; and a removed admin cannot escape or take others down by
     back-dating ops to look concurrent with its removal (except the one
     strike-back against its remover);
   - any other op by X (Invite, Promote, Rename, settings, ...), if a
     concurrent revocation of X survived the previous rule; a Join also if
     its token's issuer was so revoked (an admin's removal or demotion
     revokes the links it issued, since a Join's past is the token's heads);
   - an Invite(m) or Join by m, if a concurrent Remove(m) survived (remove
     wins over a concurrent re-add); a Promote(m), if any concurrent
     revocation of m survived.

   Leave is never overridden here. The creator can only be revoked by itself, so
   the creator's ops are never overridden by others.

4. **Apply in total order.** The remaining ops are applied in the order of
   step 1. Overriding cascades here: when an op comes up, its author (for a
   Join, the token's issuer) must still hold the right it needs in the state
   built so far, unless a concurrent revocation that survived step 3 explains
   the loss (those conflicts were already judged there). So if X's invite or
   promotion of Y was overridden, Y's ops that relied on it are overridden
   too -- a removed admin cannot escape by back-dating the promotion of an
   accomplice. An op whose target no longer fits (promoting someone
   concurrently removed) changes nothing. Concurrent renames and setting
   changes: the later in the total order wins.

Cost. The state of an op's causal past is its single parent's post-state
(cached) or, after a merge, a fold of its ancestors; ancestor sets are
bitmasks over the ready ops. A log whose ops form a chain costs O(members)
per op; merges cost a fold each.

Trust. Whoever holds a valid admin token can join; its expiry is checked
against the joiner's own claimed time (no clock is shared), so an admin's
device should also check it with a real clock before relaying a Join
(:func:`boxless.groups.invites.check_token_fresh`).
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from boxless.errors import UsageError
from boxless.groups.ops import (
    MAX_PARENTS,
    MAX_TOKEN_HEADS,
    Body,
    Create,
    Demote,
    GroupOp,
    InvalidOpSignature,
    Invite,
    InviteToken,
    Join,
    Leave,
    Promote,
    Remove,
    Rename,
    SetAnnouncementsOnly,
    SetAvatar,
    SetDescription,
    SetHistorySharing,
    encode_op,
    issue_token,
    sign_op,
    verify_op,
)
from boxless.identity.keys import Identity

__all__ = [
    "AddResult",
    "GroupLog",
    "GroupState",
    "Member",
    "OpStatus",
    "Role",
    "Verdict",
]

log = logging.getLogger(__name__)

_POST_CACHE: Final = 256
_MAX_PENDING: Final = 10_000
_MAX_REFUSED: Final = 10_000


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Member:
    role: Role
    joined_at_op: bytes
    name: str = ""  # the inviter's label for them ("" after a Join)


@dataclass(frozen=True, slots=True)
class GroupState:
    """The group as the ops say it is. ``members`` is read-only."""

    group_id: bytes
    creator: bytes | None
    name: str
    description: str
    avatar: bytes
    members: Mapping[bytes, Member]
    removed: frozenset[bytes]
    announcements_only: bool
    history_sharing: bool

    def role(self, key: bytes) -> Role | None:
        member = self.members.get(key)
        return None if member is None else member.role

    def is_member(self, key: bytes) -> bool:
        return key in self.members

    def is_admin(self, key: bytes) -> bool:
        return self.role(key) is Role.ADMIN

    @property
    def admins(self) -> frozenset[bytes]:
        return frozenset(k for k, m in self.members.items() if m.role is Role.ADMIN)

    def __repr__(self) -> str:
        return (
            f"GroupState(id={self.group_id.hex()[:8]}, members={len(self.members)}, "
            f"admins={len(self.admins)}, removed={len(self.removed)})"
        )


class OpStatus(enum.Enum):
    APPLIED = "applied"
    NO_OP = "no-op"  # valid, but changed nothing (invite of a member, ...)
    INVALID = "invalid"  # breaks a rule at its causal point
    OVERRIDDEN = "overridden"  # valid, but a concurrent revocation won
    PENDING = "pending"  # some ancestor has not arrived


@dataclass(frozen=True, slots=True)
class Verdict:
    status: OpStatus
    reason: str = ""


class AddResult(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    BAD_SIGNATURE = "bad signature"
    WRONG_GROUP = "wrong group"
    TOO_MANY_PENDING = "too many pending"


# ------------------------------------------------------------ working state


class _State:
    """The mutable state a fold works on (frozen into a GroupState at the end)."""

    __slots__ = (
        "announcements_only",
        "avatar",
        "creator",
        "description",
        "history_sharing",
        "members",
        "name",
        "removed",
    )

    def __init__(self) -> None:
        self.creator: bytes | None = None
        self.name = ""
        self.description = ""
        self.avatar = b""
        self.members: dict[bytes, Member] = {}
        self.removed: set[bytes] = set()
        self.announcements_only = False
        self.history_sharing = False

    def copy(self) -> _State:
        new = _State()
        new.creator = self.creator
        new.name, new.description, new.avatar = self.name, self.description, self.avatar
        new.members = dict(self.members)
        new.removed = set(self.removed)
        new.announcements_only = self.announcements_only
        new.history_sharing = self.history_sharing
        return new

    def role(self, key: bytes) -> Role | None:
        member = self.members.get(key)
        return None if member is None else member.role

    def freeze(self, group_id: bytes) -> GroupState:
        return GroupState(
            group_id=group_id,
            creator=self.creator,
            name=self.name,
            description=self.description,
            avatar=self.avatar,
            members=MappingProxyType(dict(self.members)),
            removed=frozenset(self.removed),
            announcements_only=self.announcements_only,
            history_sharing=self.history_sharing,
        )

    def _set_role(self, key: bytes, role: Role) -> bool:
        member = self.members.get(key)
        if member is None or member.role is role:
            return False
        self.members[key] = Member(role, member.joined_at_op, member.name)
        return True

    def apply(self, op: GroupOp) -> bool:
        """Apply a valid, non-overridden op; True if the state changed."""
        body = op.body
        match body:
            case Create():
                self.creator = op.author
                self.name, self.description, self.avatar = body.name, body.description, body.avatar
                self.members[op.author] = Member(Role.ADMIN, op.op_id)
                return True
            case Invite() | Join():
                key = body.member if isinstance(body, Invite) else op.author
                if key in self.members:
                    return False
                name = body.name if isinstance(body, Invite) else ""
                self.members[key] = Member(Role.MEMBER, op.op_id, name)
                self.removed.discard(key)
                return True
            case Leave():
                return self.members.pop(op.author, None) is not None
            case Remove():
                changed = body.member in self.members or body.member not in self.removed
                self.members.pop(body.member, None)
                self.removed.add(body.member)
                return changed
            case Promote():
                return self._set_role(body.member, Role.ADMIN)
            case Demote():
                return self._set_role(body.member, Role.MEMBER)
            case Rename():
                changed, self.name = self.name != body.name, body.name
                return changed
            case SetAvatar():
                changed, self.avatar = self.avatar != body.avatar, body.avatar
                return changed
            case SetDescription():
                changed, self.description = self.description != body.description, body.description
                return changed
            case SetAnnouncementsOnly():
                changed, self.announcements_only = self.announcements_only != body.on, body.on
                return changed
            case SetHistorySharing():
                changed, self.history_sharing = self.history_sharing != body.on, body.on
                return changed


# --------------------------------------------------------------- the rules


def _authorize_join(state: _State, op: GroupOp, token: InviteToken) -> str | None:
    if op.author in state.members:
        return None  # already a member: a no-op
    if op.author in state.removed:
        return "a removed member needs an admin's Invite to come back"
    if token.group_id != op.group_id:
        return "the invite token is for another group"
    if token.invitee is not None and token.invitee != op.author:
        return "the invite token is for someone else"
    if op.created_at_ms > token.expires_at_ms:
        return "the invite token had expired"
    if state.role(token.issuer) is not Role.ADMIN:
        return "the invite token's issuer was not an admin"
    return None


def _authorize(state: _State, op: GroupOp) -> str | None:
    """Why ``op`` breaks a rule in ``state`` (the state of its causal past), or None."""
    body = op.body
    if isinstance(body, Create):
        return None
    if isinstance(body, Join):
        return _authorize_join(state, op, body.token)
    role = state.role(op.author)
    if role is None:
        return "the author was not a member"
    if isinstance(body, Leave):
        return None
    if role is not Role.ADMIN:
        return f"only admins may {type(body).__name__}"
    if isinstance(body, Remove | Promote | Demote):
        target = body.member
        if target not in state.members:
            return f"the {type(body).__name__} target was not a member"
        if isinstance(body, Remove) and target == op.author:
            return "admins leave with Leave, not by removing themselves"
        if isinstance(body, Remove) and target == state.creator:
            return "the creator cannot be removed"
        if isinstance(body, Demote) and target == state.creator and op.author != target:
            return "only the creator can demote the creator"
    return None


def _revocation(op: GroupOp) -> tuple[bytes, int] | None:
    """(target, strength) if ``op`` revokes someone's rights: Remove/Leave 2, Demote 1."""
    match op.body:
        case Remove():
            return op.body.member, 2
        case Leave():
            return op.author, 2
        case Demote():
            return op.body.member, 1
        case _:
            return None


# --------------------------------------------------------------------- log


@dataclass(slots=True)
class _Node:
    """A ready op: its position, ancestors (bitmask of positions) and causal verdict."""

    op: GroupOp
    index: int
    ancestors: int
    lamport: int  # effective: > every parent's
    invalid: str | None  # why it breaks a rule at its causal point
    revokes: tuple[bytes, int] | None

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.lamport, self.op.op_id)

    def concurrent(self, other: _Node) -> bool:
        return (
            self is not other
            and not (self.ancestors >> other.index) & 1
            and not (other.ancestors >> self.index) & 1
        )


def _overridden(node: _Node, revs: Mapping[bytes, list[_Node]]) -> str | None:
    """Step-3 rule for anything but Remove/Demote/Leave/Create, given the surviving revocations."""
    op = node.op

    def revoked(key: bytes, removals_only: bool = False) -> bool:
        return any(
            node.concurrent(r) and not (removals_only and not isinstance(r.op.body, Remove))
            for r in revs.get(key, ())
        )

    if revoked(op.author):
        return "its author was concurrently removed or demoted"
    body = op.body
    if isinstance(body, Join) and revoked(body.token.issuer):
        return "the invite token's issuer was concurrently removed or demoted"
    if isinstance(body, Invite | Join):
        target = body.member if isinstance(body, Invite) else op.author
        if revoked(target, removals_only=True):
            return "the member was concurrently removed"
    if isinstance(body, Promote) and revoked(body.member):
        return "the member was concurrently removed or demoted"
    return None


def _rights_lost(state: _State, node: _Node, surviving: Mapping[bytes, list[_Node]]) -> str | None:
    """Step 4: why ``node``'s author (or a Join's issuer) lacks, in ``state``, the right
    it had in its causal past -- if no surviving concurrent revocation explains it."""
    op, body = node.op, node.op.body
    if isinstance(body, Create):
        return None
    if isinstance(body, Join):
        if op.author in state.members:
            return None  # a no-op
        key, role, who = body.token.issuer, Role.ADMIN, "the invite token's issuer"
    elif isinstance(body, Leave):
        key, role, who = op.author, None, "its author"
    else:
        key, role, who = op.author, Role.ADMIN, "its author"
    held = state.role(key)
    if held is not None and (role is None or held is role):
        return None
    if any(node.concurrent(r) for r in surviving.get(key, ())):
        return None
    return f"{who} got its rights from an overridden op"


def _fold(nodes: list[_Node], verdicts: dict[bytes, Verdict] | None) -> _State:
    """The state of a downward-closed set of ready ops (steps 1-3 of the module doc)."""
    nodes = sorted(nodes, key=lambda n: n.key)
    revs: dict[bytes, list[_Node]] = {}
    for n in nodes:
        if n.invalid is None and n.revokes is not None:
            revs.setdefault(n.revokes[0], []).append(n)
    overridden: dict[int, str] = {}
    surviving: dict[bytes, list[_Node]] = {}
    if revs:
        for n in nodes:
            if n.invalid is None and isinstance(n.op.body, Remove | Demote):
                assert n.revokes is not None
                target, strength = n.revokes
                for r in revs.get(n.op.author, ()):
                    assert r.revokes is not None
                    strikes_back = target == r.op.author and strength >= r.revokes[1]
                    if n.concurrent(r) and not strikes_back:
                        overridden[n.index] = "a concurrent revocation of its author won"
                        break
        surviving = {
            key: [r for r in lst if r.index not in overridden] for key, lst in revs.items()
        }
        for n in nodes:
            if n.invalid is None and not isinstance(n.op.body, Remove | Demote | Leave | Create):
                reason = _overridden(n, surviving)
                if reason is not None:
                    overridden[n.index] = reason
    state = _State()
    for n in nodes:
        if n.invalid is not None:
            verdict = Verdict(OpStatus.INVALID, n.invalid)
        elif n.index in overridden:
            verdict = Verdict(OpStatus.OVERRIDDEN, overridden[n.index])
        elif (reason := _rights_lost(state, n, surviving)) is not None:
            verdict = Verdict(OpStatus.OVERRIDDEN, reason)
        elif state.apply(n.op):
            verdict = Verdict(OpStatus.APPLIED)
        else:
            verdict = Verdict(OpStatus.NO_OP)
        if verdicts is not None:
            verdicts[n.op.op_id] = verdict
    return state


class GroupLog:
    """One group's op DAG and the state it folds to (see the module docstring).

    Sans-IO: feed it ops (:meth:`add`, :meth:`apply`), ask for :attr:`state`,
    :meth:`missing` parents to fetch, and :meth:`heads` to build the next op on.
    """

    def __init__(self, group_id: bytes) -> None:
        self.group_id = group_id
        self._nodes: list[_Node] = []
        self._by_id: dict[bytes, _Node] = {}
        self._pending: dict[bytes, GroupOp] = {}
        self._waiting: dict[bytes, set[bytes]] = {}  # parent id -> pending children
        self._heads: set[bytes] = set()
        self._post: OrderedDict[int, _State] = OrderedDict()
        self._state: GroupState | None = None
        self._verdicts: dict[bytes, Verdict] | None = None
        self._refused: set[bytes] = set()  # judged invalid by admit(): never kept
        self._judged: set[bytes] = set()  # admitted while pending: judge when ready

    # ------------------------------------------------------------ building

    @classmethod
    def replay(cls, group_id: bytes, ops: Iterable[GroupOp]) -> GroupLog:
        """A log of ``ops`` (any order, duplicates and forgeries skipped)."""
        group = cls(group_id)
        group.apply(ops)
        return group

    def add(self, op: GroupOp) -> AddResult:
        """Add one op (signature checked here); it joins the fold once its parents are here."""
        if op.group_id != self.group_id:
            return AddResult.WRONG_GROUP
        if op.op_id in self._by_id or op.op_id in self._pending:
            return AddResult.DUPLICATE
        try:
            verify_op(op)
        except InvalidOpSignature:
            log.info("group %s: dropped %r: bad signature", self.group_id.hex()[:8], op)
            return AddResult.BAD_SIGNATURE
        missing = [p for p in op.parents if p not in self._by_id]
        if missing:
            if len(self._pending) >= _MAX_PENDING:
                return AddResult.TOO_MANY_PENDING
            self._pending[op.op_id] = op
            for parent in missing:
                self._waiting.setdefault(parent, set()).add(op.op_id)
            return AddResult.NEW
        self._make_ready(op)
        return AddResult.NEW

    def admit(self, op: GroupOp, *, only_applied: bool = False) -> Verdict:
        """Judge an op from the network, then keep it only if it holds: the one door
        for ops from peers (:meth:`add` is for ops this device already holds).

        Refused (INVALID, nothing kept, and the id remembered so ops built on it
        are refused too): another group's op, a bad signature, an op breaking a
        rule at its causal point, an op naming a refused parent. An op whose
        parents have not all arrived is kept PENDING (fetch :meth:`missing`) and
        judged when they come. ``only_applied``: keep it only if the fold applies
        it (an admin admitting a Join by link); else it is undone and its verdict
        returned. So no refused op ever becomes a head that our next op would
        name as a parent, which the other members could never fetch.
        """
        if op.group_id != self.group_id:
            return Verdict(OpStatus.INVALID, "an op of another group")
        if op.op_id in self:
            return self.verdict(op.op_id)
        if op.op_id in self._refused or any(p in self._refused for p in op.parents):
            self._refuse(op.op_id)
            return Verdict(OpStatus.INVALID, "it builds on a refused op")
        try:
            verify_op(op)
        except InvalidOpSignature:
            return Verdict(OpStatus.INVALID, "bad signature")
        if any(p not in self._by_id for p in op.parents):
            if only_applied:  # cannot be judged now: not kept either
                return Verdict(OpStatus.PENDING, "an ancestor has not arrived")
            if self.add(op) is AddResult.TOO_MANY_PENDING:
                return Verdict(OpStatus.INVALID, "too many ops wait for their parents")
            self._judged.add(op.op_id)
            return Verdict(OpStatus.PENDING, "an ancestor has not arrived")
        reason = self._judge(op)
        if reason is not None:
            self._refuse(op.op_id)
            log.info("group %s: refused %r: %s", self.group_id.hex()[:8], op, reason)
            return Verdict(OpStatus.INVALID, reason)
        undoable = op.op_id not in self._waiting
        self.add(op)
        verdict = self.verdict(op.op_id)
        if only_applied and verdict.status is not OpStatus.APPLIED and undoable:
            self._forget_last(op)
        return verdict

    def _judge(self, op: GroupOp) -> str | None:
        """Why ``op`` (all parents ready) breaks a rule at its causal point, or None."""
        parents = [self._by_id[p] for p in op.parents]
        ancestors = 0
        for parent in parents:
            ancestors |= parent.ancestors | (1 << parent.index)
        if isinstance(op.body, Create) and op.op_id != self.group_id:
            return "a second genesis"
        return _authorize(self._causal_state(parents, ancestors), op)

    def _refuse(self, op_id: bytes) -> None:
        if len(self._refused) < _MAX_REFUSED:
            self._refused.add(op_id)

    def apply(self, ops: Iterable[GroupOp]) -> GroupState:
        """Add every op in ``ops`` and return the resulting state."""
        for op in ops:
            self.add(op)
        return self.state

    def next_op(
        self,
        identity: Identity,
        body: Body,
        created_at_ms: int,
        max_bytes: int | None = None,
    ) -> GroupOp:
        """Sign an op on top of the current heads, add it, and return it (to publish).

        Raises UsageError if the op would be invalid or overridden here (for
        example a non-admin renaming): the log would ignore it anyway; or, with
        ``max_bytes``, if its encoding is longer (an op members cannot be sent
        would fail every re-send). Nothing is added then.
        """
        if not self._heads:
            raise UsageError("this group log is empty: add the group's ops first")
        # Merge the newest heads; more than MAX_PARENTS branches merge over several ops.
        parents = sorted((self._by_id[h] for h in self._valid_heads()), key=lambda n: n.key)
        parents = parents[-MAX_PARENTS:]
        lamport = 1 + parents[-1].lamport
        parent_ids = [n.op.op_id for n in parents]
        op = sign_op(identity, self.group_id, body, parent_ids, lamport, created_at_ms)
        size = len(encode_op(op))
        if max_bytes is not None and size > max_bytes:
            raise UsageError(
                f"this change is {size} bytes signed; a group change must fit in {max_bytes}:"
                " shorten the text or use a smaller picture"
            )
        self.add(op)
        # The new op descends from (nearly always) every ready op, so it can be
        # invalid here but practically never overridden.
        reason = self._by_id[op.op_id].invalid
        if reason is not None:
            self._forget_last(op)
            raise UsageError(f"that change is not allowed: {reason}")
        return op

    def issue_token(
        self, identity: Identity, expires_at_ms: int, invitee: bytes | None = None
    ) -> InviteToken:
        """An invite token by ``identity`` (an admin here) on the current heads."""
        if not self.state.is_admin(identity.public_key):
            raise UsageError("only an admin of the group can make an invite link")
        heads = self._valid_heads()
        if len(heads) > MAX_TOKEN_HEADS:
            raise UsageError("the group log has too many branches; publish any change first")
        lamport = max(self._by_id[h].lamport for h in heads)
        return issue_token(identity, self.group_id, heads, lamport, expires_at_ms, invitee=invitee)

    # ------------------------------------------------------------- queries

    @property
    def state(self) -> GroupState:
        if self._state is None:
            if len(self._heads) == 1:
                (head,) = self._heads
                self._state = self._post_state(self._by_id[head]).freeze(self.group_id)
            else:
                self._state = self._fold_all().freeze(self.group_id)
        return self._state

    def verdict(self, op_id: bytes) -> Verdict:
        """What the fold made of an op (KeyError if unknown)."""
        if op_id in self._pending:
            return Verdict(OpStatus.PENDING, "an ancestor has not arrived")
        if op_id not in self._by_id:
            raise KeyError(op_id)
        if self._verdicts is None:
            self._fold_all()
        assert self._verdicts is not None
        return self._verdicts[op_id]

    def missing(self) -> set[bytes]:
        """Parent ids that pending ops name but this log has never seen: fetch these."""
        return {
            p
            for p in self._waiting
            if p not in self._pending and p not in self._by_id and p not in self._refused
        }

    def heads(self) -> frozenset[bytes]:
        """Ready ops no other ready op names as a parent."""
        return frozenset(self._heads)

    def _valid_heads(self) -> set[bytes]:
        """The next op's parents: the heads, an invalid head replaced by its parents
        (a log replayed from an older version may hold one; every peer that refused
        it could never fetch it), minus any that another chosen one descends from."""
        heads = set(self._heads)
        while bad := {h for h in heads if self._by_id[h].invalid is not None}:
            heads = (heads - bad) | {p for h in bad for p in self._by_id[h].op.parents}
        nodes = [self._by_id[h] for h in heads]
        return {n.op.op_id for n in nodes if not any((m.ancestors >> n.index) & 1 for m in nodes)}

    def ancestors(self, op_id: bytes, limit: int) -> list[GroupOp]:
        """Up to ``limit`` of a ready op's nearest ancestors, newest first (to send along)."""
        node = self._by_id[op_id]
        found = [n for n in self._nodes if (node.ancestors >> n.index) & 1]
        found.sort(key=lambda n: n.key, reverse=True)
        return [n.op for n in found[:limit]]

    def get(self, op_id: bytes) -> GroupOp | None:
        """A ready or pending op by id (to answer a member who asks for it)."""
        node = self._by_id.get(op_id)
        return node.op if node is not None else self._pending.get(op_id)

    def ops(self) -> list[GroupOp]:
        """Every ready op in the fold's total order (parents first), e.g. to serve a catch-up."""
        return [n.op for n in sorted(self._nodes, key=lambda n: n.key)]

    def pending(self) -> list[GroupOp]:
        return list(self._pending.values())

    def __contains__(self, op_id: object) -> bool:
        return op_id in self._by_id or op_id in self._pending

    def __len__(self) -> int:
        return len(self._by_id) + len(self._pending)

    # ------------------------------------------------------------ internals

    def _make_ready(self, first: GroupOp) -> None:
        queue = [first]
        while queue:
            op = queue.pop()
            self._ready_one(op)
            for child_id in sorted(self._waiting.pop(op.op_id, ())):
                child = self._pending[child_id]
                if all(p in self._by_id for p in child.parents):
                    del self._pending[child_id]
                    if child_id in self._judged:  # came through admit(): judge it now
                        self._judged.discard(child_id)
                        if self._judge(child) is not None:
                            self._refuse(child_id)
                            continue
                    queue.append(child)
        self._state = None
        self._verdicts = None

    def _ready_one(self, op: GroupOp) -> None:
        index = len(self._nodes)
        ancestors = 0
        lamport = op.lamport
        parents = [self._by_id[p] for p in op.parents]
        for parent in parents:
            ancestors |= parent.ancestors | (1 << parent.index)
            lamport = max(lamport, parent.lamport + 1)
        if isinstance(op.body, Create) and op.op_id != self.group_id:
            invalid: str | None = "a second genesis"  # unreachable: ids are hashes
        else:
            before = self._causal_state(parents, ancestors)
            invalid = _authorize(before, op)
        node = _Node(op, index, ancestors, lamport, invalid, _revocation(op))
        self._nodes.append(node)
        self._by_id[op.op_id] = node
        self._heads.difference_update(op.parents)
        self._heads.add(op.op_id)
        if invalid is not None:
            log.info("group %s: %r is invalid: %s", self.group_id.hex()[:8], op, invalid)

    def _causal_state(self, parents: list[_Node], ancestors: int) -> _State:
        """The fold of exactly the ops in ``ancestors`` (the causal past of a new op)."""
        if not parents:
            return _State()
        for parent in parents:  # one parent that has seen all the others
            if parent.ancestors | (1 << parent.index) == ancestors:
                return self._post_state(parent)
        return _fold([n for n in self._nodes if (ancestors >> n.index) & 1], None)

    def _post_state(self, node: _Node) -> _State:
        """The fold of ``node`` and its ancestors (cached; callers must not mutate it)."""
        cached = self._post.get(node.index)
        if cached is not None:
            self._post.move_to_end(node.index)
            return cached
        parents = [self._by_id[p] for p in node.op.parents]
        state = self._causal_state(parents, node.ancestors).copy()
        if node.invalid is None:
            state.apply(node.op)  # the newest op is concurrent with none of its ancestors
        self._post[node.index] = state
        if len(self._post) > _POST_CACHE:
            self._post.popitem(last=False)
        return state

    def _fold_all(self) -> _State:
        self._verdicts = {}
        return _fold(self._nodes, self._verdicts)

    def _forget_last(self, op: GroupOp) -> None:
        """Undo adding ``op`` (the newest ready op, a head with no children)."""
        node = self._by_id.pop(op.op_id)
        assert node is self._nodes[-1]
        self._nodes.pop()
        self._post.pop(node.index, None)
        self._heads.discard(op.op_id)
        self._heads.update(p for p in op.parents if not self._has_ready_child(p))
        self._state = None
        self._verdicts = None

    def _has_ready_child(self, op_id: bytes) -> bool:
        return any(op_id in n.op.parents for n in self._nodes)
