"""The broadcast-list resources of the local API: /api/v1/broadcasts/...

A list is ``{id, name, members: [{identity_key, name, state}], created_at_ms,
updated_at_ms, last_broadcast}``; a sent broadcast is ``{id, list, text,
sent_at_ms, sent, delivered, read, message_ids, recipients: [{identity_key,
name, message_id, state}]}`` where ``sent`` is how many 1:1 messages it became
and ``delivered``/``read`` count their delivery states. Sending answers 201
with that and ``skipped`` (members no longer accepted contacts).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.params import hex_keys, paging, parse_body, path_key
from boxless.client.broadcast import MAX_MEMBERS, MAX_NAME, BroadcastList, SentBroadcast
from boxless.client.core import Client

HEX_KEY = r"^[0-9a-f]{64}$"


class NewBroadcastList(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    # Beyond MAX_MEMBERS the client refuses with a message saying what to do.
    members: list[str] = Field(max_length=10 * MAX_MEMBERS)


class BroadcastListChange(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    members: list[str] | None = Field(default=None, max_length=10 * MAX_MEMBERS)


class NewBroadcast(BaseModel):
    text: str = Field(min_length=1, max_length=60_000)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/broadcasts"): NewBroadcastList,
    ("PUT", "/api/v1/broadcasts/{id}"): BroadcastListChange,
    ("POST", "/api/v1/broadcasts/{id}/messages"): NewBroadcast,
}


def broadcast_routes(client: Client) -> list[Route]:
    """The /api/v1/broadcasts routes over ``client.broadcasts``."""
    lists = client.broadcasts

    def contacts() -> dict[bytes, tuple[str, str]]:
        return {c.identity_key: (c.display_name, c.state) for c in client.contacts()}

    def sent_json(b: SentBroadcast, people: dict[bytes, tuple[str, str]]) -> dict[str, Any]:
        return {
            "id": b.broadcast_id.hex(),
            "list": b.list_id.hex(),
            "text": b.text,
            "sent_at_ms": b.sent_at_ms,
            "sent": len(b.message_ids),
            "delivered": b.delivered,
            "read": b.read,
            "message_ids": [m.hex() for m in b.message_ids],
            "recipients": [
                {
                    "identity_key": k.hex(),
                    "name": people.get(k, (k.hex()[:8], ""))[0],
                    "message_id": m.hex(),
                    "state": s,
                }
                for k, m, s in zip(b.recipients, b.message_ids, b.states, strict=True)
            ],
        }

    def list_json(bl: BroadcastList, people: dict[bytes, tuple[str, str]]) -> dict[str, Any]:
        last = lists.sent(bl.list_id, 1)
        return {
            "id": bl.list_id.hex(),
            "name": bl.name,
            "members": [
                {
                    "identity_key": k.hex(),
                    "name": people.get(k, (k.hex()[:8], ""))[0],
                    "state": people.get(k, ("", "none"))[1],
                }
                for k in bl.members
            ],
            "created_at_ms": bl.created_at_ms,
            "updated_at_ms": bl.updated_at_ms,
            "last_broadcast": sent_json(last[0], people) if last else None,
        }

    async def all_lists(request: Request) -> Response:
        """My broadcast lists, each with its last broadcast."""
        people = contacts()
        return JSONResponse([list_json(bl, people) for bl in lists.lists()])

    async def create(request: Request) -> Response:
        """A new list of up to 200 accepted contacts."""
        body = await parse_body(request, NewBroadcastList)
        bl = lists.create(body.name, hex_keys(body.members, "members"))
        return JSONResponse(list_json(bl, contacts()), status_code=201)

    async def show(request: Request) -> Response:
        """One broadcast list: name and members."""
        return JSONResponse(list_json(lists.get(path_key(request, "id")), contacts()))

    async def change(request: Request) -> Response:
        """Rename the list and/or replace its members."""
        body = await parse_body(request, BroadcastListChange)
        members = hex_keys(body.members, "members") if body.members is not None else None
        bl = lists.update(path_key(request, "id"), name=body.name, members=members)
        return JSONResponse(list_json(bl, contacts()))

    async def delete(request: Request) -> Response:
        """Delete the list (the 1:1 messages it sent stay in each chat)."""
        lists.delete(path_key(request, "id"))
        return Response(status_code=204)

    async def send(request: Request) -> Response:
        """Send a text to everyone on the list: one ordinary 1:1 message each."""
        body = await parse_body(request, NewBroadcast)
        list_id = path_key(request, "id")
        b = await lists.send(list_id, body.text)
        out = sent_json(b, contacts())
        got = set(b.recipients)
        out["skipped"] = [k.hex() for k in lists.get(list_id).members if k not in got]
        return JSONResponse(out, status_code=201)

    async def history(request: Request) -> Response:
        """Broadcasts sent to the list with delivered/read counts; ``before`` is a sent_at_ms."""
        limit, before = paging(request)
        people = contacts()
        sent = lists.sent(path_key(request, "id"), limit, before)
        return JSONResponse([sent_json(b, people) for b in sent])

    prefix = "/api/v1/broadcasts"
    return [
        Route(prefix, all_lists, methods=["GET"]),
        Route(prefix, create, methods=["POST"]),
        Route(prefix + "/{id}", show, methods=["GET"]),
        Route(prefix + "/{id}", change, methods=["PUT"]),
        Route(prefix + "/{id}", delete, methods=["DELETE"]),
        Route(prefix + "/{id}/messages", history, methods=["GET"]),
        Route(prefix + "/{id}/messages", send, methods=["POST"]),
    ]
