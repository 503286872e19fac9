"""Who may do what in a group: one pure function for every group body.

Theory of operation
-------------------
Before any group body changes local state, :func:`authorize` decides whether
*this sender* may do *this action* to *this target* in the group's current
state, and returns ``None`` (allowed) or the reason it is not (Matrix's event
auth rules; membership ops themselves are judged by the signed op log,
:meth:`boxless.groups.GroupLog.admit`, against their causal past).

The sender is always an authenticated identity: the Megolm session's owner
for a message on the group topic, the Olm session's device (checked to be the
identity's known device by the caller) for a direct body. Replays never reach
here: Megolm refuses a message index twice and SDS deduplicates by id.

==============  =============================================================
action          allowed when
==============  =============================================================
TEXT            sender is a member; not announcements-only, or sender admin
PIN             as TEXT, and the target is a message of this group
READ            sender is a member, and the read position is not past every
                message this device knows (no acknowledging the future)
KEY_SHARE       sender is a member (its device checked by the caller)
OPS             sender is a member (each op is then judged by the log); for
                a group we are not in, only ops that make us and the sender
                members (the caller's trial fold says so)
REQUEST         sender is a member (asks for ops or a key re-share)
EDIT            sender is a member and may post (as TEXT); the target is a text
                of this group, by the sender, not deleted
DELETE          sender is a member; the target is a text of this group, by the
                sender or -- for everyone -- the sender is an admin (its role
                now, in the group's state when the delete is delivered)
REACT           sender is a member; the target is a text of this group, not
                deleted; a new reaction fits the caps (distinct emoji per
                message, reactions per member per message)
==============  =============================================================

EDIT, DELETE and REACT whose target this device does not hold yet are checked
in two steps: :func:`authorize` with ``Target(known=False)`` (membership and
role, now), then :func:`authorize_on_target` when the target arrives, with
the role the sender had when the action was delivered.

Everyone else -- a contact who is not in the group, a stranger, a former
member -- is refused with a reason that names them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from boxless.groups.membership import GroupState

__all__ = [
    "MAX_EMOJI_PER_MESSAGE",
    "MAX_REACTIONS_PER_MEMBER",
    "Action",
    "Target",
    "authorize",
    "authorize_on_target",
]


class Action(enum.Enum):
    TEXT = "post a text"
    PIN = "pin a message"
    READ = "move a read marker"
    KEY_SHARE = "share a key"
    OPS = "send ops"
    REQUEST = "ask for ops or a key"
    EDIT = "edit a message"
    DELETE = "delete a message"
    REACT = "react to a message"


MAX_EMOJI_PER_MESSAGE = 20
"""Distinct emoji on one group message (a member cannot grow the table without end)."""
MAX_REACTIONS_PER_MEMBER = 5
"""Emoji one member may have on one message at once."""


@dataclass(frozen=True, slots=True)
class Target:
    """What the action touches, as far as the rules need to know."""

    in_group: bool = True  # PIN: the message is one of this group's
    lamport: int = 0  # READ: the read position
    horizon: int = 0  # READ: the newest Lamport time this device knows in the group
    invites_us: bool = False  # OPS for a group we are not in: they make us both members
    known: bool = True  # EDIT/DELETE/REACT: this device holds the target message
    author: bytes | None = None  # EDIT/DELETE/REACT: who sent the target
    is_text: bool = True  # the target is a text (not a membership event line)
    deleted: bool = False  # the target was deleted for everyone
    adds_reaction: bool = False  # REACT: a reaction the message does not carry yet
    new_emoji: bool = False  # REACT: an emoji the message carries from nobody yet
    emoji_count: int = 0  # REACT: distinct emoji on the message
    member_reactions: int = 0  # REACT: the sender's reactions on the message


def authorize(
    state: GroupState | None, sender: bytes, action: Action, target: Target | None = None
) -> str | None:
    """None if ``sender`` may do ``action`` (to ``target``) in ``state``, else why not.

    ``state`` is None for a group this device is not in.
    """
    t = target or Target()
    if state is None:
        if action is Action.OPS and t.invites_us:
            return None
        return "not a group we are in"
    if not state.is_member(sender):
        return "the sender is not a member of the group"
    if action in (Action.TEXT, Action.PIN):
        if state.announcements_only and not state.is_admin(sender):
            return "only admins may post in an announcements-only group"
        if action is Action.PIN and not t.in_group:
            return "the pinned message is not in this group"
    elif action is Action.READ and t.lamport > t.horizon:
        return "the read position is past every message of the group"
    elif action in _ON_TARGET:
        if action is Action.EDIT and state.announcements_only and not state.is_admin(sender):
            return "only admins may post in an announcements-only group"
        if t.known:
            return authorize_on_target(action, sender, state.is_admin(sender), t)
    return None


_ON_TARGET = (Action.EDIT, Action.DELETE, Action.REACT)


def authorize_on_target(action: Action, sender: bytes, admin: bool, t: Target) -> str | None:
    """The part of EDIT/DELETE/REACT that needs the target message: None if allowed.

    ``admin``: the sender's role when the action was delivered (membership was
    checked then by :func:`authorize`)."""
    if not t.in_group:
        return "the message is not in this group"
    if not t.is_text:
        return "only texts can be edited, deleted or reacted to"
    if action is Action.EDIT:
        if t.author != sender:
            return "only a message's author may edit it"
        if t.deleted:
            return "the message was deleted"
    elif action is Action.DELETE:
        if t.author != sender and not admin:
            return "only the author or an admin may delete a message for everyone"
    elif action is Action.REACT:
        if t.deleted:
            return "the message was deleted"
        if t.adds_reaction and t.member_reactions >= MAX_REACTIONS_PER_MEMBER:
            return f"a member has at most {MAX_REACTIONS_PER_MEMBER} reactions on a message"
        if t.adds_reaction and t.new_emoji and t.emoji_count >= MAX_EMOJI_PER_MESSAGE:
            return f"a message carries at most {MAX_EMOJI_PER_MESSAGE} different emoji"
    return None
