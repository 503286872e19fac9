"""Short links: our contact card published for them, and both kinds resolved.

Theory of operation
-------------------
A short contact link (``boxless://c/``, ~80 characters) names an identity key
and a link secret; the signed contact card it stands for (our name and device
bundle, what a long link carried) is published on the link's card topic,
sealed for link holders (:mod:`boxless.identity.contact_code`). This plug-in
publishes it when due -- on start if the last publication is older than
:data:`REPUBLISH_ON_START_S` or our name or device keys changed since, then daily,
and at once when :meth:`ShortLinks.wake` is called (a rename); a refused send
is retried every :data:`RETRY_S`. Store retention on our nodes is at least 7
days, so a daily card is always there.

A short group link (``boxless://g/``, ~60 characters) is made when an admin
asks for a link: the signed, expiring invite is published once, sealed, on
the topic of a fresh random secret (:mod:`boxless.groups.invites`). If the
network refuses it, no link is returned (a link nobody can resolve is worse
than an error).

Resolving either reads the topic from store history (at most
:data:`MAX_SCAN` payloads: anyone with the link may publish junk there),
opens and verifies each payload, and keeps the newest valid one: a card of
another identity, an invite signed by anyone but the admin the link commits
to, an expired or altered one are skipped. None left: a clear error saying to
try again when the contact is online or to ask for a new link.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import trio

from boxless.client import store as db
from boxless.client.transport import Transport
from boxless.errors import BoxlessError, NetworkError, UsageError
from boxless.groups.invites import (
    GroupLink,
    InvalidGroupLink,
    ShortGroupLink,
    decode_any_group_link,
    new_short_group_link,
    open_group_link,
    seal_group_link,
)
from boxless.identity.account import LocalAccount
from boxless.identity.contact_code import (
    ContactCode,
    InvalidContactCode,
    ShortContactLink,
    decode_contact_link,
    open_card,
    seal_card,
    short_contact_link,
)
from boxless.storage.userdb import UserDB
from boxless.waku.message import WakuMessage

logger = logging.getLogger(__name__)

PUBLISH_EVERY_S = 86_400
REPUBLISH_ON_START_S = 3_600  # a restart (maybe on other service nodes) republishes
RETRY_S = 60.0
LOOKBACK_S = 8 * 86_400
MAX_SCAN = 256
RETRY_LOOKUP_S = 2.0  # a card published a moment ago may still be on its way to the store
CACHE_TOPICS = 64
_STATE_KEY = "contact_card_published"


class ShortLinks:
    """Publishes our contact card; makes short group links; resolves short links."""

    def __init__(
        self,
        db: UserDB,
        account: LocalAccount,
        transport: Transport,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.account = account
        self.transport = transport
        self.clock = clock
        self._wake = trio.Event()
        self.published = trio.Event()  # set once our card is on the network
        # The best payload found per topic: a transport hands each stored message
        # out once, so a second look-up of the same link would find nothing new.
        self._best: OrderedDict[str, bytes] = OrderedDict()

    # -- ours ---------------------------------------------------------------------------

    @property
    def contact_link(self) -> str:
        """Our short contact link (the same on every device and after a restore)."""
        return short_contact_link(self.account.identity).link

    def shareable_link(self) -> str:
        """The link to show people: the short one once our card is on the network
        (a short link nobody can resolve yet would fail them), the long one until then."""
        if self.published.is_set():
            return self.contact_link
        return self.account.contact_code(self.clock()).link

    def _digest(self) -> bytes:
        return hashlib.sha256(
            self.account.profile.display_name.encode() + self.account.device.fallback_key
        ).digest()

    def _last(self) -> tuple[int, bytes] | None:
        with self.db.transaction() as cur:
            raw = db.get_state(cur, _STATE_KEY)
        if raw is None or len(raw) != 40:
            return None
        return int.from_bytes(raw[:8], "big"), raw[8:]

    def due_in(self, now: float, every: float = PUBLISH_EVERY_S) -> float:
        """Seconds until our card should be published again (0: now)."""
        last = self._last()
        if last is None or last[1] != self._digest():
            return 0.0
        return max(0.0, last[0] + every - now)

    def wake(self) -> None:
        """Our name or keys changed: publish the card again now."""
        self._wake.set()

    async def run(self) -> None:
        """Publish our card when due, forever (cancel to stop)."""
        starting = True  # until the start's publication is done (or a recent one stands)
        while True:
            every = REPUBLISH_ON_START_S if starting else PUBLISH_EVERY_S
            wait = self.due_in(self.clock(), every)
            if wait == 0:
                if await self.publish_card():
                    starting = False
                    continue
                wait = RETRY_S
            elif starting:
                self.published.set()
                starting = False
                continue
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()

    async def publish_card(self) -> bool:
        """Publish our current signed card on our link's topic; True if the network took it."""
        now = self.clock()
        digest = self._digest()
        short = short_contact_link(self.account.identity)
        msg = WakuMessage(
            payload=seal_card(self.account.contact_code(now), short),
            content_topic=short.topic,
            timestamp=int(now * 1e9),
        )
        try:
            sent = await self.transport.send(msg)
        except BoxlessError as exc:
            logger.info("publishing our contact card failed: %s", exc)
            return False
        if not sent.accepted:
            logger.info("publishing our contact card was refused: %s", sent.detail)
            return False
        with self.db.transaction() as cur:
            db.set_state(cur, _STATE_KEY, int(now).to_bytes(8, "big") + digest)
        self.published.set()
        logger.info("published our contact card")
        return True

    async def publish_group_link(self, link: GroupLink) -> str:
        """Publish ``link`` sealed under a fresh short link; return the short link.

        Raises UsageError if the network did not take it (nobody could resolve it).
        """
        short = new_short_group_link(link)
        msg = WakuMessage(
            payload=seal_group_link(link, short),
            content_topic=short.topic,
            timestamp=int(self.clock() * 1e9),
        )
        try:
            sent = await self.transport.send(msg)
        except BoxlessError as exc:
            raise UsageError(f"the group link could not be published ({exc}); try again") from exc
        if not sent.accepted:
            raise UsageError(
                f"the network did not take the group link ({sent.detail}); try again when online"
            )
        return short.link

    # -- theirs -------------------------------------------------------------------------

    def _keep(self, topic: str, payload: bytes) -> None:
        self._best[topic] = payload
        self._best.move_to_end(topic)
        while len(self._best) > CACHE_TOPICS:
            self._best.popitem(last=False)

    async def _payloads(self, topic: str, what: str) -> list[bytes]:
        since_ns = int((self.clock() - LOOKBACK_S) * 1e9)
        found: list[bytes] = [self._best[topic]] if topic in self._best else []
        try:
            async for item in self.transport.history([topic], since_ns):
                found.append(item.message.payload)
                if len(found) >= MAX_SCAN:
                    break
        except NetworkError as exc:
            raise NetworkError(
                f"could not look up the {what} on the network ({exc}); try again"
            ) from exc
        return found

    async def long_contact_link(self, link: str) -> str:
        """``link`` if it is a long one, else the long link of the card it stands for."""
        parsed = decode_contact_link(link, self.clock(), allow_expired=True)
        if not isinstance(parsed, ShortContactLink):
            return link
        return (await self._fetch_card(parsed)).link

    async def resolve_contact(self, link: str) -> ContactCode:
        """The verified contact card ``link`` stands for (a long link: itself, even
        expired: its identity and name still hold).

        Raises InvalidContactCode for a bad link or when no valid card is found.
        """
        parsed = decode_contact_link(link, self.clock(), allow_expired=True)
        if not isinstance(parsed, ShortContactLink):
            return parsed
        return await self._fetch_card(parsed)

    async def _fetch_card(self, parsed: ShortContactLink) -> ContactCode:
        now = self.clock()
        payloads = await self._payloads(parsed.topic, "contact link")
        if not payloads:
            await trio.sleep(RETRY_LOOKUP_S)
            payloads = await self._payloads(parsed.topic, "contact link")
        best: ContactCode | None = None
        rejected = 0
        for payload in payloads:
            try:
                code = open_card(payload, parsed, now)
            except InvalidContactCode:
                rejected += 1
                continue
            if best is None or code.bundle.created_at > best.bundle.created_at:
                best = code
                self._keep(parsed.topic, payload)
        if rejected:
            logger.info("ignored %d invalid payloads on a card topic", rejected)
        if best is None:
            raise InvalidContactCode(
                "no contact card for this link was found on the network: try again when "
                "your contact's Boxless is online, or ask them for a new link or QR code"
            )
        return best

    async def resolve_group(self, link: str) -> str:
        """The verified long group link ``link`` stands for (a long link: itself).

        Raises InvalidGroupLink for a bad link or when no valid invite is found.
        """
        now = self.clock()
        parsed = decode_any_group_link(link, now)
        if not isinstance(parsed, ShortGroupLink):
            return link.strip()
        best: GroupLink | None = None
        for payload in await self._payloads(parsed.topic, "group link"):
            try:
                found = open_group_link(payload, parsed, now)
            except InvalidGroupLink:
                continue
            if best is None or found.expires_at > best.expires_at:
                best = found
                self._keep(parsed.topic, payload)
        if best is None:
            raise InvalidGroupLink(
                "no valid invite for this group link was found on the network (it may have "
                "expired): ask an admin of the group for a new link"
            )
        return best.link
