"""The auto-download rule: which received files the node fetches by itself."""

from __future__ import annotations

import pytest

from boxless.blobs.cid import RAW, Cid
from boxless.chat.attachment import AttachmentKind, AttachmentRef
from boxless.client.attachments import AUTO_MODES, auto_downloads

K = AttachmentKind
MB = 1024**2


def _ref(kind: AttachmentKind, size: int) -> AttachmentRef:
    mime = {K.IMAGE: "image/jpeg", K.VIDEO: "video/mp4", K.VOICE: "audio/ogg"}.get(
        kind, "application/pdf"
    )
    return AttachmentRef(
        cid=bytes(Cid.of(RAW, b"x")),
        key=bytes(32),
        plaintext_sha256=bytes(32),
        ciphertext_sha256=bytes(32),
        size=size,
        mime=mime,
        name="f",
        kind=kind,
    )


@pytest.mark.parametrize(
    "mode,kind,size,fetched",
    [
        ("photos", K.IMAGE, MB, True),
        ("photos", K.STICKER, MB, True),
        ("photos", K.VOICE, MB, True),
        ("photos", K.VIDEO, MB, False),
        ("photos", K.FILE, MB, False),
        ("photos", K.IMAGE, 30 * MB, False),  # the size limit holds for photos too
        ("media", K.VIDEO, MB, True),
        ("media", K.FILE, MB, False),
        ("all", K.FILE, MB, True),
        ("all", K.FILE, 25 * MB + 1, False),
        ("never", K.IMAGE, 1, False),
        ("not a mode", K.IMAGE, 1, False),  # a bad stored value fetches nothing
    ],
)
def test_rule(mode: str, kind: AttachmentKind, size: int, fetched: bool) -> None:
    assert auto_downloads(_ref(kind, size), mode, 25 * MB) is fetched


def test_size_zero_is_never() -> None:
    assert not any(auto_downloads(_ref(K.IMAGE, 1), mode, 0) for mode in AUTO_MODES)
