"""The group resources of the local API: /api/v1/groups/...

Handlers parse (pydantic bodies, hex ids) and call the client's
:class:`~boxless.client.groups.GroupManager`, which decides; its errors
(``NotAMember``, "that change is not allowed", ...) map onto the API's error
shape at the app's one boundary.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Literal

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.group_avatar_json import avatar_fields
from boxless.api.params import hex_keys, paging, parse_body, path_key
from boxless.api.web import qr_png
from boxless.client.core import Client
from boxless.client.group_store import GroupMessageRow
from boxless.client.groups import GroupManager, GroupSummary
from boxless.errors import UsageError
from boxless.groups import DEFAULT_LINK_VALIDITY

HEX_KEY = r"^[0-9a-f]{64}$"
MAX_AVATAR_B64 = 70_000  # base64 of the group avatar limit (48 KiB), with room to spare


class NewGroup(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)


class GroupChange(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    avatar: str | None = Field(default=None, max_length=MAX_AVATAR_B64, description="base64")
    announcements_only: bool | None = None
    history_sharing: bool | None = None


class NewMember(BaseModel):
    identity_key: str = Field(pattern=HEX_KEY)


class RoleChange(BaseModel):
    role: Literal["admin", "member"]


class LinkRequest(BaseModel):
    validity_s: int = Field(default=DEFAULT_LINK_VALIDITY, ge=60, le=365 * 86_400)


class GroupLinkBody(BaseModel):
    link: str = Field(min_length=1, max_length=8192)


class NewGroupMessage(BaseModel):
    text: str = Field(min_length=1, max_length=60_000)
    mentions: list[str] | None = Field(default=None, max_length=1000)
    mention_all: bool | None = None
    reply_to: str | None = Field(default=None, min_length=1, max_length=128)


class GroupEditBody(BaseModel):
    text: str = Field(min_length=1, max_length=60_000)


class GroupReactionBody(BaseModel):
    emoji: str = Field(min_length=1, max_length=32)
    remove: bool = False


class ReadPosition(BaseModel):
    seq: int = Field(ge=0)


class MuteState(BaseModel):
    muted: bool


class PinState(BaseModel):
    pinned: bool


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/groups"): NewGroup,
    ("PATCH", "/api/v1/groups/{gid}"): GroupChange,
    ("POST", "/api/v1/groups/{gid}/members"): NewMember,
    ("PUT", "/api/v1/groups/{gid}/members/{key}/role"): RoleChange,
    ("POST", "/api/v1/groups/{gid}/link"): LinkRequest,
    ("POST", "/api/v1/groups/preview"): GroupLinkBody,
    ("POST", "/api/v1/groups/join"): GroupLinkBody,
    ("POST", "/api/v1/groups/{gid}/messages"): NewGroupMessage,
    ("POST", "/api/v1/groups/{gid}/read"): ReadPosition,
    ("PUT", "/api/v1/groups/{gid}/mute"): MuteState,
    ("PUT", "/api/v1/groups/{gid}/pins/{message_id}"): PinState,
    ("POST", "/api/v1/groups/{gid}/messages/{mid}/edit"): GroupEditBody,
    ("POST", "/api/v1/groups/{gid}/messages/{mid}/reactions"): GroupReactionBody,
}


Names = Callable[[bytes, bytes], str]


def names_of(groups: GroupManager) -> Names:
    """``member_name`` memoised for one response (a page names each sender once)."""
    seen: dict[tuple[bytes, bytes], str] = {}

    def name(gid: bytes, key: bytes) -> str:
        if (gid, key) not in seen:
            seen[gid, key] = groups.member_name(gid, key)
        return seen[gid, key]

    return name


def group_message_json(seq: int, m: GroupMessageRow, names: Names, me: bytes) -> dict[str, Any]:
    return {
        "id": m.message_id,
        "seq": seq,
        "group": m.group_id.hex(),
        "sender": m.sender.hex(),
        "sender_name": names(m.group_id, m.sender),
        "outgoing": m.outgoing,
        "kind": m.kind,
        "sent_at_ms": m.sent_at_ms,
        "received_at_ms": m.received_at_ms,
        "text": m.text,
        "state": m.state,
        "mentions_me": m.mentions_me,
        "mentions": [k.hex() for k in m.mentions],
        "mention_all": m.mention_all,
        "pinned": m.pinned,
        "read_count": m.read_count,
        "reply_to": m.reply_to,
        "edited": m.edited,
        "deleted": m.deleted,
        "reactions": reactions_json(m, me),
    }


def reactions_json(m: GroupMessageRow, me: bytes) -> dict[str, list[str]]:
    """1:1's shape, ``{emoji: [who, ...]}``: "me" for me, a member's identity key (hex)
    for anyone else, in the order they reacted."""
    out: dict[str, list[str]] = {}
    for member, emoji in m.reactions:
        out.setdefault(emoji, []).append("me" if member == me else member.hex())
    return out


def group_json(s: GroupSummary, names: Names, me: bytes) -> dict[str, Any]:
    g = s.state
    return {
        "id": g.group_id.hex(),
        "name": g.name,
        "description": g.description,
        **avatar_fields(g),  # avatar (base64), avatar_url, avatar_blurhash
        "creator": g.creator.hex() if g.creator else None,
        "announcements_only": g.announcements_only,
        "history_sharing": g.history_sharing,
        "my_role": s.my_role,
        "member": s.member,
        "muted": s.muted,
        "unread": s.unread,
        "mentions": s.mentions,
        "last_message": group_message_json(*s.last, names, me) if s.last else None,
        "members": [
            {"identity_key": k.hex(), "role": m.role.value, "name": names(g.group_id, k)}
            for k, m in sorted(g.members.items())
        ],
    }


def _avatar(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ApiError(422, "invalid_body", 'avatar: must be base64 ("" removes it)') from None


def group_routes(client: Client) -> list[Route]:
    """The /api/v1/groups routes over ``client.groups``."""
    groups = client.groups
    me = client.me

    def one(gid: bytes, status: int = 200) -> Response:
        return JSONResponse(
            group_json(groups.summary(gid), names_of(groups), me), status_code=status
        )

    def message(message_id: str, status: int = 200) -> Response:
        seq, row = groups.message(message_id)
        return JSONResponse(group_message_json(seq, row, names_of(groups), me), status_code=status)

    async def list_groups(request: Request) -> Response:
        """The groups I am in, or was (member=false), with unread counts and the last message."""
        names = names_of(groups)
        return JSONResponse([group_json(s, names, me) for s in groups.summaries()])

    async def create(request: Request) -> Response:
        """Create a group with me as its creator and only member."""
        body = await parse_body(request, NewGroup)
        state = await groups.create(body.name, body.description)
        return one(state.group_id, 201)

    async def show(request: Request) -> Response:
        """One group: settings, my role, members and roles, unread counts."""
        return one(path_key(request, "gid"))

    async def change(request: Request) -> Response:
        """Change the name, description, avatar (base64, "" removes) or settings (admins)."""
        body = await parse_body(request, GroupChange)
        gid = path_key(request, "gid")
        await groups.update(
            gid,
            name=body.name,
            description=body.description,
            avatar=_avatar(body.avatar) if body.avatar is not None else None,
            announcements_only=body.announcements_only,
            history_sharing=body.history_sharing,
        )
        return one(gid)

    async def invite(request: Request) -> Response:
        """Invite an accepted contact into the group (admins only)."""
        body = await parse_body(request, NewMember)
        gid = path_key(request, "gid")
        await groups.invite(gid, bytes.fromhex(body.identity_key))
        return one(gid, 201)

    async def remove(request: Request) -> Response:
        """Remove a member (admins only); the group's keys rotate."""
        gid = path_key(request, "gid")
        await groups.remove(gid, path_key(request, "key"))
        return one(gid)

    async def set_role(request: Request) -> Response:
        """Make a member an admin, or an admin a member again (admins only)."""
        body = await parse_body(request, RoleChange)
        gid = path_key(request, "gid")
        await groups.set_role(gid, path_key(request, "key"), body.role == "admin")
        return one(gid)

    async def leave(request: Request) -> Response:
        """Leave the group; it stays listed (member=false) with its history."""
        gid = path_key(request, "gid")
        await groups.leave(gid)
        return one(gid)

    async def make_link(request: Request) -> Response:
        """A boxless://g/ link (and its QR code) anyone can ask to join by (admins only)."""
        body = await parse_body(request, LinkRequest)
        link = groups.make_link(path_key(request, "gid"), body.validity_s)
        short = await client.links.publish_group_link(link)  # the invite goes to the store
        png = await trio.to_thread.run_sync(qr_png, short)
        return JSONResponse(
            {
                "link": short,
                "expires_at": link.expires_at,
                "qr_png": "data:image/png;base64," + base64.b64encode(png).decode(),
            },
            status_code=201,
        )

    async def preview(request: Request) -> Response:
        """What a group link is for: the group, its name, the admin who made it."""
        body = await parse_body(request, GroupLinkBody)
        link = groups.preview_link(await client.links.resolve_group(body.link))
        return JSONResponse(
            {
                "group": link.group_id.hex(),
                "name": link.name,
                "admin": link.admin_key.hex(),
                "admin_name": link.admin_name,
                "expires_at": link.expires_at,
            }
        )

    async def join(request: Request) -> Response:
        """Ask to join by link; the group appears in the list once the admin lets me in."""
        body = await parse_body(request, GroupLinkBody)
        long = await client.links.resolve_group(body.link)  # a short link: fetched
        name = groups.preview_link(long).name
        gid = await groups.join(long)
        return JSONResponse(
            {"group": gid.hex(), "name": name, "state": "requested"}, status_code=202
        )

    async def joins(request: Request) -> Response:
        """Groups I asked to join by link and am not in yet."""
        return JSONResponse(
            [
                {
                    "group": j.group_id.hex(),
                    "name": j.name,
                    "admin": j.admin.hex(),
                    "requested_at_ms": j.requested_at_ms,
                }
                for j in groups.joins()
            ]
        )

    async def history(request: Request) -> Response:
        """Paged group history in delivery order; ``before`` is a message's ``seq``."""
        limit, before = paging(request)
        names = names_of(groups)
        rows = groups.messages(path_key(request, "gid"), limit, before)
        return JSONResponse([group_message_json(seq, m, names, me) for seq, m in rows])

    async def send(request: Request) -> Response:
        """Send a text (one encryption, one Waku message); @mentions are parsed unless given."""
        body = await parse_body(request, NewGroupMessage)
        mentions = hex_keys(body.mentions, "mentions") if body.mentions is not None else None
        row = await groups.send_text(
            path_key(request, "gid"),
            body.text,
            mentions=mentions,
            mention_all=body.mention_all,
            reply_to=body.reply_to,
        )
        return message(row.message_id, 201)

    async def show_message(request: Request) -> Response:
        """One message of the group (e.g. the one a reply quotes, when not loaded)."""
        gid, mid = path_key(request, "gid"), request.path_params["mid"]
        try:
            seq, row = groups.message(mid)
        except UsageError:
            row = None
        if row is None or row.group_id != gid:
            raise ApiError(404, "not_found", "no such message in this group")
        return JSONResponse(group_message_json(seq, row, names_of(groups), me))

    async def edit(request: Request) -> Response:
        """New text for one of my texts, for every member (author only)."""
        body = await parse_body(request, GroupEditBody)
        mid = request.path_params["mid"]
        await groups.edit(path_key(request, "gid"), mid, body.text)
        return message(mid)

    async def delete(request: Request) -> Response:
        """Delete a message for everyone: my own, or anyone's if I am an admin."""
        mid = request.path_params["mid"]
        await groups.delete(path_key(request, "gid"), mid)
        return message(mid)

    async def react(request: Request) -> Response:
        """Add (or, with remove, take back) my reaction on a message."""
        body = await parse_body(request, GroupReactionBody)
        mid = request.path_params["mid"]
        await groups.react(path_key(request, "gid"), mid, body.emoji, body.remove)
        return message(mid)

    async def read(request: Request) -> Response:
        """I read up to ``seq``: unread counts drop, members see my read marker."""
        body = await parse_body(request, ReadPosition)
        gid = path_key(request, "gid")
        await groups.mark_read(gid, body.seq)
        return one(gid)

    async def mute(request: Request) -> Response:
        """Mute or unmute: a muted group notifies only for mentions."""
        body = await parse_body(request, MuteState)
        gid = path_key(request, "gid")
        groups.set_muted(gid, body.muted)
        return one(gid)

    async def pins(request: Request) -> Response:
        """The group's pinned messages."""
        names = names_of(groups)
        return JSONResponse(
            [
                group_message_json(seq, m, names, me)
                for seq, m in groups.pins(path_key(request, "gid"))
            ]
        )

    async def pin(request: Request) -> Response:
        """Pin or unpin a message for every member."""
        body = await parse_body(request, PinState)
        message_id = request.path_params["message_id"]
        await groups.pin(path_key(request, "gid"), message_id, body.pinned)
        return message(message_id)

    prefix = "/api/v1/groups"
    return [
        Route(prefix, list_groups, methods=["GET"]),
        Route(prefix, create, methods=["POST"]),
        Route(prefix + "/joins", joins, methods=["GET"]),
        Route(prefix + "/preview", preview, methods=["POST"]),
        Route(prefix + "/join", join, methods=["POST"]),
        Route(prefix + "/{gid}", show, methods=["GET"]),
        Route(prefix + "/{gid}", change, methods=["PATCH"]),
        Route(prefix + "/{gid}/members", invite, methods=["POST"]),
        Route(prefix + "/{gid}/members/{key}", remove, methods=["DELETE"]),
        Route(prefix + "/{gid}/members/{key}/role", set_role, methods=["PUT"]),
        Route(prefix + "/{gid}/leave", leave, methods=["POST"]),
        Route(prefix + "/{gid}/link", make_link, methods=["POST"]),
        Route(prefix + "/{gid}/messages", history, methods=["GET"]),
        Route(prefix + "/{gid}/messages", send, methods=["POST"]),
        Route(prefix + "/{gid}/messages/{mid}/edit", edit, methods=["POST"]),
        Route(prefix + "/{gid}/messages/{mid}", show_message, methods=["GET"]),
        Route(prefix + "/{gid}/messages/{mid}", delete, methods=["DELETE"]),
        Route(prefix + "/{gid}/messages/{mid}/reactions", react, methods=["POST"]),
        Route(prefix + "/{gid}/read", read, methods=["POST"]),
        Route(prefix + "/{gid}/mute", mute, methods=["PUT"]),
        Route(prefix + "/{gid}/pins", pins, methods=["GET"]),
        Route(prefix + "/{gid}/pins/{message_id}", pin, methods=["PUT"]),
    ]
