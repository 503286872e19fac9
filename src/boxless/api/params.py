"""Parsing what a request carries: JSON bodies (pydantic), hex ids in the path,
paging numbers in the query. Each failure is a 422 in the API's error shape;
a body past its size limit is a 413, refused before it is all in memory."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from boxless.api.errors import ApiError

MAX_JSON_BYTES = 1024 * 1024  # a 60,000-character text of \uXXXX escapes is ~720 KiB


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or a 413 ApiError: at once if its Content-Length says it
    is larger than ``limit`` bytes, else as soon as the streamed body grows past it."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> ApiError:
    """The 413 for a body larger than ``limit`` bytes."""
    size = f"{limit / (1024 * 1024):g} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return ApiError(413, "too_large", f"the request body is larger than {size}: send less")


async def parse_body(request: Request, model: type[BaseModel], limit: int = MAX_JSON_BYTES) -> Any:
    """The request's JSON body as ``model`` (an empty body is ``{}``); a body
    larger than ``limit`` bytes is a 413 before it is read whole."""
    raw = await read_limited(request, limit)
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise ApiError(422, "invalid_body", problems) from None


def path_key(request: Request, name: str = "key") -> bytes:
    """A hex id from the path: 16 bytes (message, list) or 32 (identity key, group)."""
    text = request.path_params[name]
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) not in (16, 32):
        raise ApiError(422, "invalid_id", f"{name} must be hex (32 or 64 characters)")
    return value


def paging(request: Request) -> tuple[int, int | None]:
    """``(limit, before)`` from the query: limit 1..500 (default 50), before optional."""
    try:
        limit = min(max(int(request.query_params.get("limit", "50")), 1), 500)
        before = request.query_params.get("before")
        return limit, int(before) if before is not None else None
    except ValueError:
        raise ApiError(422, "invalid_query", "limit and before must be numbers") from None


def hex_keys(values: list[str], field: str) -> list[bytes]:
    """Identity keys (64 hex each) from a body's list field."""
    keys = []
    for v in values:
        try:
            key = bytes.fromhex(v)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ApiError(422, "invalid_body", f"{field}: each must be an identity key (64 hex)")
        keys.append(key)
    return keys
