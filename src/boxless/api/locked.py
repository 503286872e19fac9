"""The locked state, and the front every `boxless up` serves (sessions + the app switch).

Theory of operation
-------------------
``boxless up`` on an existing account with no passphrase at hand (no
``$BOXLESS_PASSPHRASE`` and no terminal to ask on, or ``--locked``) starts the
node and serves :func:`build_locked_app` behind the
:class:`~boxless.api.onboarding.AppSwitch`: the web UI, and 423 ``locked``
for every ``/api/`` path. The one way in is the unlock route of
:class:`~boxless.api.session.SessionEndpoints`, which calls
:meth:`Unlocker.unlock`: the passphrase opens the account (Argon2id, in a
worker thread), ``on_account`` starts the client and swaps the full API into
the switch, and the browser gets its session cookie. Once an account is open,
the same route only checks the passphrase (a second connection to the
database, closed at once) to give a logged-out browser a new session.

:func:`web_front` composes what is served: the cookie-aware
:class:`~boxless.api.guard.Guard`, then the session routes, then the switch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from boxless.api.errors import ApiError, error_response, handle_api_error
from boxless.api.guard import Guard
from boxless.api.onboarding import OnAccount
from boxless.api.session import SessionBook, SessionEndpoints, Throttle
from boxless.api.web import web_mount
from boxless.identity.account import LocalAccount, account_exists, open_account, user_db_path
from boxless.storage.userdb import open_user_db

__all__ = ["Unlocker", "build_locked_app", "web_front"]

logger = logging.getLogger(__name__)


def build_locked_app(token: str, origin: str) -> Starlette:
    """The API while the account waits for its passphrase: the web UI, and 423
    for every ``/api/`` path (the unlock route is served in front of it)."""

    async def locked(request: Request) -> Response:
        return error_response(
            423,
            "locked",
            "Boxless is locked: enter your passphrase in the web UI (or restart"
            " `boxless up` where it can ask for it)",
        )

    async def no_events(ws: WebSocket) -> None:
        await ws.close(code=4423)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "not_found", f"no such resource: {request.url.path}")

    return Starlette(
        routes=[
            WebSocketRoute("/api/v1/events", no_events),
            Route("/api/{rest:path}", locked, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
            web_mount(),
        ],
        middleware=[Middleware(Guard, token=token, origin=origin)],
        exception_handlers={ApiError: handle_api_error, 404: not_found},
    )


class Unlocker:
    """Opens the account in ``home`` with a passphrase (then ``on_account``), or,
    once ``account`` is set (opened here, at start, or made by onboarding),
    checks the passphrase against it. Raises WrongPassphrase."""

    def __init__(self, home: Path, on_account: OnAccount, account: LocalAccount | None) -> None:
        self.home = home
        self.on_account = on_account
        self.account = account

    async def unlock(self, passphrase: str) -> None:
        """Cancellation while Argon2 runs leaves the thread to finish; an account
        it opened is closed by the caller's cleanup only if ``on_account`` ran."""
        if self.account is not None:
            await trio.to_thread.run_sync(_check_passphrase, self.home, passphrase)
            return
        if not account_exists(self.home):
            raise ApiError(
                409, "onboarding_required", "there is no account yet: create or restore one first"
            )
        account = await trio.to_thread.run_sync(open_account, self.home, passphrase)
        self.account = account
        logger.info("account unlocked from the browser")
        await self.on_account(account)


def _check_passphrase(home: Path, passphrase: str) -> None:
    open_user_db(user_db_path(home), passphrase).close()


def web_front(
    switch: ASGIApp,
    token: str,
    origin: str,
    sessions: SessionBook,
    unlocker: Unlocker,
    throttle: Throttle | None = None,
) -> ASGIApp:
    """What `boxless up` serves: Guard (token or cookie) -> session routes -> ``switch``."""
    endpoints = SessionEndpoints(switch, sessions, unlocker.unlock, origin, throttle=throttle)
    return Guard(endpoints, token, origin, sessions=sessions)
