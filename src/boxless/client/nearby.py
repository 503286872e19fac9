"""People Nearby: the plug-in that runs :mod:`boxless.client.nearby_core` on Waku.

Theory of operation
-------------------
Opt-in only. :meth:`Nearby.start` makes a session (fresh keys, in memory:
a restart is a new pseudonym), subscribes the 9 cell topics around us and
our hello topic, publishes our card and reads the last 5 minutes of the cell
topics from store history so people already there show at once. :meth:`run`
re-publishes the card every minute and forgets expired cards.
:meth:`stop` publishes a withdrawn card (readers drop ours at once) and
forgets everything; the transport keeps the subscriptions (it has no
unsubscribe) and their messages are ignored.

Hellos: :meth:`say_hello` seals our contact link and a token to the card's
box key (with the request proof of work; an answer carries only the token);
the other side sees it in
:meth:`hellos`. :meth:`accept` sends a contact request to the greeter by the
existing path (:meth:`Contacts.add`: proof of work, rate limits at their
end) and answers the hello with our link; the greeter, on that answer for a
token it gave out, sends its own request. Crossed requests accept each other,
so both end as accepted contacts. Work that may take a proof of work runs
in this plug-in's own task (a bounded queue), never in the receive path.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import trio
from PIL import Image

from boxless.chat.pow import ProofOfWork, SpentProofs, solve
from boxless.client import events as ev
from boxless.client.channel import DirectChannel
from boxless.client.contacts import Contacts
from boxless.client.nearby_core import (
    CARD_TTL_MS,
    REPUBLISH_MS,
    CardTable,
    Drop,
    Dropped,
    Hello,
    HelloKind,
    Session,
    bucket,
    cell_topic,
    distance_km,
    hello_topic,
    open_card,
    open_hello,
    seal_hello,
)
from boxless.client.nearby_core import MAX_AVATAR_BYTES as MAX_CARD_AVATAR_BYTES
from boxless.client.transport import Incoming
from boxless.errors import BoxlessError, NetworkError, UsageError
from boxless.identity.account import LocalAccount
from boxless.waku.message import WakuMessage

__all__ = ["Nearby", "NearbyPerson", "NearbyHello", "NotSharing"]

logger = logging.getLogger(__name__)

MAX_HELLOS = 50  # hellos waiting for an answer; the oldest goes
MAX_PENDING = 100  # hellos we sent, waiting for an answer
WORK_QUEUE = 16
MAX_LOOK_BACK = 2_000  # history messages read on start (9 cells x 200 cards, and some)
INLINE_POW_BITS = 12


def _card_picture(avatar: bytes) -> bytes:
    """Our picture small enough for a card (a 96 px JPEG if it is larger), or b""."""
    if not avatar or len(avatar) <= MAX_CARD_AVATAR_BYTES:
        return avatar
    try:
        with Image.open(io.BytesIO(avatar)) as im:
            im.thumbnail((96, 96))
            out = io.BytesIO()
            im.convert("RGB").save(out, "JPEG", quality=70)
    except (OSError, ValueError) as exc:
        logger.info("our picture could not be made small for a nearby card: %s", exc)
        return b""
    small = out.getvalue()
    return small if len(small) <= MAX_CARD_AVATAR_BYTES else b""


class NotSharing(UsageError):
    """People Nearby is off: start sharing first."""


@dataclass(frozen=True, slots=True)
class NearbyPerson:
    id: str  # the card key, hex
    name: str
    status: str
    avatar: bytes
    distance: str  # a bucket, never a number
    seen_at_ms: int
    greeted: bool  # we said hello


@dataclass(frozen=True, slots=True)
class NearbyHello:
    id: str  # the greeter's card key, hex
    name: str
    text: str
    received_at_ms: int


class Nearby:
    """People Nearby for one client."""

    def __init__(
        self,
        account: LocalAccount,
        channel: DirectChannel,
        contacts: Contacts,
        *,
        clock: Callable[[], float],
        pow_difficulty: int,
    ) -> None:
        self.account = account
        self.channel = channel
        self.contacts = contacts
        self.transport = channel.transport
        self.clock = clock
        self.difficulty = pow_difficulty
        self.session: Session | None = None
        self.table = CardTable()
        self.spent = SpentProofs(max_entries=10_000)
        self.hellos: OrderedDict[bytes, tuple[Hello, int]] = OrderedDict()
        self.pending: OrderedDict[bytes, bytes] = OrderedDict()  # token -> their card key
        self.accepted: set[bytes] = set()  # card keys whose hello we accepted
        self._work_send, self._work_recv = trio.open_memory_channel[Hello](WORK_QUEUE)
        channel.handlers.on_topic(self.owns, self.handle)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _emit(self, what: str) -> None:
        self.channel.emit(ev.NearbyChanged(what))

    # -- the user's actions -----------------------------------------------------------

    async def start(
        self, lat: float, lon: float, *, name: str = "", status: str = "", avatar: bool = False
    ) -> Session:
        """Share a coarse location (a new pseudonym each time) and look around.

        ``name``/``status`` are shown on the card only if given; ``avatar`` adds
        our picture if it is small enough for a card. Raises UsageError for a
        bad position; NetworkError if the card could not be published.
        """
        picture = _card_picture(self.account.profile.avatar or b"") if avatar else b""
        old = self.session
        session = Session(lat, lon, name=name, status=status, avatar=picture)
        if old is not None:
            await self._publish(old, withdrawn=True)
        self.session = session
        self.table.keep_cells(session.watched_cells())
        self.hellos.clear()
        self.pending.clear()
        topics = [cell_topic(c) for c in session.watched_cells()]
        await self.transport.subscribe([*topics, hello_topic(session.card_key)])
        if not await self._publish(session):
            self.session = old if old is not None and old is not session else None
            raise NetworkError("your card could not be published: check the node's connection")
        await self._look_back(topics)
        self._emit("started")
        return session

    async def stop(self) -> None:
        """Stop sharing: our card is withdrawn, everything seen is forgotten."""
        session, self.session = self.session, None
        if session is not None:
            await self._publish(session, withdrawn=True)
        self.table = CardTable()
        self.hellos.clear()
        self.pending.clear()
        self._emit("stopped")

    def people(self) -> list[NearbyPerson]:
        """Everyone whose card is live in the watched cells, nearest first."""
        session = self._session()
        now = self._now_ms()
        greeted = set(self.pending.values())
        out = []
        for c in self.table.cards(now):
            if c.card_key == session.card_key:
                continue
            km = distance_km(session.area, c.area)
            out.append((km, c))
        out.sort(key=lambda t: (t[0], t[1].card_key))
        return [
            NearbyPerson(
                c.card_key.hex(),
                c.name,
                c.status,
                c.avatar,
                bucket(km),
                c.issued_at_ms,
                c.card_key in greeted,
            )
            for km, c in out
        ]

    def received_hellos(self) -> list[NearbyHello]:
        return [
            NearbyHello(k.hex(), h.name, h.text, at) for k, (h, at) in reversed(self.hellos.items())
        ]

    async def say_hello(self, card_id: bytes, text: str = "") -> None:
        """Send our contact link to the person of a card (they decide)."""
        session = self._session()
        card = self.table.get(card_id)
        if card is None or card.expires_at_ms <= self._now_ms():
            raise UsageError("that person is not nearby any more: refresh the list")
        token = secrets.token_bytes(16)
        hello = Hello(
            HelloKind.HELLO,
            session.card_key,
            session.box_key,
            self._my_link(),
            text.strip()[:200],
            token,
            session.name,
        )
        await self._send_hello(hello, card.card_key, card.box_key)
        self.pending[token] = card.card_key
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        self._emit("hello_sent")

    async def accept(self, card_id: bytes) -> None:
        """Accept a hello: a contact request to the greeter, and our link to them."""
        session = self._session()
        found = self.hellos.get(card_id)
        if found is None:
            raise UsageError("no such hello: it may have been answered already")
        hello = found[0]
        await self.contacts.add(hello.link, "Hello from People Nearby")
        answer = Hello(
            HelloKind.ACCEPTED,
            session.card_key,
            session.box_key,
            self._my_link(),
            "",
            hello.token,
            session.name,
        )
        await self._send_hello(answer, hello.from_card_key, hello.from_box_key, work=False)
        del self.hellos[card_id]
        self.accepted.add(card_id)
        self._emit("hello_accepted")

    def ignore(self, card_id: bytes) -> None:
        self.hellos.pop(card_id, None)
        self._emit("hello_ignored")

    def drops(self) -> dict[str, int]:
        return dict(self.table.drops)

    # -- the network ------------------------------------------------------------------

    def owns(self, content_topic: str) -> bool:
        return content_topic.startswith("/boxless/1/nearby-")

    async def handle(self, item: Incoming) -> None:
        """A message on a nearby topic (live or from history): a card or a hello."""
        session = self.session
        if session is None:
            return  # not sharing: still subscribed, nothing taken
        topic = item.message.content_topic
        now = self._now_ms()
        try:
            if topic == hello_topic(session.card_key):
                self._take_hello(item.message.payload, session, now)
                return
            cell = topic.removeprefix("/boxless/1/nearby-").removesuffix("/proto")
            if cell not in session.watched_cells():
                return  # a cell we left
            card = open_card(item.message.payload, cell, now)
        except Dropped as exc:
            self.table.drop(exc.reason)
            logger.debug("nearby input dropped: %s", exc)
            return
        if card.card_key != session.card_key and self.table.put(card, now):
            self._emit("card")

    def _take_hello(self, payload: bytes, session: Session, now: int) -> None:
        hello = open_hello(payload, session, self.spent, now_ms=now, difficulty=self.difficulty)
        if hello.kind is HelloKind.HELLO:
            if hello.from_card_key in self.accepted:
                return
            self.hellos.pop(hello.from_card_key, None)
            self.hellos[hello.from_card_key] = (hello, now)
            while len(self.hellos) > MAX_HELLOS:
                self.hellos.popitem(last=False)
            self._emit("hello")
            return
        if self.pending.get(hello.token) != hello.from_card_key:
            raise Dropped(Drop.UNEXPECTED, "an answer to no hello of ours")
        del self.pending[hello.token]
        try:
            self._work_send.send_nowait(hello)
        except trio.WouldBlock:
            raise Dropped(Drop.RATE_LIMITED, "too many answers at once") from None

    async def run(self) -> None:
        """Re-publish our card every minute, forget expired cards, add the people
        who accepted our hellos; until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._answers)
            while True:
                await trio.sleep(REPUBLISH_MS / 1000)
                session = self.session
                if session is not None:
                    await self._publish(session)
                    if self.table.expire(self._now_ms()):
                        self._emit("expired")

    async def _answers(self) -> None:
        async for hello in self._work_recv:
            try:
                await self.contacts.add(hello.link, "Hello from People Nearby")
            except BoxlessError as exc:
                logger.info("a nearby acceptance could not be answered: %s", exc)
                continue
            self._emit("contact")

    # -- helpers ----------------------------------------------------------------------

    def _session(self) -> Session:
        if self.session is None:
            raise NotSharing("People Nearby is off: start sharing your location first")
        return self.session

    def _my_link(self) -> str:
        return self.account.contact_code(self.clock()).link

    async def _publish(self, session: Session, *, withdrawn: bool = False) -> bool:
        now = self._now_ms()
        msg = WakuMessage(
            payload=session.card(now, withdrawn=withdrawn),
            content_topic=cell_topic(session.cell),
            timestamp=now * 1_000_000,
        )
        try:
            sent = await self.transport.send(msg)
        except NetworkError as exc:
            logger.info("our nearby card was not published: %s", exc)
            return False
        return sent.accepted

    async def _look_back(self, topics: list[str]) -> None:
        """The last 5 minutes of the cells' cards from store history, at most
        MAX_LOOK_BACK messages (a flooded cell must not stall the start)."""
        since = (self._now_ms() - CARD_TTL_MS) * 1_000_000
        seen = 0
        try:
            async for item in self.transport.history(topics, since):
                await self.handle(item)
                seen += 1
                if seen >= MAX_LOOK_BACK:
                    logger.info("nearby: stopped reading history after %d cards", seen)
                    break
        except NetworkError as exc:
            logger.info("nearby cards from store history: %s", exc)

    async def _send_hello(
        self, hello: Hello, card_key: bytes, box_key: bytes, *, work: bool = True
    ) -> None:
        """Seal and send; a hello carries a proof of work (an answer needs none)."""
        ts = self._now_ms()

        def proof_for(recipient: bytes, sender: bytes) -> ProofOfWork:
            proof = solve(recipient, sender, ts, difficulty=self.difficulty)
            if proof is None:
                raise UsageError("could not solve the hello's proof of work")
            return proof

        sign = self.account.identity.sign
        if not work or self.difficulty <= INLINE_POW_BITS:
            payload = seal_hello(hello, card_key, box_key, proof_for if work else None, sign)
        else:
            payload = await trio.to_thread.run_sync(
                lambda: seal_hello(hello, card_key, box_key, proof_for, sign),
                abandon_on_cancel=True,  # type: ignore[call-arg]
            )
        sent = await self.transport.send(
            WakuMessage(payload=payload, content_topic=hello_topic(card_key), timestamp=ts * 10**6)
        )
        if not sent.accepted:
            raise NetworkError(f"the hello was not sent ({sent.detail}): try again")
