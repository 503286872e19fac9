"""Group bodies over Olm: key shares, ops, join requests by link, requests, the inbox.

Theory of operation
-------------------
The Olm session proves the sender *device*; it must be the identity's device
as we know it (a contact's, or the card an op brought). Then:

* a ``GroupKeyShareBody`` is a Megolm key (stored if :func:`authorize` lets
  the sender share keys in that group) or, marked by its payload, a
  :class:`~boxless.groups.requests.GroupRequest` from a member for ops by id
  or a re-share of our session (answered at most once per interval per member);
* a ``GroupOpBody`` is a join request by link (judged with our real clock and
  :meth:`GroupLog.admit` before anything is kept), ops of a group we are in
  (from a member), or the log of a group that makes us a member.

A body from a device we cannot place yet waits in the inbox, within its
sender's share (:class:`~boxless.groups.delivery.QueueLimits`), and is tried
again only when something that could place it arrives
(:meth:`GroupDirect.retry_inbox`): its sender's card, for a device we could
not place (a stranger's junk is never touched again); a newer device roster of
its sender, for a body from a member's device we did not know (a device linked
after we met the member: its first key share); ops of its group, for a known
device that is not a member there yet. Never on every message.
"""

from __future__ import annotations

import logging

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.group_core import (
    Cursor,
    GroupCore,
    member_cards,
    ms,
)
from boxless.client.group_topic import GroupTopic
from boxless.crypto.megolm import decode_key_share, session_id_bytes
from boxless.errors import DecodeError, UsageError, ValidationError
from boxless.groups import (
    GroupLog,
    Join,
    OpStatus,
    check_token_fresh,
    decode_group_link,
    decode_op,
    encode_op,
)
from boxless.groups.auth import Action, Target, authorize
from boxless.groups.requests import decode_request, is_request
from boxless.identity.contact_code import InvalidContactCode
from boxless.sync import SdsChannel

logger = logging.getLogger("boxless.client.groups")


class GroupDirect:
    """Receives the group bodies that come over Olm (see the module doc)."""

    def __init__(self, core: GroupCore, topic: GroupTopic) -> None:
        self.core = core
        self.topic = topic
        self._read: set[bytes] = set()  # identities whose roster was just stored

    def receive(
        self, cur: Cursor, sender: bytes, device: bytes, msg: env.ChatMessage
    ) -> list[bytes]:
        """A group body that arrived over Olm from ``device`` (inside the caller's
        transaction); returns the groups it made us join."""
        new_groups: list[bytes] = []
        self._direct(cur, sender, device, msg, new_groups, queue=True)
        self.retry_inbox(cur, new_groups)
        return new_groups

    def _direct(
        self,
        cur: Cursor,
        sender: bytes,
        device: bytes,
        msg: env.ChatMessage,
        new_groups: list[bytes],
        *,
        queue: bool,
    ) -> None:
        body = msg.body
        known = self.core.device(cur, sender)
        if known != device and self._linked(cur, sender, device):
            known = device  # another device its identity certified (client/devices.py)
        if known is not None and known != device:
            devices = self.core.channel.devices
            if devices is None or devices.revoked(cur, sender, device) or sender in self._read:
                logger.warning("group body from a device that is not the member's; dropped")
                return
            # a new linked device of a member who is not our contact? Kept (within the
            # sender's inbox share) until its roster is read (:meth:`roster_changed`)
            logger.info("group body from an unknown device of a member; kept until its roster")
            devices.watch(sender)
            self._to_inbox(cur, sender, device, None, msg, queue)
            return
        if isinstance(body, env.GroupKeyShareBody) and is_request(body.payload):
            if known is not None:
                self._answer(cur, sender, device, body.payload)
            else:
                self._unplaced_request(cur, sender, body.payload)
        elif isinstance(body, env.GroupKeyShareBody):
            self._key_share(cur, sender, device, known, msg, queue)
        elif isinstance(body, env.GroupOpBody):
            if self._join_request(cur, sender, device, body):
                return
            contact = db.get_contact(cur, sender)
            is_contact = contact is not None and contact.state == ContactState.ACCEPTED.value
            if known is None and not is_contact and not self._awaited(cur, sender, device, body):
                self._to_inbox(cur, sender, device, None, msg, queue)
                return
            self._direct_ops(cur, sender, device, body, new_groups)

    def _linked(self, cur: Cursor, sender: bytes, device: bytes) -> bool:
        """One of the sender's (or our own) other devices, certified in its roster."""
        devices = self.core.channel.devices
        return devices is not None and devices.certified(cur, sender, device)

    def _key_share(
        self,
        cur: Cursor,
        sender: bytes,
        device: bytes,
        known: bytes | None,
        msg: env.ChatMessage,
        queue: bool,
    ) -> None:
        assert isinstance(msg.body, env.GroupKeyShareBody)
        try:
            gid = decode_key_share(msg.body.payload).group_id
        except DecodeError:
            logger.info("malformed group key share; dropped")
            return
        state = self.core.log(cur, gid).state if gs.has_group(cur, gid) else None
        if known is None:  # placed when its sender's card arrives
            self._to_inbox(cur, sender, device, None, msg, queue)
            return
        if authorize(state, sender, Action.KEY_SHARE) is not None:  # when the group moves
            self._to_inbox(cur, sender, device, gid, msg, queue)
            return
        try:
            share = self.core.sessions.add_key_share(sender, device, msg.body.payload)
        except (DecodeError, ValidationError) as exc:
            logger.info("group key share refused: %s", exc)
            return
        self.topic.retry_pending(cur, gid, session_id_bytes(share.session_id))

    def _answer(self, cur: Cursor, sender: bytes, device: bytes, payload: bytes) -> None:
        """A member asks for ops by id or a re-share of our session (rate-limited per member)."""
        try:
            request = decode_request(payload)
        except DecodeError as exc:
            logger.info("malformed group request: %s", exc)
            return
        gid = request.group_id
        state = self.core.log(cur, gid).state if gs.has_group(cur, gid) else None
        refused = authorize(state, sender, Action.REQUEST)
        if refused is not None or not self.core.answers.allow((gid, sender), self.core.clock()):
            logger.info("group request not answered: %s", refused or "too many")
            return
        log = self.core.log(cur, gid)
        ops = [o for o in (log.get(i) for i in request.ops) if o is not None]
        if ops:  # with the cards of the members they let in (the asker may lack them)
            cards = member_cards(cur, self.core, ops)
            self.core.queue_direct(
                cur, sender, env.GroupOpBody(tuple(encode_op(o) for o in ops), cards)
            )
        for session_id in request.sessions:
            share = self.core.sessions.reshare(gid, session_id, device)
            if share is not None:
                self.core.queue_direct(cur, sender, env.GroupKeyShareBody(share.payload))

    def _unplaced_request(self, cur: Cursor, sender: bytes, payload: bytes) -> None:
        """A request from a device we cannot place: not answered (we cannot check the
        device), but if its sender is a member of that group we lack the member's
        card -- ask for it (rate-limited), so we can share our key with them."""
        try:
            gid = decode_request(payload).group_id
        except DecodeError:
            return
        if gs.has_group(cur, gid) and self.core.log(cur, gid).state.is_member(sender):
            self.core.ask_for_cards(cur, gid, [sender])

    def _awaited(self, cur: Cursor, sender: bytes, device: bytes, body: env.GroupOpBody) -> bool:
        """Ops from the admin whose group link we used, from the device the link named."""
        gid = _ops_group(body)
        for join in gs.list_joins(cur):
            if join.group_id != gid or join.admin != sender:
                continue
            try:
                link = decode_group_link(join.link, join.requested_at_ms / 1000)
            except UsageError:
                return False
            return link.admin_bundle.certificate.device_curve25519 == device
        return False

    def _join_request(
        self, cur: Cursor, sender: bytes, device: bytes, body: env.GroupOpBody
    ) -> bool:
        """A Join op by link for a group we admin, with the joiner's card: let them in.

        The token is checked against our real clock here; the op itself by every
        member's log (the token's issuer must have been an admin at its heads).
        Judged before it is added: a refused Join never enters our log (it would
        become a head our next op names, which no other member could ever fetch).
        Returns False if this is not a join request (handled as ordinary ops).
        """
        if len(body.ops) != 1 or len(body.cards) != 1:
            return False
        try:
            op = decode_op(body.ops[0])
        except DecodeError:
            return False
        if not isinstance(op.body, Join) or op.author != sender:
            return False
        gid = op.group_id
        if not gs.has_group(cur, gid):
            logger.info("join request for a group we are not in; dropped")
            return True
        log = self.core.log(cur, gid)
        if not log.state.is_admin(self.core.me) or op.op_id in log:
            return True
        try:
            check_token_fresh(op.body.token, self.core.clock())
            code = self.core.card_to_code(body.cards[0], self.core.clock())
        except (UsageError, InvalidContactCode) as exc:
            logger.info("join request refused: %s", exc)
            return True
        if code.identity_key != sender or code.bundle.certificate.device_curve25519 != device:
            logger.warning("join request whose card is not the sender's device; dropped")
            return True
        verdict = log.admit(op, only_applied=True)  # judged first: a refused Join is not kept
        if verdict.status is not OpStatus.APPLIED or not log.state.is_member(sender):
            logger.info("join request refused by the group's rules: %s", verdict.reason)
            return True
        gs.add_op(cur, gid, op.op_id, body.ops[0])
        if db.get_contact(cur, sender) is None:
            gs.put_card(cur, sender, body.cards[0], device)
        self.core.add_event(cur, gid, op)
        self.core.admit_member(cur, gid, sender, self.core.clock())
        self.core.announce.append((gid, env.GroupOpBody(body.ops, body.cards)))
        self.core.changed(gid)
        logger.info("admitted a member to group %s by link", gid.hex()[:8])
        return True

    def _to_inbox(
        self,
        cur: Cursor,
        sender: bytes,
        device: bytes,
        group_id: bytes | None,
        msg: env.ChatMessage,
        queue: bool,
    ) -> None:
        """Keep a body we cannot place yet, within the sender's share of the inbox.

        The share is the sending *device*'s (the one Olm proved), not the claimed
        identity's: a stranger's device that claims to be a member (believed only
        once the member's roster is read, ~60 s) fills its own share, never the
        member's real devices' (W6; the total cap still bounds every sender)."""
        if not queue:
            return
        limits = self.core.timings.limits
        if not limits.inbox_admits(*gs.inbox_counts_of_device(cur, sender, device)):
            logger.debug("group inbox: no room for this sender; dropped")
            return
        gs.add_inbox(cur, sender, device, group_id, env.encode(msg), ms(self.core.clock()))
        self.core.wake_timers(self.core.clock() + self.core.timings.limits.inbox_expiry_s)

    def _direct_ops(
        self,
        cur: Cursor,
        sender: bytes,
        device: bytes,
        body: env.GroupOpBody,
        new_groups: list[bytes],
    ) -> None:
        try:
            ops = [decode_op(raw) for raw in body.ops]
        except DecodeError:
            logger.info("group ops with a malformed op; dropped")
            return
        gid = ops[0].group_id
        if gs.has_group(cur, gid):
            refused = authorize(self.core.log(cur, gid).state, sender, Action.OPS)
            if refused is None:
                self.core.apply_ops(cur, gid, body, sender)
            else:
                logger.info("group ops dropped: %s", refused)
            return
        trial = GroupLog.replay(gid, ops)
        invites_us = trial.state.is_member(self.core.me) and trial.state.is_member(sender)
        if authorize(None, sender, Action.OPS, Target(invites_us=invites_us)) is not None:
            logger.info("group ops that do not make us a member; dropped")
            return
        now = self.core.clock()
        gs.add_group(
            cur,
            gid,
            SdsChannel(
                gid.hex(), self.core.me.hex(), now=now, config=self.core.sds_config
            ).to_state(),
            ms(now),
        )
        gs.drop_join(cur, gid)
        self.core.apply_ops(cur, gid, body, sender)
        new_groups.append(gid)
        logger.info("joined group %s", gid.hex()[:8])

    def roster_changed(self, cur: Cursor, identity_key: bytes) -> None:
        """A newer device roster of ``identity_key`` was stored: bodies its new devices
        sent before we knew them are placed now (or dropped if still not certified)."""
        self.core.carded.add(identity_key)
        self._read.add(identity_key)  # its devices the roster does not list: dropped now
        try:
            self.retry_inbox(cur, [])
        finally:
            self._read.discard(identity_key)

    def retry_inbox(self, cur: Cursor, new_groups: list[bytes]) -> None:
        """Re-process the inbox rows that what just happened could place: rows of groups
        whose ops changed (or that we joined) and rows from members whose card arrived.
        Never the whole inbox: junk rows cost nothing until their group or sender moves."""
        for _ in range(4):  # a placed row can place others (it made us join); bounded
            groups = self.core.touched | set(new_groups)
            senders = set(self.core.carded)
            self.core.touched.clear()
            self.core.carded.clear()
            if not groups and not senders:
                return
            for sender, device, raw in gs.take_inbox_for(cur, groups, senders):
                try:
                    msg = env.decode(raw)
                except DecodeError:
                    continue
                self._direct(cur, sender, device, msg, new_groups, queue=True)


def _ops_group(body: env.GroupOpBody) -> bytes | None:
    """The group of a body's first op (None if it does not decode)."""
    try:
        return decode_op(body.ops[0]).group_id
    except DecodeError:
        return None
