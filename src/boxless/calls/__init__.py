"""Calls, sans-IO: the call state machine and the SDP facts it relies on (docs/calls.md)."""

from boxless.calls.core import (
    Call,
    CallCore,
    Changed,
    EndReason,
    Out,
    Phase,
    RemoteCandidates,
    Send,
)
from boxless.calls.sdp import SdpFacts, call_code, parse_sdp

__all__ = [
    "Call",
    "CallCore",
    "Changed",
    "EndReason",
    "Out",
    "Phase",
    "RemoteCandidates",
    "SdpFacts",
    "Send",
    "call_code",
    "parse_sdp",
]
