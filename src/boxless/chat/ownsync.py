"""Own-device sync on the wire: :class:`OwnSync`, settings one of our devices changed.

It travels only between the devices of one account (Olm, in a 1:1
ChatMessage), but a contact can send the same body, so every field is
checked like any peer's: building a value raises
:class:`~boxless.errors.UsageError` (the envelope turns it into a DecodeError).
A key is at most 200 bytes of printable ASCII, a value at most 4 KiB of JSON,
a clock below 2^63, at most 64 entries. What the keys mean is
:mod:`boxless.client.ownsync_core`'s business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from boxless.errors import UsageError
from boxless.wire import ownsync_pb2

__all__ = [
    "MAX_ENTRIES",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "OwnSync",
    "SyncEntry",
    "body_to_proto",
    "decode_body",
]

MAX_ENTRIES = 64
MAX_KEY_BYTES = 200
MAX_VALUE_BYTES = 4096  # a contact's note: 1,000 characters
MAX_CLOCK = 2**63 - 1
_KEY = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass(frozen=True, slots=True)
class SyncEntry:
    key: str
    value: str = field(repr=False)  # may be private (a contact's alias or note)
    clock: int

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.key):
            raise UsageError(f"a sync key is 1..{MAX_KEY_BYTES} printable ASCII characters")
        if len(self.value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise UsageError(f"a sync value is at most {MAX_VALUE_BYTES} bytes")
        try:
            json.loads(self.value)
        except ValueError:
            raise UsageError("a sync value is JSON") from None
        if not 0 <= self.clock <= MAX_CLOCK:
            raise UsageError("a sync clock is in 0..2^63-1")


@dataclass(frozen=True, slots=True)
class OwnSync:
    entries: tuple[SyncEntry, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.entries) <= MAX_ENTRIES:
            raise UsageError(f"an own-device sync carries 1..{MAX_ENTRIES} entries")


def body_to_proto(body: OwnSync) -> ownsync_pb2.OwnSync:
    pb = ownsync_pb2.OwnSync()
    for e in body.entries:
        pb.entries.add(key=e.key, value=e.value, clock=e.clock)
    return pb


def decode_body(pb: ownsync_pb2.OwnSync) -> OwnSync:
    """A peer's own-device sync, checked (UsageError on a bad field)."""
    if len(pb.entries) > MAX_ENTRIES:
        raise UsageError(f"an own-device sync carries at most {MAX_ENTRIES} entries")
    return OwnSync(tuple(SyncEntry(e.key, e.value, e.clock) for e in pb.entries))
