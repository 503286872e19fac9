"""Replies, edits, deletes and reactions on group messages.

Theory of operation
-------------------
A group action is a body on the group topic like a text (SDS-wrapped, Megolm
once): :class:`~boxless.chat.envelope.GroupEdit`,
:class:`~boxless.chat.envelope.GroupDelete`,
:class:`~boxless.chat.envelope.GroupReaction`, each naming its target by SDS
message id; a reply is a :class:`~boxless.chat.envelope.Text` whose
``group_reply_to`` names one. :class:`~boxless.client.group_topic.GroupTopic`
hands each delivered action here, after the sender was proved a current member
(Megolm sender = SDS sender, member now); :func:`boxless.groups.auth.authorize`
decides, with the group's membership state at delivery (SDS delivers in causal
order, so that is the state the sender acted in as far as this device knows):

* edit: the target's author only, never after a delete (no resurrection);
* delete for everyone: the author, or an admin (its role at delivery);
* reaction: any member, one per (member, emoji, message), at most
  ``MAX_REACTIONS_PER_MEMBER`` per member and ``MAX_EMOJI_PER_MESSAGE``
  distinct emoji per message, never on a deleted message;
* a reply naming a message of another group keeps its text, not the reply.

An action whose target this device does not hold yet (SDS's causal history
names only the last few messages; a target repaired late, or released as
irretrievable, comes after the action) is **kept pending**, not dropped:
dropping a delete for everyone would show a withdrawn text for ever. The table
is bounded (:data:`PENDING_PER_GROUP` per group, :data:`PENDING_IN_ALL` in all;
an action past either is dropped and logged) and rows expire after
:data:`PENDING_TTL_S`. When the target arrives the actions are judged again on
it (author, deleted, caps) in arrival order, with the role recorded at delivery.

The user's own actions go through the same rules before they are published.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from boxless.chat import envelope as env
from boxless.client import events as ev
from boxless.client import group_action_store as gas
from boxless.client import group_store as gs
from boxless.client.group_core import Cursor, GroupCore, ms
from boxless.errors import DecodeError, UsageError
from boxless.groups.auth import Action, Target, authorize, authorize_on_target
from boxless.groups.membership import GroupState

__all__ = ["PENDING_IN_ALL", "PENDING_PER_GROUP", "PENDING_TTL_S", "GroupActions"]

logger = logging.getLogger("boxless.client.groups")

PENDING_PER_GROUP = 200
PENDING_IN_ALL = 2000
PENDING_TTL_S = 7 * 86_400

ActionBody = env.GroupEdit | env.GroupDelete | env.GroupReaction
ACTION_BODIES = (env.GroupEdit, env.GroupDelete, env.GroupReaction)
_ACTIONS = {env.GroupEdit: Action.EDIT, env.GroupDelete: Action.DELETE}


class GroupActions:
    """Judges and applies group actions; adds them to message rows (see the module doc)."""

    def __init__(self, core: GroupCore) -> None:
        self.core = core

    # -- texts --------------------------------------------------------------------------

    def reply_target(self, cur: Cursor, gid: bytes, reply_to: str | None) -> str | None:
        """``reply_to`` if it may stand: unknown yet, or a message of this group."""
        if reply_to is None:
            return None
        found = gs.get_message(cur, reply_to)
        if found is not None and found[1].group_id != gid:
            logger.info(
                "group %s: a reply to another group's message; reply dropped", gid.hex()[:8]
            )
            return None
        return reply_to

    def text_added(self, cur: Cursor, gid: bytes, message_id: str, body: env.Text) -> None:
        """A text was stored: keep its reply and mentions, apply what waited for it."""
        reply = self.reply_target(cur, gid, body.group_reply_to)
        gas.put_text_extra(cur, message_id, reply, body.mentions, body.mention_all)
        for pending in gas.take_pending(cur, gid, message_id):
            try:
                action = env.decode(pending.body).body
            except DecodeError:
                continue
            if not isinstance(action, ACTION_BODIES) or action.target != message_id:
                continue
            target = self._target(cur, gid, pending.sender, action)
            refused = authorize_on_target(
                self._action(action), pending.sender, pending.admin, target
            )
            if refused is None:
                self._apply(cur, gid, pending.sender, action)
            else:
                logger.info(
                    "group %s: a waiting %s refused: %s", gid.hex()[:8], _kind(action), refused
                )

    # -- actions from members -----------------------------------------------------------

    def receive(
        self,
        cur: Cursor,
        gid: bytes,
        state: GroupState,
        sender: bytes,
        content: bytes,
        body: ActionBody,
    ) -> str | None:
        """One delivered action from ``sender`` (authenticated); None if applied or kept
        pending, else why it was refused."""
        target = self._target(cur, gid, sender, body)
        refused = authorize(state, sender, self._action(body), target)
        if refused is not None:
            return refused
        if target.known:
            self._apply(cur, gid, sender, body)
            return None
        now = self.core.clock()
        kept = gas.add_pending(
            cur,
            gid,
            body.target,
            gas.PendingAction(sender, state.is_admin(sender), content, ms(now)),
            per_group=PENDING_PER_GROUP,
            in_all=PENDING_IN_ALL,
            expire_before_ms=ms(now - PENDING_TTL_S),
        )
        if not kept:
            return "too many actions wait for messages this device has not seen"
        return None

    # -- our own actions ----------------------------------------------------------------

    def check_local(self, cur: Cursor, gid: bytes, state: GroupState, body: ActionBody) -> None:
        """Raise :class:`UsageError` saying why we may not do ``body``; else apply it."""
        target = self._target(cur, gid, self.core.me, body)
        if not target.known or not target.in_group:
            raise UsageError("no such message in this group")
        refused = authorize(state, self.core.me, self._action(body), target)
        if refused is not None:
            raise UsageError(refused)
        self._apply(cur, gid, self.core.me, body)

    # -- rows for the API ---------------------------------------------------------------

    def decorate(
        self, cur: Cursor, rows: Sequence[tuple[int, gs.GroupMessageRow]]
    ) -> list[tuple[int, gs.GroupMessageRow]]:
        """The rows with their reply, mentions, edited/deleted flags and reactions."""
        ids = [m.message_id for _, m in rows]
        extras = gas.extras(cur, ids)
        reactions = gas.reactions_of(cur, ids)
        # a reply whose target came later, from another group, quotes nothing
        quoted = gas.groups_of(cur, [x.reply_to for x in extras.values() if x.reply_to])
        out = []
        for seq, m in rows:
            x = extras.get(m.message_id, gas.Extra())
            if x.reply_to is not None and quoted.get(x.reply_to, m.group_id) != m.group_id:
                x = replace(x, reply_to=None)
            out.append(
                (
                    seq,
                    _replace(m, x, tuple(reactions.get(m.message_id, ()))),
                )
            )
        return out

    # -- inside -------------------------------------------------------------------------

    @staticmethod
    def _action(body: ActionBody) -> Action:
        return _ACTIONS.get(type(body), Action.REACT)

    def _target(self, cur: Cursor, gid: bytes, sender: bytes, body: ActionBody) -> Target:
        found = gs.get_message(cur, body.target)
        if found is None:
            return Target(known=False)
        m = found[1]
        deleted = gas.is_deleted(cur, m.message_id)
        if not isinstance(body, env.GroupReaction):
            return Target(
                in_group=m.group_id == gid,
                author=m.sender,
                is_text=m.kind == "text",
                deleted=deleted,
            )
        stats = gas.reaction_stats(cur, m.message_id, sender, body.emoji)
        return Target(
            in_group=m.group_id == gid,
            author=m.sender,
            is_text=m.kind == "text",
            deleted=deleted,
            adds_reaction=not body.remove and not stats.has,
            new_emoji=not stats.emoji_present,
            emoji_count=stats.emoji_count,
            member_reactions=stats.member_count,
        )

    def _apply(self, cur: Cursor, gid: bytes, sender: bytes, body: ActionBody) -> None:
        group, mid, by = gid.hex(), body.target, sender.hex()
        if isinstance(body, env.GroupEdit):
            gas.set_edited(cur, mid, body.text)
            self.core.event(ev.GroupMessageEdited(group, mid, by))
        elif isinstance(body, env.GroupDelete):
            if gas.set_deleted(cur, mid):
                self.core.event(ev.GroupMessageDeleted(group, mid, by))
        elif body.remove:
            if gas.remove_reaction(cur, mid, sender, body.emoji):
                self.core.event(ev.GroupReactionChanged(group, mid, by))
        elif gas.add_reaction(cur, mid, sender, body.emoji):
            self.core.event(ev.GroupReactionChanged(group, mid, by))


def _kind(body: ActionBody) -> str:
    return type(body).__name__


def _replace(
    m: gs.GroupMessageRow, x: gas.Extra, reactions: tuple[tuple[bytes, str], ...]
) -> gs.GroupMessageRow:
    return replace(
        m,
        reply_to=x.reply_to,
        mentions=x.mentions,
        mention_all=x.mention_all,
        edited=x.edited,
        deleted=x.deleted,
        reactions=reactions,
    )
