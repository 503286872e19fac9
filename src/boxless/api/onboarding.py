"""First run in the browser: create (or restore) the account, then hand over to the full API.

Theory of operation
-------------------
``boxless up`` on a home with no account starts the node, then serves the
app of :func:`build_onboarding_app` behind an :class:`AppSwitch` (an ASGI app
that forwards to whichever app is current). The onboarding app has the same
checks (:class:`~boxless.api.guard.Guard`) as the full API, the same static web UI, and three
endpoints:

- ``POST /api/v1/onboarding/create {passphrase, name?}`` makes a new recovery
  phrase and returns its 24 words (shown once) and the positions of the words
  to type back. Nothing is written yet; calling it again starts over with a new
  phrase.
- ``POST /api/v1/onboarding/confirm {words: {position: word}, name?}`` checks
  the words (positions count from 1), creates the account (Argon2id takes a
  second, in a worker thread) and calls ``on_account``, which starts the client
  and swaps the full API into the switch. The name may come with either call.
- ``POST /api/v1/onboarding/restore {phrase, name, passphrase}`` does the same
  from an existing phrase.
- ``PUT /api/v1/onboarding/backup`` (the backup file as the body, streamed to
  the home: it is encrypted under the phrase) then
  ``POST /api/v1/onboarding/restore-backup {phrase, passphrase}`` restore a
  backup file (client/backup.py, as ``boxless init --restore --backup FILE``);
  the uploaded file is deleted once restored.

Every other ``/api/`` path answers 409 ``onboarding_required``, so the UI
learns the mode from its first ``GET /api/v1/me``.

Secrets (the phrase and the passphrase) live only in memory between create and
confirm, are never logged, and are dropped once the account exists. A wrong
word leaves the pending phrase as it was, so the user can look again at what
they wrote down and retry.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from boxless.api.errors import ApiError, error_response, handle_api_error, handle_boxless_error
from boxless.api.guard import Guard
from boxless.api.params import parse_body
from boxless.api.web import web_mount
from boxless.client.backup import restore_backup
from boxless.errors import BoxlessError, UsageError
from boxless.identity.account import LocalAccount, create_account, open_account
from boxless.identity.keys import Identity
from boxless.identity.profile import InvalidProfile, Profile, validate_display_name
from boxless.identity.seed import WORD_COUNT, generate_phrase, validate_phrase
from boxless.storage.userdb import DEFAULT_KDF, KdfParams, check_new_passphrase

logger = logging.getLogger(__name__)

CONFIRM_WORDS = 3

OnAccount = Callable[[LocalAccount], Awaitable[None]]


class AppSwitch:
    """An ASGI app forwarding to ``self.app``, which the owner may replace at any time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class PhraseNotConfirmed(UsageError):
    """The words typed back do not match the recovery phrase."""


@dataclass(slots=True)
class _Pending:
    phrase: str = field(repr=False)
    passphrase: str = field(repr=False)
    name: str | None
    positions: list[int]  # 0-based


class Onboarding:
    """The onboarding steps, independent of HTTP. ``on_account`` gets the new account."""

    def __init__(
        self,
        home: Path,
        on_account: OnAccount,
        *,
        clock: Callable[[], float] = time.time,
        kdf: KdfParams = DEFAULT_KDF,
    ) -> None:
        self.home = home
        self.on_account = on_account
        self.clock = clock
        self.kdf = kdf
        self.done = False
        self._pending: _Pending | None = None
        self._lock = trio.Lock()

    def create(self, passphrase: str, name: str | None) -> dict[str, Any]:
        """A new phrase to show once, and which words to ask back (1-based positions)."""
        if name is not None:
            name = validate_display_name(name)
        check_new_passphrase(passphrase)
        phrase = generate_phrase()
        positions = sorted(secrets.SystemRandom().sample(range(WORD_COUNT), CONFIRM_WORDS))
        self._pending = _Pending(phrase, passphrase, name, positions)
        return {"words": phrase.split(), "confirm": [p + 1 for p in positions]}

    async def confirm(self, words: dict[str, str], name: str | None) -> LocalAccount:
        """Check the typed-back words, then create the account.

        Cancellation while the account is being created leaves either no account
        or a whole one (``create_account`` removes a half-made database).
        """
        pending = self._pending
        if pending is None:
            raise UsageError("there is no new recovery phrase to confirm: start again")
        given = {k.strip(): v for k, v in words.items()}
        expected = pending.phrase.split()
        for pos in pending.positions:
            answer = given.get(str(pos + 1), "")
            if answer.strip().lower() != expected[pos]:
                raise PhraseNotConfirmed(
                    f"word #{pos + 1} does not match the recovery phrase; check what you wrote down"
                )
        name = name if name is not None else pending.name
        if name is None:
            raise InvalidProfile("choose a display name: your contacts will see it")
        account = await self._finish(Identity.from_phrase(pending.phrase), name, pending.passphrase)
        self._pending = None
        return account

    async def restore(self, phrase: str, name: str, passphrase: str) -> LocalAccount:
        """Create the account of an existing recovery phrase on this device."""
        check_new_passphrase(passphrase)
        identity = Identity.from_phrase(validate_phrase(phrase))
        return await self._finish(identity, name, passphrase)

    async def _finish(self, identity: Identity, name: str, passphrase: str) -> LocalAccount:
        async with self._lock:
            if self.done:
                raise UsageError("the account already exists: reload the page")
            now = self.clock()
            profile = Profile(display_name=name, updated_at=int(now))
            account = await trio.to_thread.run_sync(
                self._create, identity, profile, passphrase, now
            )
            self.done = True
            logger.info("account created in the browser")
            await self.on_account(account)
            return account

    @property
    def upload(self) -> Path:
        """Where an uploaded backup file waits for :meth:`restore_backup`."""
        return self.home / ".onboarding-backup"

    async def restore_backup(self, phrase: str, passphrase: str) -> LocalAccount:
        """Restore the uploaded backup file with the recovery phrase (a new device of
        that account) and a new passphrase for this device."""
        check_new_passphrase(passphrase)
        identity = Identity.from_phrase(validate_phrase(phrase))
        async with self._lock:
            if self.done:
                raise UsageError("the account already exists: reload the page")
            if not self.upload.is_file():
                raise UsageError("upload the backup file first, then restore it")
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            await trio.to_thread.run_sync(
                lambda: restore_backup(self.upload, self.home, identity, passphrase, kdf=self.kdf)
            )
            self.upload.unlink(missing_ok=True)
            account = await trio.to_thread.run_sync(open_account, self.home, passphrase)
            self.done = True
            logger.info("account restored from a backup file in the browser")
            await self.on_account(account)
            return account

    def _create(
        self, identity: Identity, profile: Profile, passphrase: str, now: float
    ) -> LocalAccount:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)  # `up` made it 0700 already
        return create_account(self.home, passphrase, identity, profile, now, self.kdf)


class CreateBody(BaseModel):
    passphrase: str = Field(min_length=1, max_length=1024)
    name: str | None = Field(default=None, max_length=1024)


class ConfirmBody(BaseModel):
    words: dict[str, str] = Field(max_length=WORD_COUNT)
    name: str | None = Field(default=None, max_length=1024)


class RestoreBackupBody(BaseModel):
    phrase: str = Field(min_length=1, max_length=2000)
    passphrase: str = Field(min_length=1, max_length=1024)


class RestoreBody(BaseModel):
    phrase: str = Field(min_length=1, max_length=2000)
    name: str = Field(min_length=1, max_length=1024)
    passphrase: str = Field(min_length=1, max_length=1024)


def build_onboarding_app(
    onboarding: Onboarding, token: str, origin: str, extra: Sequence[Route] = ()
) -> Starlette:
    """The API while there is no account: onboarding endpoints (``extra``: linking
    this device, api/device_link.py) and the web UI."""

    async def state(request: Request) -> Response:
        return JSONResponse({"onboarding": not onboarding.done})

    async def create(request: Request) -> Response:
        body = await parse_body(request, CreateBody)
        return JSONResponse(onboarding.create(body.passphrase, body.name))

    async def confirm(request: Request) -> Response:
        body = await parse_body(request, ConfirmBody)
        try:
            account = await onboarding.confirm(body.words, body.name)
        except PhraseNotConfirmed as exc:
            raise ApiError(400, "phrase_mismatch", str(exc)) from None
        return JSONResponse(_account_json(account), status_code=201)

    async def restore(request: Request) -> Response:
        body = await parse_body(request, RestoreBody)
        account = await onboarding.restore(body.phrase, body.name, body.passphrase)
        return JSONResponse(_account_json(account), status_code=201)

    async def upload_backup(request: Request) -> Response:
        if onboarding.done:
            raise ApiError(409, "account_exists", "the account already exists: reload the page")
        onboarding.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = onboarding.upload.with_name(onboarding.upload.name + ".part")
        size = 0
        try:
            async with await trio.open_file(part, "wb") as fh:  # the Guard caps the body
                async for chunk in request.stream():
                    size += len(chunk)
                    await fh.write(chunk)
            part.replace(onboarding.upload)
        finally:
            part.unlink(missing_ok=True)
        if size == 0:
            raise ApiError(400, "empty_backup", "the backup file is empty: choose another file")
        return JSONResponse({"size": size})

    async def restore_backup(request: Request) -> Response:
        body = await parse_body(request, RestoreBackupBody)
        account = await onboarding.restore_backup(body.phrase, body.passphrase)
        return JSONResponse(_account_json(account), status_code=201)

    async def not_yet(request: Request) -> Response:
        return error_response(
            409, "onboarding_required", "create or restore your account first (open the web UI)"
        )

    async def no_events(ws: WebSocket) -> None:
        await ws.close(code=4409)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "not_found", f"no such resource: {request.url.path}")

    routes = [
        Route("/api/v1/onboarding", state, methods=["GET"]),
        Route("/api/v1/onboarding/create", create, methods=["POST"]),
        Route("/api/v1/onboarding/confirm", confirm, methods=["POST"]),
        Route("/api/v1/onboarding/restore", restore, methods=["POST"]),
        Route("/api/v1/onboarding/backup", upload_backup, methods=["PUT"]),
        Route("/api/v1/onboarding/restore-backup", restore_backup, methods=["POST"]),
        *extra,
        WebSocketRoute("/api/v1/events", no_events),
        Route("/api/{rest:path}", not_yet, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
        web_mount(),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token, origin=origin)],
        exception_handlers={
            ApiError: handle_api_error,
            BoxlessError: handle_boxless_error,
            404: not_found,
        },
    )


def _account_json(account: LocalAccount) -> dict[str, Any]:
    return {
        "name": account.profile.display_name,
        "identity_key": account.identity.public_key.hex(),
        "fingerprint": account.identity.fingerprint,
    }
