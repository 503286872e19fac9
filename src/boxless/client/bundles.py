"""Published device bundles: ours on the network, our contacts' fetched on demand.

A contact link carries a device bundle valid for 30 days. So that an old link
still works, and so that a contact who restored their account on a new device
can be reached, every device also **publishes** its current signed bundle on its
identity's bundle topic (:func:`boxless.chat.topics.bundle_topic`), as an
ordinary (non-ephemeral) Waku message that store nodes keep:

- on start when the last publication is older than :data:`PUBLISH_EVERY_S` or the
  bundle's keys changed, then daily; a refused send is retried every minute.
  Store retention on our nodes is at least 7 days, so a daily bundle is always
  there.
- The payload is the bundle (public keys, the identity's certificate of the
  device, the device's signature; no name, no profile: profiles are for contacts
  only), encrypted under a key derived from the identity key
  (:func:`encode_published_bundle`): those who know the key can read it, a store
  node enumerating its archive learns no identity or device keys.

Reading is on demand (:meth:`BundleBook.refresh`): when a link has expired, and
when a message claims a known contact from a device we have not seen. Anyone can
publish on a bundle topic, so each payload is verified
(:func:`decode_published_bundle`: certificate signed by that identity, device
signature, validity) and the newest valid one wins; a stored bundle is never
replaced by an older one. Store lookups per identity are rate limited
(:data:`REFETCH_AFTER_S`), so a flood of forged messages costs one query per 10 s.
The light node returns a stored message to one read only, so what this read
finds is also handed to the device book (:attr:`BundleBook.pass_on`, device
rosters; the device book's own read hands bundles back the same way).

Privacy: the bundle topic is computable from the identity key, so a store node
that is asked for it learns that the asker knows that identity. Lookups happen
only in the two cases above, never as a routine poll of all contacts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from boxless.chat.topics import bundle_topic
from boxless.client import store as db
from boxless.client.transport import Transport
from boxless.errors import BoxlessError, NetworkError
from boxless.identity.account import LocalAccount
from boxless.identity.keys import (
    DeviceBundle,
    InvalidBundle,
    bundle_from_bytes,
    decode_published_bundle,
    encode_published_bundle,
)
from boxless.storage.userdb import UserDB
from boxless.waku.message import WakuMessage

logger = logging.getLogger(__name__)

PUBLISH_EVERY_S = 86_400
RETRY_S = 60.0
REFETCH_AFTER_S = 10.0
LOOKBACK_S = 8 * 86_400
_STATE_KEY = "bundle_published"


@dataclass(frozen=True, slots=True)
class Publication:
    at: int
    fallback_key: bytes

    def encode(self) -> bytes:
        return self.at.to_bytes(8, "big") + self.fallback_key

    @classmethod
    def decode(cls, raw: bytes | None) -> Publication | None:
        if raw is None or len(raw) != 40:
            return None
        return cls(int.from_bytes(raw[:8], "big"), raw[8:])


class BundleBook:
    """Publishes this device's bundle; fetches, verifies and keeps others' newest."""

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
        self._asked: dict[bytes, float] = {}
        self.published = trio.Event()  # set after the first successful publication
        # the device book's take (set by the Client): the light node's history is
        # deduplicated across callers, so what this read returns on a bundle topic
        # that is not a bundle we keep (rosters, other devices' bundles) is passed on
        self.pass_on: Callable[[bytes, list[bytes]], None] | None = None

    # -- ours ---------------------------------------------------------------------------

    def last_publication(self) -> Publication | None:
        with self.db.transaction() as cur:
            return Publication.decode(db.get_state(cur, _STATE_KEY))

    def due(self, now: float) -> bool:
        last = self.last_publication()
        return (
            last is None
            or now - last.at >= PUBLISH_EVERY_S
            or last.fallback_key != self.account.device.fallback_key
        )

    async def run(self) -> None:
        """Publish when due, forever (cancel to stop)."""
        if not self.due(self.clock()):
            self.published.set()
        while True:
            now = self.clock()
            if self.due(now):
                ok = await self.publish()
                await trio.sleep(PUBLISH_EVERY_S if ok else RETRY_S)
            else:
                last = self.last_publication()
                wait = PUBLISH_EVERY_S - (now - last.at) if last else RETRY_S
                await trio.sleep(max(RETRY_S, wait))

    async def publish(self) -> bool:
        """Publish a fresh bundle now; True if the network accepted it."""
        now = self.clock()
        device = self.account.device
        bundle = device.bundle(now)
        msg = WakuMessage(
            payload=encode_published_bundle(bundle),
            content_topic=bundle_topic(self.account.identity.public_key),
            timestamp=int(now * 1e9),
        )
        try:
            sent = await self.transport.send(msg)
        except BoxlessError as exc:
            logger.info("publishing our device bundle failed: %s", exc)
            return False
        if not sent.accepted:
            logger.info("publishing our device bundle was refused: %s", sent.detail)
            return False
        with self.db.transaction() as cur:
            db.set_state(cur, _STATE_KEY, Publication(int(now), device.fallback_key).encode())
        self.published.set()
        logger.info("published our device bundle")
        return True

    # -- theirs -------------------------------------------------------------------------

    def stored(self, identity_key: bytes) -> DeviceBundle | None:
        """The newest verified bundle we hold for ``identity_key`` (maybe expired since)."""
        with self.db.transaction() as cur:
            raw = db.get_bundle(cur, identity_key)
        return None if raw is None else bundle_from_bytes(raw)

    def fresher(self, bundle: DeviceBundle) -> DeviceBundle:
        """``bundle`` or, if we hold a newer one for the same device, that one."""
        newer = self.stored(bundle.identity_key)
        if (
            newer is not None
            and newer.curve25519 == bundle.curve25519
            and newer.created_at > bundle.created_at
        ):
            return newer
        return bundle

    def remember(self, bundle: DeviceBundle, *, on_tie: bool = False) -> bool:
        """Keep a verified bundle unless we hold a newer one (or, without ``on_tie``,
        one as new); True if it was kept."""
        with self.db.transaction() as cur:
            held = db.bundle_created_at(cur, bundle.identity_key)
            if held is not None and (
                held > bundle.created_at or (held == bundle.created_at and not on_tie)
            ):
                return False
            db.put_bundle(
                cur,
                bundle.identity_key,
                bundle.curve25519,
                bundle.created_at,
                bundle.to_proto().SerializeToString(deterministic=True),
                int(self.clock() * 1000),
            )
        return True

    async def refresh(
        self, identity_key: bytes, device_key: bytes | None = None
    ) -> DeviceBundle | None:
        """Ask the store for ``identity_key``'s newest published bundle (rate limited).

        Returns the newest verified bundle we know after asking (``None`` if none):
        forged, malformed, expired and older payloads are skipped. With
        ``device_key``, a valid bundle for that device wins over others as new
        (bundles carry whole seconds: a restore can publish in the same second).
        """
        now = self.clock()
        if now - self._asked.get(identity_key, -REFETCH_AFTER_S) < REFETCH_AFTER_S:
            return self.stored(identity_key)
        self._asked[identity_key] = now
        since_ns = int((now - LOOKBACK_S) * 1e9)
        rejected = 0
        seen: list[bytes] = []
        try:
            async for item in self.transport.history([bundle_topic(identity_key)], since_ns):
                seen.append(item.message.payload)
                try:
                    bundle = decode_published_bundle(item.message.payload, identity_key, now)
                except InvalidBundle:
                    rejected += 1
                    continue
                self.remember(bundle, on_tie=bundle.curve25519 == device_key)
        except NetworkError as exc:
            logger.info("looking up a published bundle failed: %s", exc)
        if self.pass_on is not None and seen:
            self.pass_on(identity_key, seen)
        if rejected:
            logger.info("ignored %d invalid payloads on a bundle topic", rejected)
        return self.stored(identity_key)
