"""Parsing what a request carries: JSON bodies (pydantic), hex ids in the path,
paging numbers in the query. Each failure is a 422 in the API's error shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from boxless.api.errors import ApiError


async def parse_body(request: Request, model: type[BaseModel]) -> Any:
    """The request's JSON body as ``model`` (an empty body is ``{}``)."""
    try:
        raw = await request.body()
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
