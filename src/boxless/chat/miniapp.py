"""Mini-app messages on the wire: :class:`AppMessage` between an app page and its bot.

Every field comes from a peer: building a value checks it and raises
:class:`~boxless.errors.UsageError`; the envelope turns that into a DecodeError.
The payload is JSON text (checked here to be well-formed UTF-8 JSON), at most
16 KiB; what it means is the app's and its bot's business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum

from boxless.errors import UsageError
from boxless.wire import miniapp_pb2

__all__ = ["MAX_PAYLOAD_BYTES", "AppKind", "AppMessage", "body_to_proto", "decode_body"]

MAX_PAYLOAD_BYTES = 16 * 1024
APP_ID = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)+"
)


class AppKind(Enum):
    REQUEST = "request"
    RESPONSE = "response"
    PUSH = "push"


_TO_PB = {
    AppKind.REQUEST: miniapp_pb2.AppMessage.REQUEST,
    AppKind.RESPONSE: miniapp_pb2.AppMessage.RESPONSE,
    AppKind.PUSH: miniapp_pb2.AppMessage.PUSH,
}
_FROM_PB = {v: k for k, v in _TO_PB.items()}


@dataclass(frozen=True, slots=True)
class AppMessage:
    app_id: str
    kind: AppKind
    request_id: bytes
    payload: bytes

    def __post_init__(self) -> None:
        if len(self.app_id) > 100 or not APP_ID.fullmatch(self.app_id):
            raise UsageError("an app message names its app by a reverse-DNS id")
        if len(self.request_id) != 16:
            raise UsageError("an app message's request id is 16 bytes")
        if len(self.payload) > MAX_PAYLOAD_BYTES:
            raise UsageError(f"an app message's payload is at most {MAX_PAYLOAD_BYTES} bytes")
        try:
            json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UsageError("an app message's payload is UTF-8 JSON") from None

    def __repr__(self) -> str:  # the payload may be private (an order, an address)
        return f"AppMessage({self.app_id}, {self.kind.value}, {self.request_id.hex()})"


def body_to_proto(body: AppMessage) -> miniapp_pb2.AppMessage:
    pb = miniapp_pb2.AppMessage()
    pb.app_id, pb.kind = body.app_id, _TO_PB[body.kind]
    pb.request_id, pb.payload = body.request_id, body.payload
    return pb


def decode_body(pb: miniapp_pb2.AppMessage) -> AppMessage:
    """A peer's app message, checked (UsageError on a bad field)."""
    kind = _FROM_PB.get(pb.kind)
    if kind is None:
        raise UsageError("an app message of no known kind")
    return AppMessage(pb.app_id, kind, pb.request_id, pb.payload)
