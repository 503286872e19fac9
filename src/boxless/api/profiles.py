"""Profiles in the local API: our shared details, a contact's card, local notes.

- ``GET /me/profile`` → ``{name, avatar, status, region, cover}`` (base64 images);
- ``PUT /me/profile {status?, region?}``, ``PUT /me/cover {image}`` (base64 PNG/
  JPEG/WebP of at most 12 KiB; ``""`` removes it): accepted contacts are told;
- ``GET /contacts/{key}/profile`` → the contact card: ``name`` (the alias when
  there is one, as everywhere), ``profile_name`` (theirs), avatar, status,
  region, cover, and the local-only alias, tags, note, phone, email, company,
  birthday, starred (Moments' contact page reads it too);
- ``PUT /contacts/{key}/notes {alias?, tags?, note?, phone?, email?, company?,
  birthday?, starred?}`` → the card; local only, never sent;
- ``GET /contacts/notes`` → ``{key: {alias, tags, starred, ...}}`` for the list;
- ``GET /contacts/tags`` → ``[{tag, count}]``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body, path_key
from boxless.client import profile_store as ps
from boxless.client.core import Client
from boxless.identity.keys import fingerprint


class DetailsChange(BaseModel):
    status: str | None = Field(default=None, max_length=400)
    region: str | None = Field(default=None, max_length=200)


class CoverChange(BaseModel):
    image: str = Field(max_length=40_000)


class NotesChange(BaseModel):
    alias: str | None = Field(default=None, max_length=256)
    tags: list[str] | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=4000)
    phone: str | None = Field(default=None, max_length=400)
    email: str | None = Field(default=None, max_length=400)
    company: str | None = Field(default=None, max_length=400)
    birthday: str | None = Field(default=None, max_length=400)
    starred: bool | None = None


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/me/profile"): DetailsChange,
    ("PUT", "/api/v1/me/cover"): CoverChange,
    ("PUT", "/api/v1/contacts/{key}/notes"): NotesChange,
}


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def notes_json(n: ps.ContactNotes) -> dict[str, Any]:
    return {
        "alias": n.alias,
        "tags": list(n.tags),
        "note": n.note,
        "phone": n.phone,
        "email": n.email,
        "company": n.company,
        "birthday": n.birthday,
        "starred": n.starred,
    }


def profile_routes(client: Client) -> list[Route]:
    """The profile routes over ``client.profiles``."""
    profiles = client.profiles

    def mine() -> dict[str, Any]:
        d = profiles.my_details()
        p = client.account.profile
        return {
            "name": p.display_name,
            "avatar": _b64(p.avatar),
            "status": d.status,
            "region": d.region,
            "cover": _b64(d.cover),
        }

    def card(key: bytes) -> dict[str, Any]:
        row, d, n = profiles.contact(key)
        return {
            "identity_key": key.hex(),
            "name": n.alias or row.display_name,
            "profile_name": row.display_name,
            "avatar": _b64(row.avatar),
            "state": row.state,
            "fingerprint": fingerprint(key),
            "status": d.status,
            "region": d.region,
            "cover": _b64(d.cover),
            **notes_json(n),
        }

    async def get_mine(request: Request) -> Response:
        """My profile as contacts see it: name, picture, status, region, cover."""
        return JSONResponse(mine())

    async def change_mine(request: Request) -> Response:
        """Change my status line and/or region; accepted contacts are told."""
        body = await parse_body(request, DetailsChange)
        await profiles.set_details(status=body.status, region=body.region)
        return JSONResponse(mine())

    async def change_cover(request: Request) -> Response:
        """Change my Moments cover (base64 image, at most 12 KiB; "" removes it)."""
        body = await parse_body(request, CoverChange)
        try:
            image = base64.b64decode(body.image, validate=True)
        except binascii.Error:
            raise ApiError(422, "invalid_body", 'image: must be base64 ("" removes it)') from None
        await profiles.set_details(cover=image)
        return JSONResponse(mine())

    async def contact_card(request: Request) -> Response:
        """A contact's card: their profile and what I keep about them."""
        return JSONResponse(card(path_key(request)))

    async def change_notes(request: Request) -> Response:
        """Change my alias, tags, note, phone-book fields or star of a contact (local only)."""
        key = path_key(request)
        body = await parse_body(request, NotesChange)
        profiles.set_notes(key, **body.model_dump())
        return JSONResponse(card(key))

    async def all_notes(request: Request) -> Response:
        """Every contact's alias, tags, star and notes (contacts with none are absent)."""
        return JSONResponse({k.hex(): notes_json(n) for k, n in profiles.notes().items()})

    async def tags(request: Request) -> Response:
        """Every tag in use, with how many contacts carry it."""
        return JSONResponse([{"tag": t, "count": c} for t, c in profiles.tags().items()])

    return [
        Route("/api/v1/me/profile", get_mine, methods=["GET"]),
        Route("/api/v1/me/profile", change_mine, methods=["PUT"]),
        Route("/api/v1/me/cover", change_cover, methods=["PUT"]),
        Route("/api/v1/contacts/notes", all_notes, methods=["GET"]),
        Route("/api/v1/contacts/tags", tags, methods=["GET"]),
        Route("/api/v1/contacts/{key}/profile", contact_card, methods=["GET"]),
        Route("/api/v1/contacts/{key}/notes", change_notes, methods=["PUT"]),
    ]
