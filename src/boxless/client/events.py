"""Every event the client emits: one typed class per kind, one JSON shape each.

Features emit these (never bare dicts) through the client's event publisher;
the local API sends :func:`to_json` of each over ``/api/v1/events`` and
publishes :func:`json_schema` beside its OpenAPI document, and the web UI
handles every ``type`` listed in :data:`EVENT_TYPES` (a test checks both).

Fields are JSON-ready (keys and ids as hex strings), so an event is safe to
log by kind and to send as it is: none carries message text or a secret.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import TypeAdapter


@dataclass(frozen=True, slots=True)
class Ready:
    """The client subscribed and caught up from store history."""

    type: ClassVar[str] = "ready"


@dataclass(frozen=True, slots=True)
class Connectivity:
    """The network failed (or came back) for the client."""

    type: ClassVar[str] = "connectivity"
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """A contact was added, or its state, name or picture changed."""

    type: ClassVar[str] = "contact"
    contact: str
    state: str


@dataclass(frozen=True, slots=True)
class ContactRequestReceived:
    """Someone asked to become our contact."""

    type: ClassVar[str] = "contact_request"
    contact: str
    state: str
    name: str


@dataclass(frozen=True, slots=True)
class MessageChanged:
    """A 1:1 message was added, or its state, text or reactions changed."""

    type: ClassVar[str] = "message"
    message_id: str
    contact: str = ""


@dataclass(frozen=True, slots=True)
class Typing:
    """A contact started or stopped typing."""

    type: ClassVar[str] = "typing"
    contact: str
    typing: bool


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    """Our own name or picture changed."""

    type: ClassVar[str] = "profile"
    name: str


@dataclass(frozen=True, slots=True)
class VerificationBroken:
    """A verified contact's device changed: compare safety numbers again."""

    type: ClassVar[str] = "verification_broken"
    contact: str


@dataclass(frozen=True, slots=True)
class SasEmoji:
    emoji: str
    name: str


@dataclass(frozen=True, slots=True)
class VerificationChanged:
    """An emoji verification flow changed (see :mod:`boxless.client.verification`)."""

    type: ClassVar[str] = "verification"
    contact: str
    flow: str
    role: str
    state: str
    emoji: tuple[SasEmoji, ...]
    decimals: tuple[int, ...]
    they_confirmed: bool
    reason: str | None
    by: str | None
    expires_in_s: int


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """A group's membership, settings, read state or our part in it changed."""

    type: ClassVar[str] = "group"
    group: str


@dataclass(frozen=True, slots=True)
class GroupMessageChanged:
    """A group message was added or changed (state, pin, read count)."""

    type: ClassVar[str] = "group_message"
    group: str
    id: str


@dataclass(frozen=True, slots=True)
class GroupMention:
    """A new group message mentions us."""

    type: ClassVar[str] = "group_mention"
    group: str
    id: str


@dataclass(frozen=True, slots=True)
class GroupMessageEdited:
    """A member (``by``) edited a group text."""

    type: ClassVar[str] = "group_edit"
    group: str
    id: str
    by: str


@dataclass(frozen=True, slots=True)
class GroupMessageDeleted:
    """A group text was deleted for everyone (by its author or an admin, ``by``)."""

    type: ClassVar[str] = "group_delete"
    group: str
    id: str
    by: str


@dataclass(frozen=True, slots=True)
class GroupReactionChanged:
    """A member (``by``) added or took back a reaction on a group text."""

    type: ClassVar[str] = "group_reaction"
    group: str
    id: str
    by: str


@dataclass(frozen=True, slots=True)
class BroadcastChanged:
    """A broadcast list or one of its broadcasts changed."""

    type: ClassVar[str] = "broadcast"
    list: str


@dataclass(frozen=True, slots=True)
class ChatSettingsChanged:
    """A chat's list settings changed: ``change`` is "settings" (pin, mute, unread mark),
    "draft", or "deleted" (deleted for me: its messages removed from this device);
    ``chat`` is its name (``contact:``/``group:`` + hex). Never a draft's text."""

    type: ClassVar[str] = "chat_settings"
    chat: str
    change: str


@dataclass(frozen=True, slots=True)
class FavouritesChanged:
    """A message was saved to (``saved``) or removed from the favourites: ``chat`` is its
    chat's name, ``message_id`` its id in that chat (the favourites pane re-reads)."""

    type: ClassVar[str] = "favourites"
    chat: str
    message_id: str
    saved: bool


@dataclass(frozen=True, slots=True)
class CatchUpProgress:
    """Catch-up from store history: ``done`` messages so far (``finished`` at the end)."""

    type: ClassVar[str] = "catch_up"
    done: int
    finished: bool


@dataclass(frozen=True, slots=True)
class CallChanged:
    """A call rings, connects or ends. ``phase``: outgoing, incoming, connecting,
    connected or ended (``reason``: hung_up, declined, busy, missed, failed, lost);
    ``code``: the short call code both sides compare (once answered). Never SDP."""

    type: ClassVar[str] = "call"
    call_id: str
    chat: str
    outgoing: bool
    video: bool
    phase: str
    reason: str | None
    code: str
    duration_s: int


@dataclass(frozen=True, slots=True)
class GroupCallChanged:
    """A group call rings, someone joins or leaves, a pair's offer/answer/candidates
    came, or it ends (``participants``: how many others are in); fetch
    ``GET /api/v1/group-calls/current`` for the details. Never SDP."""

    type: ClassVar[str] = "group_call"
    call_id: str
    chat: str
    video: bool
    ringing: bool
    ended: bool
    participants: int


@dataclass(frozen=True, slots=True)
class CallIce:
    """The peer sent ICE candidates (``count`` so far): fetch the call to get them."""

    type: ClassVar[str] = "call_ice"
    call_id: str
    count: int


@dataclass(frozen=True, slots=True)
class AttachmentProgress:
    """A file of a message is being fetched: ``done`` of ``total`` bytes."""

    type: ClassVar[str] = "attachment_progress"
    message_id: str
    index: int
    chat: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class AttachmentReady:
    """A file of a message was fetched and verified (``ok``), or failed (``error`` says why)."""

    type: ClassVar[str] = "attachment_ready"
    message_id: str
    index: int
    chat: str
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class MomentChanged:
    """A Moments post changed: ``what`` is posted, deleted, like, comment,
    comment_deleted or mention (a post names us). Fetch the feed for the rest."""

    type: ClassVar[str] = "moment_changed"
    post_id: str
    poster: str
    what: str


@dataclass(frozen=True, slots=True)
class RedEnvelopeChanged:
    """A red envelope in ``chat`` (its card is message ``message_id``) was added,
    opened by someone, relayed, emptied or refunded; ``state`` open | done."""

    type: ClassVar[str] = "redenvelope"
    chat: str
    message_id: str
    state: str


@dataclass(frozen=True, slots=True)
class PaymentChanged:
    """A payment card in ``chat`` was added or its status changed (``pending``,
    ``confirmed``, ``received``, ``forged``, ``failed``, ``open``), or, with no
    ``message_id`` and status ``address``, the contact's wallet address arrived."""

    type: ClassVar[str] = "payment"
    chat: str
    message_id: str
    status: str


@dataclass(frozen=True, slots=True)
class NearbyChanged:
    """People Nearby changed: ``what`` is started, stopped, card, expired, hello,
    hello_sent, hello_accepted, hello_ignored or contact. Fetch GET /nearby."""

    type: ClassVar[str] = "nearby"
    what: str


@dataclass(frozen=True, slots=True)
class DevicesChanged:
    """This account's devices changed (``what``: linked, renamed, revoked, roster) or
    a link's transfer moved (``sending``: ``done`` of ``total`` frames)."""

    type: ClassVar[str] = "devices"
    what: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class AppMessageReceived:
    """A mini-app message from ``contact`` (key hex): ``kind`` request (to a bot),
    response or push (from the installed app's bot only); ``payload`` is its JSON."""

    type: ClassVar[str] = "app_message"
    contact: str
    app_id: str
    kind: str
    request_id: str
    payload: Any


Event = (
    Ready
    | Connectivity
    | ContactChanged
    | ContactRequestReceived
    | MessageChanged
    | Typing
    | ProfileChanged
    | VerificationBroken
    | VerificationChanged
    | GroupChanged
    | GroupMessageChanged
    | GroupMention
    | GroupMessageEdited
    | GroupMessageDeleted
    | GroupReactionChanged
    | BroadcastChanged
    | ChatSettingsChanged
    | CatchUpProgress
    | CallChanged
    | CallIce
    | GroupCallChanged
    | AttachmentProgress
    | AttachmentReady
    | MomentChanged
    | NearbyChanged
    | PaymentChanged
    | RedEnvelopeChanged
    | DevicesChanged
    | AppMessageReceived
    | FavouritesChanged
)

EVENT_CLASSES: tuple[type[Any], ...] = (
    Ready,
    Connectivity,
    ContactChanged,
    ContactRequestReceived,
    MessageChanged,
    Typing,
    ProfileChanged,
    VerificationBroken,
    VerificationChanged,
    GroupChanged,
    GroupMessageChanged,
    GroupMention,
    GroupMessageEdited,
    GroupMessageDeleted,
    GroupReactionChanged,
    BroadcastChanged,
    ChatSettingsChanged,
    CatchUpProgress,
    CallChanged,
    CallIce,
    GroupCallChanged,
    AttachmentProgress,
    AttachmentReady,
    MomentChanged,
    NearbyChanged,
    PaymentChanged,
    RedEnvelopeChanged,
    DevicesChanged,
    AppMessageReceived,
    FavouritesChanged,
)
EVENT_TYPES: frozenset[str] = frozenset(c.type for c in EVENT_CLASSES)


def to_json(event: Event) -> dict[str, Any]:
    """The event as the API sends it: ``{"type": ..., **fields}``."""
    return {"type": event.type, **dataclasses.asdict(event)}


def from_json(data: dict[str, Any]) -> Event:
    """An event back from :func:`to_json` (KeyError/TypeError for a malformed one)."""
    fields = {k: v for k, v in data.items() if k != "type"}
    for cls in EVENT_CLASSES:
        if cls.type == data["type"]:
            event: Event = cls(**fields)
            return event
    raise KeyError(data["type"])


def json_schema() -> dict[str, Any]:
    """One JSON Schema (``oneOf``, discriminated by ``type``) for every event."""
    variants = []
    for cls in EVENT_CLASSES:
        schema = TypeAdapter(cls).json_schema()
        props = schema.setdefault("properties", {})
        props["type"] = {"const": cls.type, "type": "string"}
        schema["required"] = ["type", *schema.get("required", [])]
        schema["title"] = cls.type
        variants.append(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Boxless client event",
        "oneOf": variants,
    }
