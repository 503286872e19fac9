"""The parts of a peer's SDP the call feature relies on, parsed from untrusted text.

The browser's WebRTC stack parses the whole SDP; we only check that it is a
plausible session description of bounded size and take out what the security
of the call rests on: the DTLS certificate fingerprint (SHA-256) and the ICE
username fragment. Every media section must name the same fingerprint, so a
description cannot carry a second certificate for some of its media.

:func:`call_code` binds both fingerprints and the call id into a short code
that both people can read to each other: equal codes mean the media is
encrypted end to end between their two browsers, whatever relay carries it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from boxless.errors import DecodeError

__all__ = ["MAX_SDP_BYTES", "SdpFacts", "call_code", "parse_sdp"]

MAX_SDP_BYTES: Final = 16 * 1024
MAX_SDP_LINES: Final = 400
MAX_MEDIA_SECTIONS: Final = 16
_FINGERPRINT = re.compile(r"a=fingerprint:sha-256 ((?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2})")
_UFRAG = re.compile(r"a=ice-ufrag:([A-Za-z0-9+/]{4,256})")
_LINE = re.compile(r"[a-z]=[\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class SdpFacts:
    """What a checked SDP says: its DTLS fingerprint (32 bytes), ICE ufrag, media kinds."""

    fingerprint: bytes
    ice_ufrag: str
    media: tuple[str, ...]


def parse_sdp(sdp: str) -> SdpFacts:
    """Check ``sdp`` and take out its fingerprint; :class:`DecodeError` says what is wrong."""
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise DecodeError(f"SDP is longer than {MAX_SDP_BYTES} bytes")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        raise DecodeError("SDP does not start with v=0")
    if len(lines) > MAX_SDP_LINES:
        raise DecodeError(f"SDP has more than {MAX_SDP_LINES} lines")
    fingerprints: set[str] = set()
    ufrags: set[str] = set()
    media: list[str] = []
    for line in lines:
        if not _LINE.fullmatch(line):
            raise DecodeError("SDP has a line that is not <letter>=<printable ASCII>")
        if line.startswith("m="):
            media.append(line[2:].split(" ", 1)[0])
        elif line.startswith("a=fingerprint:"):
            m = _FINGERPRINT.fullmatch(line)
            if m is None:
                raise DecodeError("SDP fingerprint is not a SHA-256 fingerprint")
            fingerprints.add(m.group(1).upper())
        elif line.startswith("a=ice-ufrag:"):
            u = _UFRAG.fullmatch(line)
            if u is None:
                raise DecodeError("SDP ICE ufrag is not 4-256 ICE characters")
            ufrags.add(u.group(1))
    if not media or len(media) > MAX_MEDIA_SECTIONS:
        raise DecodeError(f"SDP must have 1-{MAX_MEDIA_SECTIONS} media sections")
    if len(fingerprints) != 1:
        raise DecodeError("SDP must name exactly one DTLS fingerprint (SHA-256)")
    if len(ufrags) != 1:
        raise DecodeError("SDP must name exactly one ICE ufrag")
    fp = bytes.fromhex(fingerprints.pop().replace(":", ""))
    return SdpFacts(fp, ufrags.pop(), tuple(media))


def call_code(call_id: bytes, caller_fingerprint: bytes, callee_fingerprint: bytes) -> str:
    """A short code both sides compute alike: 8 digits over the call id and both fingerprints."""
    h = hashlib.sha256(b"boxless-call-code-v1" + call_id + caller_fingerprint + callee_fingerprint)
    n = int.from_bytes(h.digest()[:8], "big") % 10**8
    return f"{n // 10**4:04d} {n % 10**4:04d}"
