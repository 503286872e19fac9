"""A group's picture in its JSON: ``avatar``, ``avatar_url``, ``avatar_blurhash``.

The thumbnail in a picture reference is an admin's bytes that every member's
browser decodes: it is shown only if its header says a JPEG, PNG or WebP of at
most :data:`MAX_THUMB_EDGE` px a side (ours are 96 px; a 1 KB JPEG may claim
65,535 x 65,535), else the picture itself is (``avatar_url``, checked by the
client as an image with the bomb caps).
"""

from __future__ import annotations

import base64
from typing import Any

from boxless.chat.avatar_ref import decode_avatar_ref
from boxless.errors import DecodeError
from boxless.groups.membership import GroupState
from boxless.media.images import ImageRejected, probe_image

__all__ = ["MAX_THUMB_EDGE", "avatar_fields"]

MAX_THUMB_EDGE = 256


def _sane_thumbnail(thumb: bytes) -> bool:
    try:
        mime, width, height = probe_image(thumb)  # the header only: decodes nothing
    except ImageRejected:
        return False
    edges_ok = 0 < width <= MAX_THUMB_EDGE and 0 < height <= MAX_THUMB_EDGE
    return edges_ok and mime in ("image/jpeg", "image/png", "image/webp")


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
        "avatar": (
            base64.b64encode(ref.thumbnail).decode() if _sane_thumbnail(ref.thumbnail) else None
        ),
        "avatar_url": f"/api/v1/groups/{state.group_id.hex()}/avatar?v={ref.cid_text}",
        "avatar_blurhash": ref.blurhash or None,
    }
