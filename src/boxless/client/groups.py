"""Group chats in the client: membership ops, Megolm keys, SDS, one topic per group.

Theory of operation
-------------------
A group is its signed op log (:class:`boxless.groups.GroupLog`, rows of
``client_group_ops``), this device's Megolm sessions for it
(:class:`boxless.crypto.megolm.GroupSessions`) and one SDS channel
(:class:`boxless.sync.SdsChannel`, JSON in ``client_groups``).

Sending (O(1) in the group's size): the content -- an encoded
:class:`~boxless.chat.envelope.ChatMessage` holding a ``Text`` or a
``GroupOpBody`` -- is SDS-wrapped (causal history, bloom filter), the SDS
bytes Megolm-encrypted once, and published as one Waku message on
:func:`~boxless.chat.topics.group_topic`. When Megolm has no usable session
(:class:`RotationNeeded`) or membership changed, :meth:`GroupSessions.outbound`
runs with the member devices; the key shares it returns are queued, in the
same transaction, in ``client_group_outbox`` and sent over Olm (sealed, on the
recipient's contact-request partition topic, which every client listens to).

Receiving a group message: dedup by Waku hash → Megolm decrypt → the SDS
sender must be the Megolm sender (the device that shared the session) and a
current member → SDS receive → each delivered content, in causal order, is a
text (stored) or ops (added to the log; member cards stored). A message whose
session key has not arrived yet waits in ``client_group_pending`` and is
retried when a key share for the group arrives.

Direct group bodies (over Olm, routed here by the client core before its
contact-request gate): ``GroupKeyShareBody`` and ``GroupOpBody``. The Olm
session proves the sender *device*; it must be the identity's device as we
know it (a contact's, or the card an admin's op message brought). A body from
a device we cannot place yet waits in ``client_group_inbox`` and is retried
whenever ops arrive. A ``GroupOpBody`` that makes a group we did not know is
accepted only if the ops make us and the sender members.

Member devices: from the contacts table, else from member cards. In v1 an
admin invites only its own accepted contacts (it needs their card); the
invitee's card then travels to everyone with the Invite op, and the invitee
gets every op and every member's card over Olm.

Not here yet: SDS timers (re-sends, sync messages) and repair of missing
messages by hash (an offline member catches up from the store's history of
the group topic instead), join by link, leave, admin changes from the API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.chat.topics import contact_topic, group_topic
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.transport import Incoming, Transport
from boxless.crypto.errors import DuplicateMessage, TamperedMessage
from boxless.crypto.megolm import (
    GroupSessions,
    KeyShare,
    MessageBeforeKeyShare,
    RotationNeeded,
    UnknownGroupSession,
    decode_group_message,
    decode_key_share,
    encode_group_message,
)
from boxless.errors import BoxlessError, DecodeError, UsageError, ValidationError
from boxless.groups import GroupLog, GroupState, Invite, Remove, create_op, decode_op, encode_op
from boxless.identity.account import LocalAccount
from boxless.identity.contact_code import InvalidContactCode
from boxless.sync import SdsChannel, decode_message
from boxless.waku.message import WakuMessage

logger = logging.getLogger(__name__)

MAX_INBOX = 1000
RETRY_BASE_S = 2.0
RETRY_MAX_S = 300.0
_GROUP_PREFIX = "/boxless/1/group-"

Transmit = Callable[[bytes, str, bytes], Awaitable[bool]]
"""``transmit(card, content_topic, plaintext)``: Olm-encrypt, seal and send to a card's device."""
Emit = Callable[[dict[str, Any]], None]
CardToCode = Callable[[bytes, float], Any]


class NotAMember(UsageError):
    """This device is not (or no longer) a member of that group, or there is no such group."""


class GroupManager:
    """The groups of one client. Run :meth:`run` in the client's nursery."""

    def __init__(
        self,
        account: LocalAccount,
        transport: Transport,
        *,
        transmit: Transmit,
        emit: Emit,
        card_to_code: CardToCode,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.db = account.db
        self.transport = transport
        self.transmit = transmit
        self.emit = emit
        self.card_to_code = card_to_code
        self.clock = clock
        self.me = account.identity.public_key
        self.sessions = GroupSessions(self.db, self.db.derive_key("megolm sessions v1"))
        self._logs: dict[bytes, GroupLog] = {}
        self._wake = trio.Event()

    # -- queries ------------------------------------------------------------------------

    def topics(self) -> list[str]:
        with self.db.transaction() as cur:
            return [group_topic(g) for g in gs.group_ids(cur)]

    @staticmethod
    def owns(content_topic: str) -> bool:
        return content_topic.startswith(_GROUP_PREFIX)

    def groups(self) -> list[GroupState]:
        with self.db.transaction() as cur:
            return [self._log(cur, g).state for g in gs.group_ids(cur)]

    def state(self, group_id: bytes) -> GroupState:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self._log(cur, group_id).state

    def messages(
        self, group_id: bytes, limit: int = 50, before_seq: int | None = None
    ) -> list[tuple[int, gs.GroupMessageRow]]:
        with self.db.transaction() as cur:
            return gs.list_messages(cur, group_id, limit, before_seq)

    def _log(self, cur: Any, group_id: bytes) -> GroupLog:
        log = self._logs.get(group_id)
        if log is None:
            ops = [decode_op(raw) for raw in gs.list_ops(cur, group_id)]
            log = self._logs[group_id] = GroupLog.replay(group_id, ops)
        return log

    # -- local actions ------------------------------------------------------------------

    async def create(self, name: str) -> GroupState:
        """Create a group with us as its creator and only member."""
        now = self.clock()
        op = create_op(self.account.identity, name, int(now * 1000))
        gid = op.group_id
        log = GroupLog.replay(gid, [op])
        sds = SdsChannel(gid.hex(), self.me.hex(), now=now)
        with self.db.transaction() as cur:
            gs.add_group(cur, gid, sds.to_state(), int(now * 1000))
            gs.add_op(cur, gid, op.op_id, encode_op(op))
            self.sessions.outbound(gid, [], now)
        self._logs[gid] = log
        await self.transport.subscribe([group_topic(gid)])
        logger.info("group %s created", gid.hex()[:8])
        self.emit({"type": "group", "group": gid.hex()})
        return log.state

    async def invite(self, group_id: bytes, member: bytes) -> GroupState:
        """Invite an accepted contact: an Invite op for everyone, the whole log for them."""
        now = self.clock()
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, member)
        if contact is None or contact.state != ContactState.ACCEPTED.value:
            raise UsageError("you can only invite your accepted contacts")
        with self.db.transaction() as cur:
            log = self._member_log(cur, group_id)
            op = log.next_op(self.account.identity, Invite(member, contact.display_name), _ms(now))
            gs.add_op(cur, group_id, op.op_id, encode_op(op))
            ops = [encode_op(o) for o in log.ops()]
            cards = self._cards(cur, log.state.members)
            for i in range(0, len(ops), env.MAX_GROUP_OPS):
                chunk = tuple(ops[i : i + env.MAX_GROUP_OPS])
                self._queue_direct(
                    cur, member, env.GroupOpBody(chunk, cards[: env.MAX_GROUP_CARDS])
                )
            self._refresh_sessions(cur, group_id, now)
        await self._publish(group_id, env.GroupOpBody((encode_op(op),), (contact.bundle,)))
        self.emit({"type": "group", "group": group_id.hex()})
        return log.state

    async def remove(self, group_id: bytes, member: bytes) -> GroupState:
        """Remove a member; our Megolm session rotates so they read nothing that follows."""
        now = self.clock()
        with self.db.transaction() as cur:
            log = self._member_log(cur, group_id)
            op = log.next_op(self.account.identity, Remove(member), _ms(now))
            gs.add_op(cur, group_id, op.op_id, encode_op(op))
        # Announced under the current session, so the removed member learns of it too;
        # the next send (below, or any later one) rotates first.
        await self._publish(group_id, env.GroupOpBody((encode_op(op),)))
        with self.db.transaction() as cur:
            self._refresh_sessions(cur, group_id, now)
        self._wake.set()
        self.emit({"type": "group", "group": group_id.hex()})
        return log.state

    async def send_text(self, group_id: bytes, text: str) -> gs.GroupMessageRow:
        """Send a text to the group: one Megolm encryption, one Waku message."""
        return await self._publish(group_id, env.Text(text))

    def _member_log(self, cur: Any, group_id: bytes) -> GroupLog:
        if not gs.has_group(cur, group_id):
            raise NotAMember("no such group")
        log = self._log(cur, group_id)
        if not log.state.is_member(self.me):
            raise NotAMember("you are not a member of this group")
        return log

    async def _publish(
        self, group_id: bytes, body: env.Text | env.GroupOpBody
    ) -> gs.GroupMessageRow:
        now = self.clock()
        msg = env.new_message(body, lamport=0, sent_at_ms=_ms(now))
        with self.db.transaction() as cur:
            self._member_log(cur, group_id)
            sds = self._sds(cur, group_id)
            wrapped = sds.wrap(env.encode(msg), now)
            try:
                ct = self.sessions.encrypt(group_id, wrapped.data, now)
            except RotationNeeded:
                self._refresh_sessions(cur, group_id, now)
                ct = self.sessions.encrypt(group_id, wrapped.data, now)
            row = gs.GroupMessageRow(
                wrapped.message_id,
                group_id,
                self.me,
                True,
                sds.lamport_timestamp,
                msg.sent_at_ms,
                None,
                body.text if isinstance(body, env.Text) else "",
                "queued",
            )
            if isinstance(body, env.Text):
                gs.add_message(cur, row)
            gs.set_sds_state(cur, group_id, sds.to_state())
        self._wake.set()
        waku = WakuMessage(
            payload=encode_group_message(ct),
            content_topic=group_topic(group_id),
            timestamp=time.time_ns(),
        )
        try:
            sent = await self.transport.send(waku)
        except BoxlessError as exc:
            logger.info("group message not sent: %s", exc)
            return row
        with self.db.transaction() as cur:
            db.mark_seen(cur, sent.message_hash, _ms(self.clock()))
            sds = self._sds(cur, group_id)
            sds.set_retrieval_hint(wrapped.message_id, sent.message_hash)
            gs.set_sds_state(cur, group_id, sds.to_state())
            if sent.accepted and isinstance(body, env.Text):
                cur.execute(
                    "UPDATE client_group_messages SET state = 'sent' WHERE message_id = ?",
                    (wrapped.message_id,),
                )
        self.emit({"type": "group_message", "group": group_id.hex(), "id": wrapped.message_id})
        return row

    def _sds(self, cur: Any, group_id: bytes) -> SdsChannel:
        state = gs.get_sds_state(cur, group_id)
        if state is None:
            raise NotAMember("no such group")
        return SdsChannel.from_state(state)

    def _refresh_sessions(self, cur: Any, group_id: bytes, now: float) -> None:
        """Run Megolm ``outbound()`` for the current members; queue the shares over Olm."""
        state = self._log(cur, group_id).state
        if not state.is_member(self.me):
            return
        devices: dict[bytes, bytes] = {}
        for member in state.members:
            if member == self.me:
                continue
            device = self._device(cur, member)
            if device is None:
                logger.info("group %s: a member's device is unknown yet", group_id.hex()[:8])
                continue
            devices[device] = member
        _, shares = self.sessions.outbound(group_id, devices, now)
        self._queue_shares(cur, shares, devices)

    def _queue_shares(
        self, cur: Any, shares: Iterable[KeyShare], owners: dict[bytes, bytes]
    ) -> None:
        for share in shares:
            self._queue_direct(cur, owners[share.device], env.GroupKeyShareBody(share.payload))

    def _queue_direct(self, cur: Any, recipient: bytes, body: env.Body) -> None:
        msg = env.new_message(body, lamport=0, sent_at_ms=_ms(self.clock()))
        gs.queue_direct(cur, recipient, env.encode(msg), self.clock())
        self._wake.set()

    def _device(self, cur: Any, identity_key: bytes) -> bytes | None:
        contact = db.get_contact(cur, identity_key)
        if contact is not None:
            return contact.device_key
        card = gs.get_card(cur, identity_key)
        return None if card is None else card[1]

    def _card(self, cur: Any, identity_key: bytes) -> bytes | None:
        if identity_key == self.me:
            return bytes(self.account.contact_code(self.clock()).to_bytes())
        contact = db.get_contact(cur, identity_key)
        if contact is not None:
            return contact.bundle
        card = gs.get_card(cur, identity_key)
        return None if card is None else card[0]

    def _cards(self, cur: Any, members: Iterable[bytes]) -> tuple[bytes, ...]:
        cards = (self._card(cur, m) for m in members)
        return tuple(c for c in cards if c is not None)

    # -- the Olm outbox -----------------------------------------------------------------

    async def run(self) -> None:
        """Send queued direct group bodies until cancelled (undelivered ones stay queued)."""
        while True:
            self._wake = trio.Event()
            now = self.clock()
            with self.db.transaction() as cur:
                due = gs.due_direct(cur, now)
            for row_id, recipient, payload, attempts in due:
                await self._send_direct(row_id, recipient, payload, attempts)
            with self.db.transaction() as cur:
                next_at = gs.next_direct_at(cur)
            delay = 60.0 if next_at is None else max(0.0, next_at - self.clock())
            with trio.move_on_after(delay):
                await self._wake.wait()

    async def _send_direct(self, row_id: int, recipient: bytes, payload: bytes, tries: int) -> None:
        with self.db.transaction() as cur:
            card = self._card(cur, recipient)
        if card is None:
            with self.db.transaction() as cur:
                gs.done_direct(cur, row_id)
            return
        try:
            ok = await self.transmit(card, contact_topic(recipient), payload)
        except BoxlessError as exc:
            logger.info("group key share or ops not sent, will retry: %s", exc)
            ok = False
        with self.db.transaction() as cur:
            if ok:
                gs.done_direct(cur, row_id)
            else:
                backoff = min(RETRY_MAX_S, RETRY_BASE_S * 2**tries)
                gs.retry_direct(cur, row_id, tries + 1, self.clock() + backoff)

    # -- receiving over Olm -------------------------------------------------------------

    def on_direct(self, cur: Any, sender: bytes, device: bytes, msg: env.ChatMessage) -> Any:
        """A group body that arrived over Olm from ``device`` (inside the core's transaction).

        Returns a coroutine of follow-ups (subscribe, catch up, send) or None.
        """
        new_groups: list[bytes] = []
        self._direct(cur, sender, device, msg, new_groups, queue=True)
        if new_groups:
            self._retry_inbox(cur, new_groups)
        self._wake.set()
        if not new_groups:
            return None

        async def follow_up() -> None:
            topics = [group_topic(g) for g in new_groups]
            await self.transport.subscribe(topics)
            for gid in new_groups:
                self.emit({"type": "group", "group": gid.hex()})
            await self.catch_up(topics)

        return follow_up()

    def _direct(
        self,
        cur: Any,
        sender: bytes,
        device: bytes,
        msg: env.ChatMessage,
        new_groups: list[bytes],
        *,
        queue: bool,
    ) -> None:
        body = msg.body
        known = self._device(cur, sender)
        if known is not None and known != device:
            logger.warning("group body from a device that is not the member's; dropped")
            return
        if isinstance(body, env.GroupKeyShareBody):
            try:
                gid = decode_key_share(body.payload).group_id
            except DecodeError:
                logger.info("malformed group key share; dropped")
                return
            if known is None or not gs.has_group(cur, gid):
                self._to_inbox(cur, sender, device, msg, queue)
                return
            if not self._log(cur, gid).state.is_member(sender):
                self._to_inbox(cur, sender, device, msg, queue)
                return
            try:
                self.sessions.add_key_share(sender, device, body.payload)
            except (DecodeError, ValidationError) as exc:
                logger.info("group key share refused: %s", exc)
                return
            self._retry_pending(cur, gid)
        elif isinstance(body, env.GroupOpBody):
            contact = db.get_contact(cur, sender)
            is_contact = contact is not None and contact.state == ContactState.ACCEPTED.value
            if known is None and not is_contact:
                self._to_inbox(cur, sender, device, msg, queue)
                return
            self._direct_ops(cur, sender, body, new_groups)

    def _to_inbox(
        self, cur: Any, sender: bytes, device: bytes, msg: env.ChatMessage, queue: bool
    ) -> None:
        if queue and gs.inbox_size(cur) < MAX_INBOX:
            gs.add_inbox(cur, sender, device, env.encode(msg), _ms(self.clock()))

    def _direct_ops(
        self, cur: Any, sender: bytes, body: env.GroupOpBody, new_groups: list[bytes]
    ) -> None:
        try:
            ops = [decode_op(raw) for raw in body.ops]
        except DecodeError:
            logger.info("group ops with a malformed op; dropped")
            return
        if not ops:
            return
        gid = ops[0].group_id
        if gs.has_group(cur, gid):
            if self._log(cur, gid).state.is_member(sender):
                self._apply_ops(cur, gid, body)
            return
        trial = GroupLog.replay(gid, ops)
        if not (trial.state.is_member(self.me) and trial.state.is_member(sender)):
            logger.info("group ops that do not make us a member; dropped")
            return
        now = self.clock()
        gs.add_group(cur, gid, SdsChannel(gid.hex(), self.me.hex(), now=now).to_state(), _ms(now))
        self._apply_ops(cur, gid, body)
        new_groups.append(gid)
        logger.info("joined group %s", gid.hex()[:8])

    def _apply_ops(self, cur: Any, group_id: bytes, body: env.GroupOpBody) -> None:
        """Add ops (and member cards) to a known group; rotate/share keys if membership moved."""
        log = self._log(cur, group_id)
        before = set(log.state.members)
        for raw in body.ops:
            try:
                op = decode_op(raw)
            except DecodeError:
                continue
            if op.group_id == group_id and op.op_id not in log:
                log.add(op)
                gs.add_op(cur, group_id, op.op_id, raw)
        members = log.state.members
        for card in body.cards:
            try:
                code = self.card_to_code(card, self.clock())
            except InvalidContactCode:
                continue
            if code.identity_key in members and code.identity_key != self.me:
                device = code.bundle.certificate.device_curve25519
                if db.get_contact(cur, code.identity_key) is None:
                    gs.put_card(cur, code.identity_key, card, device)
        if set(members) != before:
            self._refresh_sessions(cur, group_id, self.clock())
            self.emit({"type": "group", "group": group_id.hex()})

    def _retry_inbox(self, cur: Any, new_groups: list[bytes]) -> None:
        for sender, device, raw in gs.take_inbox(cur):
            try:
                msg = env.decode(raw)
            except DecodeError:
                continue
            self._direct(cur, sender, device, msg, new_groups, queue=True)

    # -- receiving on group topics ------------------------------------------------------

    async def catch_up(self, topics: list[str]) -> None:
        """Fetch a group topic's history from store nodes (after joining)."""
        since = time.time_ns() - 7 * 86_400 * 10**9
        try:
            async for item in self.transport.history(topics, since):
                await self.handle(item)
        except BoxlessError as exc:
            logger.info("group catch-up failed: %s", exc)

    async def handle(self, item: Incoming) -> None:
        """One Waku message on a group topic (live or from history)."""
        topic = item.message.content_topic
        try:
            gid = bytes.fromhex(topic[len(_GROUP_PREFIX) :].split("/")[0])
        except ValueError:
            return
        new_groups: list[bytes] = []
        with self.db.transaction() as cur:
            if db.was_seen(cur, item.message_hash):
                return
            db.mark_seen(cur, item.message_hash, _ms(self.clock()))
            if item.message.timestamp:
                db.set_sync(cur, topic, item.message.timestamp)
            if not gs.has_group(cur, gid):
                return
            self._receive(cur, gid, item.message_hash, item.message.payload)
            self._retry_inbox(cur, new_groups)
        self._wake.set()

    def _receive(self, cur: Any, gid: bytes, message_hash: bytes, payload: bytes) -> None:
        try:
            ct = decode_group_message(payload)
            plain = self.sessions.decrypt(gid, None, ct)
        except UnknownGroupSession:
            gs.add_pending(cur, message_hash, gid, payload, _ms(self.clock()))
            return
        except (DecodeError, DuplicateMessage, MessageBeforeKeyShare, TamperedMessage) as exc:
            logger.info("group message dropped: %s", type(exc).__name__)
            return
        log = self._log(cur, gid)
        sender = plain.sender_identity
        if not log.state.is_member(sender):
            logger.info("group message from a non-member; dropped")
            return
        try:
            if decode_message(plain.plaintext).sender_id != sender.hex():
                logger.warning("group message whose SDS sender is not its Megolm sender; dropped")
                return
            sds = self._sds(cur, gid)
            delivered = sds.receive(plain.plaintext, self.clock(), retrieval_hint=message_hash)
        except (DecodeError, ValidationError) as exc:
            logger.info("group message with bad SDS framing: %s", exc)
            return
        delivered += self._give_up_unreadable(cur, sds)
        for d in delivered:
            self._deliver(cur, gid, bytes.fromhex(d.sender_id), d.message_id, d)
        gs.set_sds_state(cur, gid, sds.to_state())

    def _give_up_unreadable(self, cur: Any, sds: SdsChannel) -> list[Any]:
        """Missing dependencies whose Waku message we processed and could not read
        (sent before our key share: before we joined) will never come: let the
        messages waiting on them through. Ones still waiting for a key stay."""
        released: list[Any] = []
        for dep in sds.missing():
            hint = dep.retrieval_hint
            if hint and db.was_seen(cur, hint) and not gs.is_pending(cur, hint):
                released += sds.mark_irretrievable(dep.message_id)
        return released

    def _deliver(self, cur: Any, gid: bytes, sender: bytes, sds_id: str, d: Any) -> None:
        try:
            msg = env.decode(d.content)
        except DecodeError:
            logger.info("group content that is not a chat message; dropped")
            return
        body = msg.body
        if isinstance(body, env.Text):
            row = gs.GroupMessageRow(
                sds_id,
                gid,
                sender,
                False,
                d.lamport_timestamp or 0,
                msg.sent_at_ms,
                _ms(self.clock()),
                body.text,
                "received",
            )
            if gs.add_message(cur, row):
                self.emit({"type": "group_message", "group": gid.hex(), "id": sds_id})
        elif isinstance(body, env.GroupOpBody):
            self._apply_ops(cur, gid, body)

    def _retry_pending(self, cur: Any, gid: bytes) -> None:
        for message_hash, payload in gs.take_pending(cur, gid):
            self._receive(cur, gid, message_hash, payload)


def _ms(now: float) -> int:
    return int(now * 1000)
