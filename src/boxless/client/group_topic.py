"""Messages on the group topics: decrypt, check, authorise, deliver; keys that wait.

Theory of operation
-------------------
Dedup by Waku hash → Megolm decrypt → the SDS sender must be the Megolm
sender (the device that shared the session) and a current member → SDS
receive → each delivered content, in causal order, is authorised by
:func:`~boxless.groups.auth.authorize` and then stored (a text), applied (ops),
or counted (a pin, a read marker). Only such an authenticated message moves
the topic's catch-up point (:func:`~boxless.groups.delivery.sync_point`).

A message whose key has not come waits in the pending queue (capped per group
and in all, expiring); after ``key_patience_s`` the members are asked to
re-share its session (one round per group per interval), and after the same
patience the messages that depend on it stop waiting for it.
"""

from __future__ import annotations

import logging
from typing import Any

from boxless.chat import envelope as env
from boxless.chat.topics import group_topic
from boxless.client import events as ev
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.group_actions import ACTION_BODIES, GroupActions
from boxless.client.group_core import KEY_REQUEST_FANOUT, Cursor, GroupCore, ms
from boxless.client.transport import Incoming
from boxless.crypto.errors import DuplicateMessage, TamperedMessage
from boxless.crypto.megolm import (
    MessageBeforeKeyShare,
    UnknownGroupSession,
    decode_group_message,
    session_id_bytes,
)
from boxless.errors import BoxlessError, DecodeError, ValidationError
from boxless.groups.auth import Action, Target, authorize
from boxless.groups.delivery import (
    sync_point,
)
from boxless.groups.requests import GroupRequest
from boxless.sync import SdsChannel, decode_message

logger = logging.getLogger("boxless.client.groups")

READ_EVENTS = 10  # events per read marker for messages whose only change is the count
READ_ACKS = 50  # our messages one read marker may acknowledge
MAX_KEY_REQUEST_SESSIONS = 24  # sessions one request names


class GroupTopic:
    """Receives the group topics' messages (see the module doc)."""

    def __init__(self, core: GroupCore, actions: GroupActions) -> None:
        self.core = core
        self.actions = actions

    def accept(self, cur: Cursor, gid: bytes, item: Incoming) -> None:
        """One Waku message on a group topic (live or from history), inside the caller's
        transaction.

        The topic's catch-up point moves only for a message that decrypted and
        verified (a sender-chosen timestamp on junk must not blind catch-up), and
        never past now (plus a little skew)."""
        if db.was_seen(cur, item.message_hash):
            return
        now = self.core.clock()
        db.mark_seen(cur, item.message_hash, ms(now))
        if not gs.has_group(cur, gid) or self.core.is_own_echo(item.message.payload):
            return
        stamp = item.message.timestamp or 0
        if self._receive(cur, gid, item.message_hash, item.message.payload, stamp):
            self._advance(cur, gid, stamp)

    def _advance(self, cur: Cursor, gid: bytes, timestamp_ns: int) -> None:
        """An authenticated message stamped ``timestamp_ns`` arrived on the group's topic
        (at once, or it waited for its key): move the topic's catch-up point."""
        topic = group_topic(gid)
        point = sync_point(db.get_sync(cur, topic), timestamp_ns, self.core.clock())
        if point is not None:
            db.set_sync(cur, topic, point)

    def _receive(
        self, cur: Cursor, gid: bytes, message_hash: bytes, payload: bytes, timestamp_ns: int
    ) -> bool:
        """Decrypt, check and deliver one group message; True if it was authentic.
        One whose key has not come waits (with its Waku ``timestamp_ns``)."""
        try:
            ct = decode_group_message(payload)
            plain = self.core.sessions.decrypt(gid, None, ct)
        except UnknownGroupSession:
            self._wait_for_key(cur, gid, message_hash, payload, timestamp_ns)
            return False
        except (DecodeError, DuplicateMessage, MessageBeforeKeyShare, TamperedMessage) as exc:
            logger.info("group message dropped: %s", type(exc).__name__)
            return False
        log = self.core.log(cur, gid)
        sender = plain.sender_identity
        if not log.state.is_member(sender):
            logger.info("group message from a non-member; dropped")
            return False
        try:
            if decode_message(plain.plaintext).sender_id != sender.hex():
                logger.warning("group message whose SDS sender is not its Megolm sender; dropped")
                return False
            sds = self.core.sds(cur, gid)
            delivered = sds.receive(plain.plaintext, self.core.clock(), retrieval_hint=message_hash)
        except (DecodeError, ValidationError) as exc:
            logger.info("group message with bad SDS framing: %s", exc)
            return False
        delivered += self.give_up_unreadable(cur, sds)
        for d in delivered:
            self.deliver(cur, gid, bytes.fromhex(d.sender_id), d.message_id, d)
        self.core.settle_acks(cur, gid, sds)
        self.core.save_sds(cur, gid, sds)
        return True

    def _wait_for_key(
        self, cur: Cursor, gid: bytes, message_hash: bytes, payload: bytes, timestamp_ns: int
    ) -> None:
        """Keep a message whose key has not come (within the group's share of the
        queue) and note its session: if no key comes, the members are asked."""
        if not self.core.timings.limits.pending_admits(*gs.pending_counts(cur, gid)):
            logger.info("group %s: too many messages wait for keys; dropped", gid.hex()[:8])
            return
        try:
            session: bytes | None = session_id_bytes(decode_group_message(payload).session_id)
        except BoxlessError:  # DecodeError, or a malformed session id
            session = None
        now_ms = ms(self.core.clock())
        gs.add_pending(cur, message_hash, gid, session, payload, now_ms, timestamp_ns)
        self.core.wake_timers(self.core.clock() + self.core.timings.key_patience_s)
        if session is None:
            return
        unknown = self.core.unknown.setdefault(gid, {})
        if len(unknown) < MAX_KEY_REQUEST_SESSIONS:
            unknown.setdefault(session, self.core.clock())

    def ask_for_keys(self, now: float) -> None:
        """Sessions we have waited ``key_patience_s`` for: ask the members to re-share
        (one round per group per ``key_request_interval_s``, however many sessions)."""
        for gid, unknown in list(self.core.unknown.items()):
            ripe = [s for s, t in unknown.items() if now - t >= self.core.timings.key_patience_s]
            if not ripe:
                continue
            del self.core.unknown[gid]
            with self.core.db.transaction() as cur:
                state = self.core.log(cur, gid).state
                if not state.is_member(self.core.me) or not self.core.asks.allow(
                    (gid, "keys"), now
                ):
                    continue
                request = GroupRequest(gid, sessions=tuple(ripe))
                uncarded = []
                for member in sorted(state.members)[:KEY_REQUEST_FANOUT]:
                    if member == self.core.me:
                        continue
                    if self.core.device(cur, member) is None:
                        uncarded.append(member)  # cannot ask them, nor share our key
                    else:
                        self.core.queue_direct(cur, member, env.GroupKeyShareBody(request.encode()))
                self.core.ask_for_cards(cur, gid, uncarded)
            logger.info("group %s: asked members to re-share %d keys", gid.hex()[:8], len(ripe))

    def give_up_unreadable(self, cur: Cursor, sds: SdsChannel) -> list[Any]:
        """Missing dependencies whose Waku message we processed and could not read
        will never come (sent before our key share: before we joined), or not soon
        (waiting for a key longer than ``key_patience_s``: its sender, offline, never
        shared it with us -- say we were removed and re-admitted meanwhile): let
        the messages waiting on them through. If the key comes later, the message
        is delivered then, in its place by Lamport time."""
        released: list[Any] = []
        now_ms = ms(self.core.clock())
        for dep in sds.missing():
            hint = dep.retrieval_hint
            if not hint or not db.was_seen(cur, hint):
                continue
            since = gs.pending_since(cur, hint)
            if since is None or now_ms - since > self.core.timings.key_patience_s * 1000:
                released += sds.mark_irretrievable(dep.message_id)
        return released

    def deliver(self, cur: Cursor, gid: bytes, sender: bytes, sds_id: str, d: Any) -> None:
        """One delivered group content, authorised by :func:`authorize` before it counts."""
        try:
            msg = env.decode(d.content)
        except DecodeError:
            logger.info("group content that is not a chat message; dropped")
            return
        body = msg.body
        state = self.core.log(cur, gid).state
        if isinstance(body, env.Text):
            refused = authorize(state, sender, Action.TEXT)
            if refused is None:
                self._store_text(cur, gid, sender, sds_id, d, msg, body)
        elif isinstance(body, env.GroupOpBody):
            refused = authorize(state, sender, Action.OPS)
            if refused is None:
                self.core.apply_ops(cur, gid, body, sender)
        elif isinstance(body, env.GroupPin):
            found = gs.get_message(cur, body.target)
            target = Target(in_group=found is not None and found[1].group_id == gid)
            refused = authorize(state, sender, Action.PIN, target)
            if refused is None and gs.set_pinned(cur, gid, body.target, body.pinned):
                self.core.message_changed(gid, body.target)
        elif isinstance(body, env.GroupRead):
            horizon = self.core.sds(cur, gid).lamport_timestamp
            target = Target(lamport=body.lamport, horizon=horizon)
            refused = authorize(state, sender, Action.READ, target)
            if refused is None and gs.put_read(cur, gid, sender, body.lamport):
                self._on_read(cur, gid, body.lamport)
        elif isinstance(body, ACTION_BODIES):
            refused = self.actions.receive(cur, gid, state, sender, d.content, body)
        elif type(body) in self.core.content_handlers:  # another feature's content: a text's rules
            refused = authorize(state, sender, Action.TEXT)
            if refused is None:
                text = self.core.content_handlers[type(body)](cur, gid, sender, sds_id, msg)
                self._store_text(cur, gid, sender, sds_id, d, msg, env.Text(text))
        else:
            refused = "not a group body"
        if refused is not None:
            logger.info("group %s: %s refused: %s", gid.hex()[:8], type(body).__name__, refused)

    def _store_text(
        self,
        cur: Cursor,
        gid: bytes,
        sender: bytes,
        sds_id: str,
        d: Any,
        msg: env.ChatMessage,
        body: env.Text,
    ) -> None:
        mentions_me = body.mention_all or self.core.me in body.mentions
        row = gs.GroupMessageRow(
            sds_id,
            gid,
            sender,
            False,
            d.lamport_timestamp or 0,
            msg.sent_at_ms,
            ms(self.core.clock()),
            body.text,
            "received",
            mentions_me=mentions_me,
        )
        if gs.add_message(cur, row):
            self.actions.text_added(cur, gid, sds_id, body)
            self.core.message_changed(gid, sds_id)
            if mentions_me:
                self.core.event(ev.GroupMention(gid.hex(), sds_id))

    def _on_read(self, cur: Cursor, gid: bytes, lamport: int) -> None:
        """A member read up to ``lamport``: our messages up to there reached *them*
        ("confirmed" and read counts in the UI). Not an SDS acknowledgement: one
        member's claim (a modified client can claim anything) must not stop the
        re-sends the others may still need; SDS's own acknowledgements do that."""
        for i, (message_id, state) in enumerate(gs.outgoing_up_to(cur, gid, lamport, READ_ACKS)):
            changed = state != "confirmed" and gs.set_message_state(cur, message_id, "confirmed")
            if changed or i < READ_EVENTS:  # read counts moved; the UI shows the newest
                self.core.message_changed(gid, message_id)

    def retry_pending(self, cur: Cursor, gid: bytes, session_id: bytes | None = None) -> None:
        """Try again the messages that waited for ``session_id``'s key (None: all); one
        that now authenticates moves the topic's catch-up point as it would have at once."""
        for message_hash, payload, stamp in gs.take_pending_stamped(cur, gid, session_id):
            if self._receive(cur, gid, message_hash, payload, stamp or 0):
                self._advance(cur, gid, stamp or 0)
