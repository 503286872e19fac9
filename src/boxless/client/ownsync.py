"""Own-device sync, the plug-in: chat-list flags, group read positions, what the user
keeps about contacts (alias, tags, note, star), blocks and favourites follow the
user across their devices, live.

Theory of operation
-------------------
Decisions in :mod:`boxless.client.ownsync_core` (what a key is, who may set
it, who wins); SQL in :mod:`boxless.client.ownsync_store`; the wire body
:class:`boxless.chat.ownsync.OwnSync`.

- **Out.** This plug-in listens to the client's own events (no feature calls
  it): a ``chat_settings``, ``group``, ``contact`` or ``favourites`` event
  names a chat (or a saved message) whose settings may have changed. It reads the chat's flags (pinned, muted, marked
  unread), for a group our read position, for a contact our notes on it and
  whether it is blocked, and compares them with the registers: a
  difference is a change made on this device, which takes a new clock and is
  sent, in one OwnSync, to each of our other certified devices over Olm on
  our own contact topic (``DirectChannel.fan_out`` to our identity; store
  nodes keep it for a device that is offline). On start it compares every
  chat once (a change whose event was not handled before a stop).
- **In.** An OwnSync is applied only when it comes from one of *our*
  certified, unrevoked devices (the channel's own-device path checks the
  roster; :func:`~boxless.client.ownsync_core.authorise` checks again);
  from anyone else it is dropped and counted (:attr:`OwnDeviceSync.refused`).
  Each entry that wins over its register (last writer by clock, then device
  key; a read position only forward) sets the register in the receive
  transaction; the flags, notes and blocks are then applied through
  :class:`ChatSettings`, :class:`Profiles` and :class:`Contacts` (after commit,
  which check the values as the user's own), whose events find the setting
  equal to its register, so nothing echoes back. A read position moves the
  group's read marker at once.
- **Not synced** (docs/devices.md): drafts (work in progress on one device;
  one keystroke at a time would race the other device's typing), deleting a
  chat for me (a per-device clean-up). Favourites saved before the devices
  were linked are not compared on start (thousands; the link's snapshot has
  them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import trio

from boxless._trio_compat import TaskStatus
from boxless.chat import envelope as env
from boxless.chat.ownsync import MAX_ENTRIES, MAX_VALUE_BYTES, OwnSync, SyncEntry
from boxless.chat.requests import ContactEvent, ContactState
from boxless.chat.topics import contact_topic
from boxless.client import events as ev
from boxless.client import group_store as gs
from boxless.client import ownsync_core as core
from boxless.client import ownsync_store as store
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.chat_settings import ChatSettings, parse_chat
from boxless.client.contacts import Contacts
from boxless.client.devices import DeviceManager
from boxless.client.favourites import Favourites, NoSuchFavourite
from boxless.client.profiles import Profiles
from boxless.errors import NetworkError, UsageError
from boxless.fanout import Fanout
from boxless.storage.userdb import Cursor

__all__ = ["OwnDeviceSync"]

logger = logging.getLogger(__name__)

EVENT_BUFFER = 1024
RETRY_S = 30.0  # a change not sent yet (network down, other devices' bundles unread)
MAX_UNSENT = 1024
MAX_BATCH_BYTES = 48 * 1024  # values per OwnSync message (each at most 4 KiB)
MAX_REGISTERS = 200_000  # settings kept; past it another device's new keys are refused
_FLAGS = (("pinned", "pinned"), ("muted", "muted"), ("unread", "marked_unread"))
_NOTES = ("alias", "tags", "note", "starred")


class OwnDeviceSync:
    """Chat-list flags and group read positions synced between our devices."""

    def __init__(
        self,
        channel: DirectChannel,
        devices: DeviceManager,
        chat_settings: ChatSettings,
        contacts: Contacts,
        profiles: Profiles,
        favourites: Favourites,
        events: Fanout[ev.Event],
        *,
        clock: Callable[[], float],
    ) -> None:
        self.channel = channel
        self.devices = devices
        self.chat_settings = chat_settings
        self.contacts = contacts
        self.profiles = profiles
        self.favourites = favourites
        self.events = events
        self.clock = clock
        self.db = channel.db
        self.me = channel.me
        self.my_device_key = channel.my_device_key
        self.refused = 0  # syncs dropped: not from one of our certified devices
        self.refused_entries = 0  # entries dropped: a clock far ahead of ours
        self.sent = 0
        self._unsent: set[str] = set()  # chats whose change is to be sent again
        channel.handlers.on_body((OwnSync,), self._on_sync, gated=False)

    # -- out ------------------------------------------------------------------------

    async def run(self, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Compare every chat once, then follow the client's events; what could not
        be sent is tried again every :data:`RETRY_S` (cancel to stop)."""
        async with self.events.listen(EVENT_BUFFER) as recv:
            task_status.started()
            await self.sync_chats(self._all_chats())
            while True:
                chats: set[str | None] = set()
                with trio.move_on_after(RETRY_S if self._unsent else float("inf")):
                    chats.add(_chat_of(await recv.receive()))
                while True:  # what queued meanwhile goes in the same round
                    try:
                        chats.add(_chat_of(recv.receive_nowait()))
                    except trio.WouldBlock:
                        break
                chats |= set(self._unsent)
                self._unsent.clear()
                await self.sync_chats(c for c in chats if c is not None)

    async def sync_chats(self, chats: Iterable[str]) -> int:
        """Send what changed on this device in ``chats``; how many settings went.

        The registers take the new values only once the network took them (or
        when we have no other device), so a send that failed, or one to devices
        whose bundles we did not read yet, is tried again (:meth:`run`); a register another device moved meanwhile is left as
        it is (its change is newer)."""
        changes: dict[str, tuple[core.Register, core.Register]] = {}
        now_ms = int(self.clock() * 1000)
        chats = sorted(set(chats))
        for chat in chats:
            try:
                current = self._current(chat)
            except UsageError:
                continue  # the chat is gone (a group left, a contact removed)
            with self.db.transaction() as cur:
                for key, value in current.items():
                    held = store.get_register(cur, key)
                    new = core.local_change(held, value, now_ms, self.my_device_key)
                    if new is not None and _sendable(key, new.value):
                        changes[key] = (held, new)
        if not changes:
            return 0
        others = self.devices.others(self.me, self.my_device_key)
        if not others and self._linked():
            self._later(chats)  # our roster lists devices whose bundles we lack yet
            return 0
        if others:
            entries = [SyncEntry(key, new.value, new.clock) for key, (_, new) in changes.items()]
            try:
                for batch in _batches(entries):
                    msg = env.new_message(OwnSync(batch), lamport=0, sent_at_ms=now_ms)
                    await self.channel.fan_out(
                        self.me,
                        self.my_device_key,
                        contact_topic(self.me),
                        env.encode(msg),
                        watch=False,
                    )
                    self.sent += 1
            except NetworkError as exc:
                logger.info("sending our settings to our other devices failed: %s", exc)
                self._later(chats)
                return 0
        with self.db.transaction() as cur:
            for key, (held, new) in changes.items():
                if store.get_register(cur, key) == held:
                    store.put_register(cur, key, new)
        return len(changes)

    def _later(self, chats: Iterable[str]) -> None:
        for chat in chats:
            if len(self._unsent) < MAX_UNSENT:
                self._unsent.add(chat)

    def _linked(self) -> bool:
        """Whether our roster lists an active device other than this one."""
        return any(d.curve25519 != self.my_device_key for d in self.devices.roster().devices)

    def _current(self, chat: str) -> dict[str, object]:
        if chat.startswith("fav:"):  # "fav:<chat>:<message id>": a saved message
            kind, hex_key, message_id = chat.removeprefix("fav:").split(":", 2)
            name = f"{kind}:{hex_key}"
            with self.db.transaction() as cur:
                saved = store.favourite_id(cur, name, message_id) is not None
            return {core.setting_key(name, "fav:" + message_id): saved}
        if chat.startswith("notes:"):  # "notes:contact:<hex>": our notes on a contact
            contact = chat.removeprefix("notes:")
            _, key = parse_chat(contact)
            row, _, notes = self.profiles.contact(key)  # UnknownContact if it is not here
            values: dict[str, object] = {
                core.setting_key(contact, name): getattr(notes, name) for name in _NOTES
            }
            values[core.setting_key(contact, "tags")] = list(notes.tags)
            blocked = row.state == ContactState.BLOCKED.value
            values[core.setting_key(contact, "blocked")] = blocked
            return values
        return self._chat_flags(chat)

    def _chat_flags(self, chat: str) -> dict[str, object]:
        setting = self.chat_settings.get(chat)  # UnknownChat if it is not here
        values = {core.setting_key(chat, name): getattr(setting, attr) for name, attr in _FLAGS}
        kind, key = parse_chat(chat)
        if kind == "group":
            with self.db.transaction() as cur:
                read_seq = gs.meta(cur, key).read_seq
                lamport = gs.newest_read_lamport(cur, key, read_seq)
            if lamport is not None:
                values[core.setting_key(chat, "read")] = lamport
        return values

    def _all_chats(self) -> list[str]:
        """Every chat with flags, every group, and every contact (its flags as a
        chat, "contact:<hex>", and its notes, "notes:contact:<hex>")."""
        with self.db.transaction() as cur:
            groups = [f"group:{g.hex()}" for g in gs.group_ids(cur)]
        contacts = [c.identity_key.hex() for c in self.contacts.contacts()]
        return sorted(
            set(self.chat_settings.all())
            | set(groups)
            | {f"contact:{k}" for k in contacts}
            | {f"notes:contact:{k}" for k in contacts}
        )

    # -- in -------------------------------------------------------------------------

    def _on_sync(self, cur: Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, OwnSync)
        certified = r.sender == self.me and self.devices.certified(cur, self.me, r.device_key)
        refused = core.authorise(self.me, r.sender, r.device_key, self.my_device_key, certified)
        if refused is not None:
            self.refused += 1
            logger.info("an own-device sync was refused: %s", refused)
            return None
        flags: dict[str, dict[str, bool]] = {}
        notes: dict[bytes, dict[str, object]] = {}
        blocks: dict[bytes, bool] = {}
        favs: dict[tuple[str, str], bool] = {}
        now_ms = int(self.clock() * 1000)
        room = MAX_REGISTERS - store.count_registers(cur)  # a flood of new keys stops here
        for entry in body.entries:
            parsed = core.parse_key(entry.key, entry.value)
            if parsed is None:
                continue  # a newer client's setting, or a malformed one
            if core.from_the_future(entry.clock, now_ms):
                self.refused_entries += 1  # it would pin the setting against later changes
                continue
            chat, setting, value = parsed
            held = store.get_register(cur, entry.key)
            if not core.incoming_wins(held, entry.key, entry.value, entry.clock, r.device_key):
                continue
            if not held.device:  # a key never written: one more row
                if room <= 0:
                    self.refused_entries += 1
                    continue
                room -= 1
            store.put_register(
                cur, entry.key, core.Register(entry.value, entry.clock, r.device_key)
            )
            if setting == "read":
                assert isinstance(value, int)
                self._read_through(cur, chat, value)
            elif setting.startswith("fav:"):
                favs[(chat, setting.removeprefix("fav:"))] = bool(value)
            elif setting == "blocked":
                blocks[parse_chat(chat)[1]] = bool(value)
            elif setting in _NOTES:
                notes.setdefault(parse_chat(chat)[1], {})[setting] = value
            else:
                attr = dict(_FLAGS)[setting]
                flags.setdefault(chat, {})[attr] = bool(value)
        if not (flags or notes or blocks or favs):
            return None

        async def apply() -> None:
            await self._apply(flags, notes, blocks)
            self._apply_favourites(favs)

        return apply

    async def _apply(
        self,
        flags: dict[str, dict[str, bool]],
        notes: dict[bytes, dict[str, object]],
        blocks: dict[bytes, bool],
    ) -> None:
        """Through each feature's own checks, as if the user did it here."""
        for chat, changes in flags.items():
            try:
                self.chat_settings.update(chat, **changes)
            except UsageError as exc:  # not on this device (yet)
                logger.info("a synced chat setting was not applied: %s", exc)
        for key, fields in notes.items():
            try:
                self.profiles.set_notes(key, **fields)  # type: ignore[arg-type]
            except UsageError as exc:  # an unknown contact, or a value its rules refuse
                logger.info("synced contact notes were not applied: %s", exc)
        for key, blocked in blocks.items():
            try:
                row, _, _ = self.profiles.contact(key)
                if blocked != (row.state == ContactState.BLOCKED.value):
                    event = ContactEvent.BLOCK if blocked else ContactEvent.UNBLOCK
                    await self.contacts.respond(key, event)
            except UsageError as exc:
                logger.info("a synced block was not applied: %s", exc)

    def _apply_favourites(self, favs: dict[tuple[str, str], bool]) -> None:
        for (chat, message_id), saved in favs.items():
            with self.db.transaction() as cur:
                held = store.favourite_id(cur, chat, message_id)
            try:
                if saved and held is None:
                    self.favourites.add(chat, message_id)
                elif not saved and held is not None:
                    self.favourites.remove(held)
            except (UsageError, NoSuchFavourite) as exc:  # not here (yet), or deleted
                logger.info("a synced favourite was not applied: %s", exc)

    def _read_through(self, cur: Cursor, chat: str, lamport: int) -> None:
        _, group_id = parse_chat(chat)
        if not gs.has_group(cur, group_id):
            return
        seq = store.group_seq_through(cur, group_id, lamport)
        if seq is not None and gs.set_read_seq(cur, group_id, seq):
            self.channel.emit(ev.GroupChanged(group_id.hex()))


def _chat_of(event: ev.Event) -> str | None:
    if isinstance(event, ev.ChatSettingsChanged) and event.change != "draft":
        return event.chat
    if isinstance(event, ev.GroupChanged):
        return f"group:{event.group}"
    if isinstance(event, ev.ContactChanged):
        return f"notes:contact:{event.contact}"
    if isinstance(event, ev.FavouritesChanged):
        return f"fav:{event.chat}:{event.message_id}"
    return None


def _sendable(key: str, value: str) -> bool:
    """Whether an entry fits the wire's limits (a favourite of a message whose id is
    too long for a key, say: that one stays on this device)."""
    ok = core.parse_key(key, value) is not None and len(value.encode()) <= MAX_VALUE_BYTES
    if not ok:
        logger.info("a setting too large to sync was kept on this device")
    return ok


def _batches(entries: list[SyncEntry]) -> list[tuple[SyncEntry, ...]]:
    """At most :data:`MAX_ENTRIES` entries and :data:`MAX_BATCH_BYTES` of values each."""
    out: list[tuple[SyncEntry, ...]] = []
    batch: list[SyncEntry] = []
    size = 0
    for e in entries:
        n = len(e.key) + len(e.value.encode("utf-8"))
        if batch and (len(batch) == MAX_ENTRIES or size + n > MAX_BATCH_BYTES):
            out.append(tuple(batch))
            batch, size = [], 0
        batch.append(e)
        size += n
    if batch:
        out.append(tuple(batch))
    return out
