"""A group's picture in its JSON: ``avatar``, ``avatar_url``, ``avatar_blurhash``."""

from __future__ import annotations

import base64
from typing import Any

from boxless.chat.avatar_ref import decode_avatar_ref
from boxless.errors import DecodeError
from boxless.groups.membership import GroupState

__all__ = ["avatar_fields"]


def avatar_fields(state: GroupState) -> dict[str, Any]:
    """``avatar``, ``avatar_url`` and ``avatar_blurhash`` of a group's JSON."""
    raw = state.avatar
    try:
        ref = decode_avatar_ref(raw)
    except DecodeError:
        return {"avatar": None, "avatar_url": None, "avatar_blurhash": None}
    if ref is None:
        return {
            "avatar": base64.b64encode(raw).decode() if raw else None,
            "avatar_url": None,
            "avatar_blurhash": None,
        }
    return {
        "avatar": base64.b64encode(ref.thumbnail).decode() if ref.thumbnail else None,
        "avatar_url": f"/api/v1/groups/{state.group_id.hex()}/avatar?v={ref.cid_text}",
        "avatar_blurhash": ref.blurhash or None,
    }
