"""What the 1:1 and the group call routes (api/calls.py, api/calls_group.py) both
read from a request: the call id in the path, SDP bodies, ICE candidate bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request

from boxless.api.errors import ApiError
from boxless.calls.sdp import MAX_SDP_BYTES
from boxless.chat.envelope import CALL_ID_BYTES, MAX_CALL_CANDIDATE_BYTES
from boxless.errors import DecodeError

__all__ = ["MAX_CANDIDATES_PER_POST", "Candidates", "Sdp", "bad_sdp", "call_id_of", "candidates_of"]

MAX_CANDIDATES_PER_POST = 64


class Sdp(BaseModel):
    sdp: str = Field(max_length=MAX_SDP_BYTES)


class Candidates(BaseModel):
    candidates: list[str] = Field(max_length=MAX_CANDIDATES_PER_POST)


def call_id_of(request: Request) -> bytes:
    """The ``{call_id}`` of the path: 16 bytes, or 422 ``invalid_id``."""
    try:
        value = bytes.fromhex(request.path_params["call_id"])
    except ValueError:
        value = b""
    if len(value) != CALL_ID_BYTES:
        raise ApiError(422, "invalid_id", "call_id must be 32 hex characters")
    return value


def candidates_of(body: Candidates) -> tuple[str, ...]:
    """The non-empty candidates of a body, or 422 ``invalid_candidate`` for a long one."""
    found = tuple(c for c in body.candidates if c)
    if any(len(c.encode()) > MAX_CALL_CANDIDATE_BYTES for c in found):
        raise ApiError(422, "invalid_candidate", "an ICE candidate is longer than 512 bytes")
    return found


def bad_sdp(exc: DecodeError) -> ApiError:
    return ApiError(422, "invalid_sdp", f"the browser's SDP was refused: {exc}")
