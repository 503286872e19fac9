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
==============  =============================================================

Everyone else -- a contact who is not in the group, a stranger, a former
member -- is refused with a reason that names them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from boxless.groups.membership import GroupState

__all__ = ["Action", "Target", "authorize"]


class Action(enum.Enum):
    TEXT = "post a text"
    PIN = "pin a message"
    READ = "move a read marker"
    KEY_SHARE = "share a key"
    OPS = "send ops"
    REQUEST = "ask for ops or a key"


@dataclass(frozen=True, slots=True)
class Target:
    """What the action touches, as far as the rules need to know."""

    in_group: bool = True  # PIN: the message is one of this group's
    lamport: int = 0  # READ: the read position
    horizon: int = 0  # READ: the newest Lamport time this device knows in the group
    invites_us: bool = False  # OPS for a group we are not in: they make us both members


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
    return None
