"""One user's messenger: the features of the client, composed over one channel.

Theory of operation
-------------------
:class:`Client` builds the direct channel (:mod:`boxless.client.channel`:
Olm + sealed sender out, the one receive pipeline in) and the features that
plug into it, each registering handlers for its own message kinds and owning
its tables and decisions:

- :class:`~boxless.client.conversations.Conversations` — 1:1 messages, the
  outbox, receipts, typing;
- :class:`~boxless.client.contacts.Contacts` — requests, responses, profiles;
- :class:`~boxless.client.groups.GroupManager` — groups (claims the group
  topics and its direct bodies: key shares and ops);
- :class:`~boxless.client.verification.SasManager` — emoji verification;
- :class:`~boxless.client.broadcast.BroadcastManager` — broadcast lists;
- :class:`~boxless.client.bundles.BundleBook` — published device bundles.

The client itself only runs them (one nursery), catches up from store
history, publishes events (typed, :mod:`boxless.client.events`) and keeps the
public API the local API and the CLI call. Adding a message kind: an envelope
entry, a handler registered with ``channel.handlers.on_body`` and a store
module (see docs/architecture.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from boxless._trio_compat import TaskStatus
from boxless.chat import envelope as env
from boxless.chat.pow import DEFAULT_DIFFICULTY
from boxless.chat.requests import ContactEvent, RequestGate
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.attachments import AttachmentManager
from boxless.client.avatars import InvalidAvatar, avatar_mime
from boxless.client.broadcast import BroadcastManager
from boxless.client.bundles import BundleBook
from boxless.client.calls import Calls
from boxless.client.channel import DirectChannel, FollowUp, Received, card_to_code
from boxless.client.chat_settings import ChatSettings
from boxless.client.contacts import Contacts
from boxless.client.conversations import Conversations, UnknownContact
from boxless.client.devices import DeviceManager
from boxless.client.favourites import Favourites
from boxless.client.forward import Forwarder
from boxless.client.group_file_asks import GroupFileAsks
from boxless.client.groups import GroupManager
from boxless.client.links import ShortLinks
from boxless.client.miniapps import MiniApps
from boxless.client.moments import Moments
from boxless.client.nearby import Nearby
from boxless.client.ownsync import OwnDeviceSync
from boxless.client.payments import Payments
from boxless.client.profiles import Profiles
from boxless.client.redenvelopes import RedEnvelopes
from boxless.client.search import Search
from boxless.client.search_index import SearchIndex
from boxless.client.transport import Incoming, Transport
from boxless.client.verification import SasManager
from boxless.crypto.olm_sessions import SessionManager
from boxless.crypto.olm_sessions import migration_files as crypto_migrations
from boxless.crypto.sealed import SealingKeyPair
from boxless.errors import NetworkError
from boxless.fanout import Fanout
from boxless.groups.delivery import GroupTimings
from boxless.identity.account import LocalAccount
from boxless.storage.userdb import migration_files

__all__ = ["Client", "InvalidAvatar", "UnknownContact", "avatar_mime", "card_to_code"]

logger = logging.getLogger(__name__)

CATCH_UP_MARGIN_NS = 120 * 10**9
FIRST_SYNC_WINDOW_NS = 7 * 86_400 * 10**9
CATCH_UP_PROGRESS_EVERY = 500
RECEIVE_BATCH = 100  # messages per commit, live (what is waiting) and from history


class Client:
    """The user's messenger core. Run it with ``await nursery.start(client.run)``."""

    def __init__(
        self,
        account: LocalAccount,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.time,
        pow_difficulty: int | None = None,
        group_timings: GroupTimings | None = None,
    ) -> None:
        self.account = account
        self.transport = transport
        self.clock = clock
        self.db = account.db
        self.db.migrate("crypto", crypto_migrations())
        self.db.migrate("client", db.client_migrations())
        self.db.migrate(
            "group_actions", migration_files("boxless.client", "migrations_group_actions")
        )
        self.db.migrate("search", migration_files("boxless.client", "migrations_search"))
        self.db.migrate("channel", migration_files("boxless.client", "migrations_channel"))
        self.db.migrate(
            "chat_settings", migration_files("boxless.client", "migrations_chat_settings")
        )
        self.db.migrate("attachments", migration_files("boxless.client", "migrations_attachments"))
        self.db.migrate("moments", migration_files("boxless.client", "migrations_moments"))
        self.db.migrate("profiles", migration_files("boxless.client", "migrations_profiles"))
        self.db.migrate("calls", migration_files("boxless.client", "migrations_calls"))
        self.db.migrate(
            "redenvelopes", migration_files("boxless.client", "migrations_redenvelopes")
        )
        self.db.migrate("devices", migration_files("boxless.client", "migrations_devices"))
        self.db.migrate("miniapps", migration_files("boxless.client", "migrations_miniapps"))
        self.db.migrate("stealth", migration_files("boxless.client", "migrations_stealth"))
        self.db.migrate("group_sync", migration_files("boxless.client", "migrations_group_sync"))
        self.me = account.identity.public_key
        self.my_device_key = account.device.certificate.device_curve25519
        self.pow_difficulty = pow_difficulty if pow_difficulty is not None else DEFAULT_DIFFICULTY
        self._events: Fanout[ev.Event] = Fanout(logger, "client event")
        self.ready = trio.Event()
        self.sessions = SessionManager.journaled(  # steps in crypto/ratchet_journal.py
            self.db, account.keystore, self.db.derive_key("olm sessions v1")
        )
        self.bundles = BundleBook(self.db, account, transport, clock)
        self.links = ShortLinks(self.db, account, transport, clock)
        self.channel = DirectChannel(
            database=self.db,
            sessions=self.sessions,
            sealing=SealingKeyPair.from_private_bytes(account.device.sealing_private_key()),
            me=self.me,
            my_device_key=self.my_device_key,
            transport=transport,
            bundles=self.bundles,
            gate=RequestGate(self.me, difficulty=self.pow_difficulty),
            emit=self._emit,
            clock=clock,
        )
        self.devices = DeviceManager(
            self.db,
            account,
            transport,
            megolm_pickle_key=self.db.derive_key("megolm sessions v1"),
            clock=clock,
            emit=self._emit,
        )
        self.channel.devices = self.devices
        self.devices.remember_bundle = lambda b, tie: self.bundles.remember(b, on_tie=tie)
        self.bundles.pass_on = self.devices.take_published  # W17: one read, both kinds
        self.channel.handlers.on_topic(self.devices.owns, self.devices.handle)
        self.conversations = Conversations(self.channel, clock=clock)
        self.contact_book = Contacts(
            account,
            self.channel,
            self.conversations,
            self.bundles,
            clock=clock,
            pow_difficulty=self.pow_difficulty,
        )
        self.profiles = Profiles(self.contact_book, emit=self._emit, clock=clock)
        self.nearby = Nearby(
            account,
            self.channel,
            self.contact_book,
            clock=clock,
            pow_difficulty=self.pow_difficulty,
        )
        self.groups = GroupManager(account, self.channel, clock=clock, timings=group_timings)
        self.channel.handlers.on_topic(self.groups.owns, self.groups.handle)
        self.devices.on_roster = self.groups.direct.roster_changed  # W17: first key shares
        self.channel.handlers.on_body(
            (env.GroupKeyShareBody, env.GroupOpBody), self._group_direct, gated=False
        )
        self.chat_settings = ChatSettings(self.db, self.groups, emit=self._emit, clock=clock)
        self.broadcasts = BroadcastManager(self.conversations, emit=self._emit, clock=clock)
        self.sas = SasManager(
            account, self.channel, self.conversations, self.contact_book, clock=clock
        )
        self.search = Search(
            self.db, account, self.contact_book, self.conversations, self.groups
        )
        self.search_index = SearchIndex(self.db)
        self.favourites = Favourites(self.db, self.search, clock=clock, emit=self._emit)
        self.own_sync = OwnDeviceSync(
            self.channel,
            self.devices,
            self.chat_settings,
            self.contact_book,
            self.profiles,
            self.favourites,
            self._events,
            clock=clock,
        )
        self.forwarder = Forwarder(self.search, self.conversations, self.groups)
        self.attachments = AttachmentManager(
            self.channel, self.conversations, None, groups=self.groups, clock=clock
        )
        self.group_file_asks = GroupFileAsks(
            self.channel, self.groups, self.attachments, clock=clock
        )  # W8: "Ask again" in groups
        self.moments = Moments(
            self.channel, self.conversations, clock=clock, blobs=lambda: self.attachments.transfer
        )
        self.devices.on_own_moment_act = self.moments.own_act  # W6: our acts, other device
        self.calls = Calls(self.channel, self.conversations, clock=clock, groups=self.groups)
        self.payments = Payments(
            account, self.channel, self.conversations, self.groups, clock=clock
        )
        self.redenvelopes = RedEnvelopes(
            account, self.channel, self.conversations, self.groups, clock=clock
        )
        self.miniapps = MiniApps(account, self.channel, self.conversations, clock=clock)

    def _group_direct(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        follow_up = self.groups.on_direct(cur, r.sender, r.device_key, r.message)
        if follow_up is None:
            return None

        async def run() -> None:  # a coroutine, or a coroutine function
            await (follow_up() if callable(follow_up) else follow_up)

        return run


    # -- lifecycle ------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[Client] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, catch up from store history, then serve until cancelled."""
        await self.transport.subscribe(self._topics())
        async with self.transport.incoming() as incoming, trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_loop, incoming)
            nursery.start_soon(self.conversations.run)
            nursery.start_soon(self.groups.run)
            nursery.start_soon(self.bundles.run)
            nursery.start_soon(self.links.run)
            nursery.start_soon(self.sas.run)
            nursery.start_soon(self.attachments.run)
            nursery.start_soon(self.group_file_asks.run)
            nursery.start_soon(self.calls.run)
            nursery.start_soon(self.devices.run)
            await nursery.start(self.own_sync.run)
            nursery.start_soon(self.nearby.run)
            nursery.start_soon(self.payments.run)
            nursery.start_soon(self.redenvelopes.run)
            nursery.start_soon(self.search_index.run)
            task_status.started(self)
            await self.catch_up()
            self.ready.set()
            self._emit(ev.Ready())

    def _topics(self) -> list[str]:
        return self.contact_book.topics() + self.groups.topics() + self.moments.topics()

    async def _receive_loop(self, incoming: trio.MemoryReceiveChannel[Incoming]) -> None:
        """Take what arrives, in batches of what is waiting (a burst: one commit)."""
        async for first in incoming:
            batch = [first]
            while len(batch) < RECEIVE_BATCH:
                try:
                    batch.append(incoming.receive_nowait())
                except trio.WouldBlock:
                    break
            await self.channel.receive_batch(batch)

    async def catch_up(self) -> int:
        """Fetch what arrived while we were offline, from store nodes; return how many.

        Progress is published as :class:`~boxless.client.events.CatchUpProgress`.
        """
        self.search_index.begin()  # texts indexed right after, not in each page's commit
        self.conversations.catching_up(True)
        try:
            return await self._catch_up()
        finally:
            self.conversations.catching_up(False)
            self.search_index.end()

    async def _catch_up(self) -> int:
        """Pages are fetched one batch ahead of the one being processed (the next
        store round trip overlaps the decrypting and storing), never more."""
        total = 0
        send, recv = trio.open_memory_channel[list[Incoming]](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fetch_history, send)
            async with recv:
                async for batch in recv:
                    total = await self._caught_up(batch, total)
        self._emit(ev.CatchUpProgress(total, True))
        return total

    async def _fetch_history(self, out: trio.MemorySendChannel[list[Incoming]]) -> None:
        """Each topic's history since its sync point, in batches of RECEIVE_BATCH:
        with an unbuffered channel, one batch waits here while one is processed."""
        now_ns = int(self.clock() * 1e9)
        async with out:
            for topic in self._topics():
                with self.db.transaction() as cur:
                    last = db.get_sync(cur, topic)
                since = (last - CATCH_UP_MARGIN_NS) if last else now_ns - FIRST_SYNC_WINDOW_NS
                batch: list[Incoming] = []
                try:
                    async for item in self.transport.history([topic], since):
                        batch.append(item)
                        if len(batch) >= RECEIVE_BATCH:
                            await out.send(batch)
                            batch = []
                except NetworkError as exc:
                    logger.info("catch-up on a topic failed: %s", exc)
                    self._emit(ev.Connectivity(False, str(exc)))
                if batch:
                    await out.send(batch)

    async def _caught_up(self, batch: list[Incoming], total: int) -> int:
        if not batch:
            return total
        await self.channel.receive_batch(batch)
        done = total + len(batch)
        if done // CATCH_UP_PROGRESS_EVERY > total // CATCH_UP_PROGRESS_EVERY:
            self._emit(ev.CatchUpProgress(done, False))
        return done

    # -- events ---------------------------------------------------------------------

    @asynccontextmanager
    async def events(
        self, buffer: int = 1024
    ) -> AsyncIterator[trio.MemoryReceiveChannel[ev.Event]]:
        """Every client event while the context is open (see :mod:`boxless.client.events`)."""
        async with self._events.listen(buffer) as recv:
            yield recv

    def _emit(self, event: ev.Event) -> None:
        self._events.publish(event)

    # -- the public API (the local API and the CLI call these) -----------------------

    def contacts(self) -> list[db.ContactRow]:
        """Every contact, named by the user's alias where it has one (starred first)."""
        return self.profiles.with_aliases(self.contact_book.contacts())

    def find_contact(self, who: str) -> db.ContactRow:
        return self.profiles.find(who) or self.contact_book.find(who)

    async def add_contact(self, link: str, intro: str = "") -> db.ContactRow:
        """Add by a long link, or a short one whose card is fetched first (links.py)."""
        return await self.contact_book.add(await self.links.long_contact_link(link), intro)

    async def respond(self, identity_key: bytes, event: ContactEvent) -> db.ContactRow:
        return await self.contact_book.respond(identity_key, event)

    def confirm_verified(self, identity_key: bytes) -> db.ContactRow:
        return self.contact_book.confirm_verified(identity_key)

    async def set_display_name(self, name: str) -> None:
        await self.contact_book.set_display_name(name)
        self.links.wake()

    async def set_avatar(self, image: bytes) -> None:
        await self.contact_book.set_avatar(image)

    async def send_text(
        self, identity_key: bytes, text: str, reply_to: bytes | None = None
    ) -> bytes:
        return await self.conversations.send_text(identity_key, text, reply_to)

    async def edit(self, message_id: bytes, text: str) -> None:
        await self.conversations.edit(message_id, text)

    async def delete(self, message_id: bytes) -> None:
        await self.conversations.delete(message_id)

    async def react(self, message_id: bytes, emoji: str, remove: bool = False) -> None:
        await self.conversations.react(message_id, emoji, remove)

    async def typing(self, identity_key: bytes, typing: bool) -> None:
        await self.conversations.typing(identity_key, typing)

    async def mark_read(self, identity_key: bytes) -> int:
        return await self.conversations.mark_read(identity_key)

    def messages(
        self, identity_key: bytes, limit: int = 50, before_lamport: int | None = None
    ) -> list[db.MessageRow]:
        return self.conversations.messages(identity_key, limit, before_lamport)

    def message(self, message_id: bytes) -> db.MessageRow | None:
        return self.conversations.message(message_id)
