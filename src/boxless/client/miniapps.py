"""Mini apps in the client (docs/miniapps.md): install store, permissions,
per-app storage, the pseudonymous user id, and AppMessage to and from bots.

Theory of operation: a bundle is verified (:func:`boxless.miniapps.verify_bundle`)
and checked against the installed version (:func:`check_install`) before it is
stored; the app-origin server reads files only from a verified bundle. An app's
page reaches nothing but this feature's methods through the bridge (api/miniapps.py),
each call rate-limited (:class:`BridgeLimiter`) and checked against the user's
permission decisions. Incoming AppMessage from a contact: a ``request`` is for a
bot account (the SDK takes it from the ``app_message`` event); a ``response`` or
``push`` is only accepted from the bot named by the installed app's manifest.
Nothing a peer sends is stored, so a flood grows no table; a bot's answer to a
request the page still waits for, and its last pushes, are also kept in memory
for a minute (:mod:`boxless.miniapps.replies`, bounded), for a page whose events
socket was away when they came.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from boxless.chat.miniapp import MAX_PAYLOAD_BYTES, AppKind, AppMessage
from boxless.client import events as ev
from boxless.client import miniapp_store as store
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversations import Conversations
from boxless.client.store import Cursor
from boxless.errors import UsageError
from boxless.identity.account import LocalAccount
from boxless.miniapps import (
    PERMISSIONS,
    Manifest,
    VerifiedBundle,
    check_install,
    verify_bundle,
)
from boxless.miniapps.limits import BridgeLimiter
from boxless.miniapps.replies import PendingReplies, RecentPushes, Reply

__all__ = ["STORAGE_QUOTA_BYTES", "MiniApps", "NoSuchApp", "PermissionDenied"]

logger = logging.getLogger(__name__)

STORAGE_QUOTA_BYTES = 256 * 1024
MAX_KEY_CHARS = 128
_CACHE_APPS = 8


class NoSuchApp(UsageError):
    """No installed app has this id."""


class PermissionDenied(UsageError):
    """The user has not allowed this (or refused it)."""


class MiniApps:
    def __init__(
        self,
        account: LocalAccount,
        channel: DirectChannel,
        conversations: Conversations,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.account, self.channel, self.conversations = account, channel, conversations
        self.db, self.clock = channel.db, clock
        self.limiter = BridgeLimiter()
        self.pending = PendingReplies()  # bot answers the app pages wait for
        self.pushes = RecentPushes()  # and what the bots pushed lately
        self.app_origin: str | None = None  # the app-origin server's base URL, once it runs
        self._pseudonym_key = self.db.derive_key("miniapp pseudonym v1")
        self._files: dict[str, VerifiedBundle] = {}  # app id -> verified bundle, a few
        channel.handlers.on_body((AppMessage,), self._on_app_message)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- install store ----------------------------------------------------------

    def install(self, data: bytes) -> Manifest:
        """Verify ``data`` (a signed bundle) and install it, or update the installed
        app (same developer key, not older). BundleError says why it is refused."""
        bundle = verify_bundle(data)
        with self.db.transaction() as cur:
            row = store.get_app(cur, bundle.manifest.id)
            check_install(None if row is None else row.manifest, bundle.manifest)
            store.put_app(cur, bundle.manifest, data, bundle.archive_sha256, self._now_ms())
        self._files.pop(bundle.manifest.id, None)
        logger.info("mini app %s %s installed", bundle.manifest.id, bundle.manifest.version)
        return bundle.manifest

    def remove(self, app_id: str) -> None:
        """Uninstall and delete the app's data (storage, permissions)."""
        with self.db.transaction() as cur:
            if not store.delete_app(cur, app_id):
                raise NoSuchApp(f"no mini app {app_id!r} is installed")
        self._files.pop(app_id, None)
        self.limiter.forget(app_id)
        self.pending.forget(app_id)
        self.pushes.forget(app_id)

    def app(self, app_id: str) -> store.AppRow:
        with self.db.transaction() as cur:
            row = store.get_app(cur, app_id)
        if row is None:
            raise NoSuchApp(f"no mini app {app_id!r} is installed")
        return row

    def apps(self) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            rows = store.list_apps(cur)
            perms = {r.manifest.id: store.permissions(cur, r.manifest.id) for r in rows}
        now = self.clock()
        return [self.app_json(r, perms[r.manifest.id], now) for r in rows]

    def app_json(self, row: store.AppRow, perms: dict[str, bool], now: float) -> dict[str, Any]:
        return {
            **row.manifest.to_json(),
            "size": row.size,
            "sha256": row.archive_sha256.hex(),
            "installed_at_ms": row.installed_at_ms,
            "used_at_ms": row.used_at_ms,
            "decisions": perms,
            "suspended": self.limiter.suspended(row.manifest.id, now),
        }

    def files(self, app_id: str) -> VerifiedBundle:
        """The installed app's verified files (kept for a few apps)."""
        cached = self._files.get(app_id)
        if cached is not None:
            return cached
        with self.db.transaction() as cur:
            data = store.get_bundle(cur, app_id)
        if data is None:
            raise NoSuchApp(f"no mini app {app_id!r} is installed")
        bundle = verify_bundle(data)  # what is served is what was signed
        if len(self._files) >= _CACHE_APPS:
            self._files.pop(next(iter(self._files)))
        self._files[app_id] = bundle
        return bundle

    def opened(self, app_id: str) -> None:
        with self.db.transaction() as cur:
            store.touch_app(cur, app_id, self._now_ms())

    # -- bridge: permissions, user, storage ---------------------------------------

    def bridge_call(self, app_id: str) -> store.AppRow:
        """Account one bridge call of ``app_id``; UsageError when it floods (suspended)."""
        row = self.app(app_id)
        if not self.limiter.allow(app_id, self.clock()):
            logger.warning("mini app %s flooded the bridge: suspended", app_id)
            raise PermissionDenied(f"{app_id} is suspended: it called the bridge too often")
        return row

    def decisions(self, app_id: str) -> dict[str, bool]:
        with self.db.transaction() as cur:
            return store.permissions(cur, app_id)

    def decide(self, app_id: str, permission: str, granted: bool | None) -> None:
        """The user allowed (True), refused (False) or reset (None) a permission."""
        row = self.app(app_id)
        if permission not in PERMISSIONS:
            raise UsageError(f"unknown permission {permission!r}")
        if permission not in row.manifest.permissions and granted:
            raise PermissionDenied(f"{app_id} does not ask for {permission} in its manifest")
        with self.db.transaction() as cur:
            store.set_permission(cur, app_id, permission, granted, self._now_ms())

    def require(self, row: store.AppRow, permission: str) -> None:
        """PermissionDenied unless the manifest asks for it and the user allowed it."""
        if permission not in row.manifest.permissions:
            raise PermissionDenied(f"{row.manifest.id} did not ask for {permission}")
        if not self.decisions(row.manifest.id).get(permission, False):
            raise PermissionDenied(f"the user has not allowed {permission}")

    def pseudonym(self, app_id: str) -> str:
        """A per-app user id: stable for this account, unlinkable across apps."""
        return hmac.new(self._pseudonym_key, app_id.encode(), hashlib.sha256).hexdigest()[:32]

    def user(self, row: store.AppRow) -> dict[str, Any]:
        allowed = self.decisions(row.manifest.id)
        profile = self.account.profile
        out: dict[str, Any] = {"id": self.pseudonym(row.manifest.id)}
        if allowed.get("user.name") and "user.name" in row.manifest.permissions:
            out["name"] = profile.display_name
        if allowed.get("user.avatar") and "user.avatar" in row.manifest.permissions:
            if profile.avatar is not None and profile.avatar_type is not None:
                out["avatar"] = (
                    f"data:{profile.avatar_type};base64,{base64.b64encode(profile.avatar).decode()}"
                )
        return out

    def storage_get(self, row: store.AppRow, key: str) -> str | None:
        self.require(row, "storage")
        with self.db.transaction() as cur:
            return store.storage_get(cur, row.manifest.id, key)

    def stored(self, app_id: str, key: str) -> str | None:
        """What ``app_id`` stored under ``key`` (for the user's settings)."""
        with self.db.transaction() as cur:
            return store.storage_get(cur, app_id, key)

    def storage_set(self, row: store.AppRow, key: str, value: str | None) -> None:
        self.require(row, "storage")
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise UsageError(f"a storage key is 1 to {MAX_KEY_CHARS} characters")
        size = 0 if value is None else len(key.encode()) + len(value.encode())
        with self.db.transaction() as cur:
            used = store.storage_used(cur, row.manifest.id, except_key=key)
            if used + size > STORAGE_QUOTA_BYTES:
                raise UsageError(
                    f"{row.manifest.id} is over its storage quota of "
                    f"{STORAGE_QUOTA_BYTES // 1024} KiB: remove some keys first"
                )
            store.storage_set(cur, row.manifest.id, key, value)

    # -- app messages -------------------------------------------------------------

    async def send_app_message(
        self, contact_key: bytes, app_id: str, kind: str, request_id: bytes, payload: bytes
    ) -> None:
        """Queue an AppMessage to an accepted contact (reliable, over Olm).
        ``kind``: request | response | push; ``payload``: JSON bytes ≤ 16 KiB."""
        try:
            app_kind = AppKind(kind)
        except ValueError:
            raise UsageError("kind is request, response or push") from None
        await self.conversations.send_body(
            contact_key, AppMessage(app_id, app_kind, request_id, payload)
        )

    async def backend_request(self, row: store.AppRow, payload: Any) -> str:
        """Send the page's request to its bot; the answer comes as an ``app_message``
        event carrying the returned request id (hex)."""
        self.require(row, "backend")
        data = json.dumps(payload, separators=(",", ":")).encode()
        if len(data) > MAX_PAYLOAD_BYTES:
            raise UsageError(f"a backend request is at most {MAX_PAYLOAD_BYTES} bytes of JSON")
        request_id = os.urandom(16)
        # expected before it is sent: a fast bot may answer before the send returns
        self.pending.expect(row.manifest.id, request_id.hex(), self.clock())
        await self.send_app_message(row.manifest.bot, row.manifest.id, "request", request_id, data)
        return request_id.hex()

    def replies(self, app_id: str) -> tuple[list[Reply], list[Reply]]:
        """The bot's answers kept for ``app_id``'s page (see :meth:`backend_request`)
        and its recent pushes."""
        self.app(app_id)  # NoSuchApp
        now = self.clock()
        return self.pending.replies(app_id, now), self.pushes.pushes(app_id, now)

    def _on_app_message(self, cur: Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, AppMessage)
        if body.kind is not AppKind.REQUEST:
            row = store.get_app(cur, body.app_id)
            if row is None or row.manifest.bot != r.sender:
                logger.info(
                    "app message for %s from a key that is not its bot: ignored", body.app_id
                )
                return None
        payload = json.loads(body.payload)
        if body.kind is AppKind.RESPONSE:  # kept only when a page of ours waits for it
            self.pending.offer(body.app_id, body.request_id.hex(), payload, self.clock())
        elif body.kind is AppKind.PUSH:  # from the app's own bot (checked above)
            self.pushes.add(body.app_id, body.request_id.hex(), payload, self.clock())
        self.channel.emit(
            ev.AppMessageReceived(
                r.sender.hex(), body.app_id, body.kind.value, body.request_id.hex(), payload
            )
        )
        return None
