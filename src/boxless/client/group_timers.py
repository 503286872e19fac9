"""The group feature's background work: the direct outbox, SDS timers, repair, expiry.

The adapter of :class:`~boxless.groups.delivery.GroupClock`: one loop sleeps
until the clock's next deadline (or a wake-up; with no deadline -- no groups,
nothing queued, nothing missing -- only until woken), fires due SDS timers
(re-sends, sync messages), repairs groups with missing messages from the
store (by hash, else a time window), asks for keys that did not come and
forgets expired queue rows; another sends the queued direct bodies with the
schedule of :class:`~boxless.chat.outbox.Outbox`. Cancelling ``run``
stops both; what is queued stays in the database for the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from boxless.chat.outbox import Outbox, OutboxEntry, OutboxRow
from boxless.chat.topics import contact_topic, group_topic
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.group_core import GroupCore, ms
from boxless.client.group_topic import GroupTopic
from boxless.client.transport import Incoming
from boxless.errors import BoxlessError
from boxless.groups.delivery import (
    key_deadline,
    outbox_sleep,
    should_give_up,
)

logger = logging.getLogger("boxless.client.groups")

OUTBOX_BATCH = 100  # direct bodies sent per round

Receive = Callable[[Incoming], Awaitable[None]]


class GroupTimers:
    """Runs the group timers (see the module doc)."""

    def __init__(self, core: GroupCore, topic: GroupTopic, receive: Receive) -> None:
        self.core = core
        self.topic = topic
        self.receive = receive  # a group topic message fetched for repair, as if live
        self.rounds = {"sds": 0, "outbox": 0}  # wake-ups of each loop (diagnostics, tests)

    async def run(self) -> None:
        """Run the group background work until cancelled."""
        with self.core.db.transaction() as cur:
            for gid in gs.group_ids(cur):
                if self.core.log(cur, gid).state.is_member(self.core.me):
                    self.core.save_sds(cur, gid, self.core.sds(cur, gid))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._outbox_loop)
            nursery.start_soon(self._sds_loop)

    async def _sds_loop(self) -> None:
        """Fire due SDS timers (re-send unacknowledged messages, sync when quiet),
        repair (fetch what members' causal histories name but we never got), ask for
        keys that did not come, forget expired queue rows; then sleep until the next
        of those deadlines, or until woken if there is none (no groups: no wake-ups)."""
        while True:
            self.core.sds_wake = trio.Event()
            self.rounds["sds"] += 1
            self.core.gclock.disarm()
            now = self.core.clock()
            fire, repair = self.core.gclock.due(now)
            for gid in fire:
                await self._fire_timer(gid, now)
            for gid in repair:
                await self._repair(gid)
            self.topic.ask_for_keys(now)
            expiry = self._expire_queues(now)
            waiting = (t for unknown in self.core.unknown.values() for t in unknown.values())
            keys = key_deadline(waiting, self.core.timings)
            also = [t for t in (expiry, keys) if t is not None]
            now = self.core.clock()
            delay = self.core.gclock.get_timer(now, also)
            self.core.gclock.arm(now, delay)  # a change before then wakes it (wake_timers)
            await _sleep(delay, self.core.sds_wake)

    async def _fire_timer(self, group_id: bytes, now: float) -> None:
        with self.core.db.transaction() as cur:
            if not self.core.log(cur, group_id).state.is_member(self.core.me):
                self.core.gclock.set_timer(group_id, None)
                return
            sds = self.core.sds(cur, group_id)
            due = sds.handle_timer(now)
            cts = [self.core.encrypt(cur, group_id, w.data, now) for w in due]
            self.core.save_sds(cur, group_id, sds)
        sent = [await self.core.send_group(group_id, ct) for ct in cts]
        with self.core.db.transaction() as cur:  # our own echo is not a message to read
            for result in sent:
                if result is not None:
                    db.mark_seen(cur, result.message_hash, ms(self.core.clock()))

    async def _repair(self, group_id: bytes) -> None:
        """Fetch the missing messages from the store (they may be there even if the
        live path lost them): by their Waku hashes (the SDS retrieval hints), and,
        for any named without a hint, the group topic around the gap. Give up on
        what never comes."""
        since = self.core.gclock.take_repair(group_id, self.core.clock())
        topic = group_topic(group_id)
        with self.core.db.transaction() as cur:
            missing = self.core.sds(cur, group_id).missing()
            hints = [
                m.retrieval_hint
                for m in missing
                if m.retrieval_hint and not db.was_seen(cur, m.retrieval_hint)
            ]
        unhinted = any(not m.retrieval_hint for m in missing)
        fetched = 0
        try:
            if hints:
                async for item in self.core.transport.fetch(topic, hints):
                    fetched += 1
                    await self.receive(item)
            if unhinted:
                start = int((since - self.core.timings.repair_lookback_s) * 1e9)
                async for item in self.core.transport.history([topic], start):
                    fetched += 1
                    await self.receive(item)
        except BoxlessError as exc:
            logger.info("group repair from the store failed: %s", exc)
        with self.core.db.transaction() as cur:
            sds = self.core.sds(cur, group_id)
            stale = [m for m in sds.missing() if m.since <= since]
            released: list[Any] = self.topic.give_up_unreadable(cur, sds)
            for dep in stale:  # not in the store either: members' re-sends may still come
                if should_give_up(self.core.timings, dep.since, self.core.clock()):
                    released += sds.mark_irretrievable(dep.message_id)
            for d in released:
                self.topic.deliver(cur, group_id, bytes.fromhex(d.sender_id), d.message_id, d)
            self.core.save_sds(cur, group_id, sds)
            if sds.missing():
                self.core.gclock.retry_repair(group_id, self.core.clock())
        logger.info(
            "group %s repair: %d by hash, %s; %d messages from the store",
            group_id.hex()[:8],
            len(hints),
            "and a time window" if unhinted else "no time window",
            fetched,
        )

    def _expire_queues(self, now: float) -> float | None:
        """Forget expired inbox and pending rows; when the next one expires."""
        limits = self.core.timings.limits
        with self.core.db.transaction() as cur:
            gone = gs.expire_queues(
                cur, ms(now - limits.inbox_expiry_s), ms(now - limits.pending_expiry_s)
            )
            oldest = gs.oldest_queued(cur)
        if gone:
            logger.info("group queues: %d expired rows forgotten", gone)
        return limits.expiry_deadline(*oldest)

    async def _outbox_loop(self) -> None:
        """Send queued direct group bodies until cancelled (undelivered ones stay queued).

        The schedule is :class:`~boxless.chat.outbox.Outbox`'s, rebuilt from the due
        rows each round (the database stays the one truth: a body queued in a
        transaction that rolled back is never sent); a body leaves once the network
        took it (no receipts for group bodies)."""
        while True:
            self.core.wake = trio.Event()
            self.rounds["outbox"] += 1
            now = self.core.clock()
            policy = self.core.retry_policy
            with self.core.db.transaction() as cur:
                rows = gs.due_direct(cur, now, OUTBOX_BATCH)
                outbox = Outbox.from_rows(rows, now=now, policy=policy)
                due = outbox.due(now)
                for entry in due:  # leased: not handed out again while in flight
                    gs.put_direct(cur, _row(outbox, entry.message_id))
            for entry in due:
                await self._send_direct(outbox, entry)
            with self.core.db.transaction() as cur:
                next_at = gs.next_direct_at(cur)
            delay = outbox_sleep(next_at, self.core.clock(), self.core.timings)
            await _sleep(0.0 if len(due) == OUTBOX_BATCH else delay, self.core.wake)

    async def _send_direct(self, outbox: Outbox, entry: OutboxEntry) -> None:
        recipient = entry.recipient
        with self.core.db.transaction() as cur:
            card = self.core.card(cur, recipient)
        ok = False
        if card is not None:
            try:
                ok = await self.core.send_olm(card, contact_topic(recipient), entry.payload)
            except BoxlessError as exc:
                logger.info("group key share or ops not sent, will retry: %s", exc)
        with self.core.db.transaction() as cur:
            if ok or card is None:  # sent, or nobody to send it to any more
                gs.done_direct(cur, entry.message_id)
            else:
                outbox.on_send_failed(entry.message_id, self.core.clock())
                gs.put_direct(cur, _row(outbox, entry.message_id))


async def _sleep(delay: float | None, wake: trio.Event) -> None:
    """Until ``wake`` is set or ``delay`` seconds passed (None: no time limit)."""
    if delay is None:
        await wake.wait()
        return
    with trio.move_on_after(delay):
        await wake.wait()


def _row(outbox: Outbox, message_id: bytes) -> OutboxRow:
    row = outbox.row(message_id)
    assert row is not None  # a failed send stays queued; only REJECTED would settle it
    return row
