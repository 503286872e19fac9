"""One error shape for the whole API, mapped at one boundary.

Every error response is ``{"error": {"code": "...", "message": "..."}}``; the
code is stable for programs, the message is for people and says what to do.
A peer's or the network's failure is reported as such (502/503), never as the
user's mistake.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from boxless.errors import BoxlessError, NetworkError, PeerError, StorageError, UsageError


class ApiError(Exception):
    """An error with an HTTP status and a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _status_for(exc: BoxlessError) -> tuple[int, str]:
    from boxless.client.core import UnknownContact

    if isinstance(exc, UnknownContact):
        return 404, "not_found"
    if isinstance(exc, UsageError):
        return 400, "bad_request"
    if isinstance(exc, NetworkError):
        return 503, "network_unavailable"
    if isinstance(exc, PeerError):
        return 502, "peer_error"
    if isinstance(exc, StorageError):
        return 500, "storage_error"
    return 500, "internal_error"


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


async def handle_boxless_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BoxlessError)
    status, code = _status_for(exc)
    return error_response(status, code, str(exc))
