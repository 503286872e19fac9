"""Own-device sync, the decisions (sans-IO): what a setting is, who may set it, who wins.

Theory of operation
-------------------
Each synced setting is a register named by a key (:func:`parse_key`):

- ``chat:<chat>:pinned`` / ``:muted`` / ``:unread`` — the chat list's flags, a
  JSON bool, last writer wins;
- ``read:<group id hex>`` — our read position in a group as the SDS Lamport
  time of the newest message read, a JSON int, the larger wins (reading
  never goes back);
- ``contact:<identity key hex>:alias`` / ``:note`` (JSON strings), ``:tags``
  (a JSON list of strings), ``:starred`` / ``:blocked`` (JSON bools) — what
  the user keeps about a contact, and whether they blocked it; last writer
  wins (the receiving feature checks the values again when it applies them);
- ``fav:<chat>:<message id>`` — whether that message is in the favourites,
  a JSON bool, last writer wins.

A register holds its value, a clock and the device that set it. A local
change takes the clock ``max(previous + 1, now_ms)`` (a hybrid clock: it
follows wall time between devices whose clocks agree, and still moves past
everything this device saw when they don't). An incoming value wins when
its ``(clock, device key)`` is larger than the held one's, so two devices
that changed the same setting end on the same value whichever order the
messages arrive in. A register never written is the setting's default at
clock 0 (a value equal to the default is not sent).

Only our own certified, unrevoked devices may set our registers
(:func:`authorise`); anything else is refused with a reason (and counted by
the plug-in). An entry whose clock runs more than :data:`MAX_AHEAD_MS` ahead of
our own clock is refused too (:func:`from_the_future`): one such write would
otherwise win over every later change, and a clock at the wire's maximum left
no next clock for this device's own changes (the setting was stuck).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = [
    "DEFAULTS",
    "Register",
    "authorise",
    "from_the_future",
    "incoming_wins",
    "local_change",
    "parse_key",
    "setting_key",
]

_CHAT = r"(?:contact|group):[0-9a-f]{64}"
_KEY = re.compile(
    rf"(chat):({_CHAT}):(pinned|muted|unread)|(read):([0-9a-f]{{64}})"
    r"|(contact):([0-9a-f]{64}):(alias|tags|note|starred|blocked)"
    rf"|(fav):({_CHAT}):([\x21-\x7e]{{1,120}})"
)
DEFAULTS: dict[str, object] = {
    "pinned": False,
    "muted": False,
    "unread": False,
    "read": 0,
    "alias": "",
    "tags": [],
    "note": "",
    "starred": False,
    "blocked": False,
    "fav": False,
}
MAX_AHEAD_MS = 24 * 3600 * 1000  # how far another device's clock may run ahead of ours
_BOOLS = {"pinned", "muted", "unread", "starred", "blocked", "fav"}
MAX_READ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Register:
    value: str  # JSON
    clock: int
    device: bytes


def setting_key(chat: str, name: str) -> str:
    """The key of chat flag ``name`` (pinned, muted, unread), for ``read`` of a
    group chat's read position, for a contact's notes (alias, tags, note, starred,
    blocked) of those."""
    if name == "read":
        return f"read:{chat.removeprefix('group:')}"
    if name.startswith("fav:"):  # "fav:<message id>"
        return f"fav:{chat}:{name.removeprefix('fav:')}"
    if name in ("alias", "tags", "note", "starred", "blocked"):
        return f"{chat}:{name}"
    return f"chat:{chat}:{name}"


def encode(value: object) -> str:
    """A setting's value as a register holds it (compact JSON, UTF-8 kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_key(key: str, value: str) -> tuple[str, str, object] | None:
    """``(chat, setting, value)`` of a well-formed entry, or None (an unknown key,
    say a newer client's, or a value of the wrong type)."""
    found = _KEY.fullmatch(key)
    if found is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if found[1]:
        return (found[2], found[3], parsed) if isinstance(parsed, bool) else None
    if found[9]:
        return (found[10], f"fav:{found[11]}", parsed) if isinstance(parsed, bool) else None
    if found[6]:
        target, setting = f"contact:{found[7]}", found[8]
        if setting in _BOOLS:
            ok = isinstance(parsed, bool)
        elif setting == "tags":
            ok = isinstance(parsed, list) and all(isinstance(t, str) for t in parsed)
        else:
            ok = isinstance(parsed, str)
        return (target, setting, parsed) if ok else None
    if isinstance(parsed, bool) or not isinstance(parsed, int) or not 0 <= parsed <= MAX_READ:
        return None
    return f"group:{found[5]}", "read", parsed


def default(key: str) -> Register:
    if key.startswith(("read:", "fav:")):
        setting = key.split(":", 1)[0]
    else:
        setting = key.rsplit(":", 1)[-1]
    return Register(encode(DEFAULTS[setting]), 0, b"")


def local_change(held: Register, value: object, now_ms: int, device: bytes) -> Register | None:
    """The register after this device's setting took ``value``, or None if unchanged
    (a read position only moves forward)."""
    encoded = encode(value)
    if encoded == held.value:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= json.loads(held.value):
            return None
    return Register(encoded, max(held.clock + 1, now_ms), device)


def from_the_future(clock: int, now_ms: int) -> bool:
    """Whether an incoming entry's ``clock`` is too far ahead of ours to be taken."""
    return clock > now_ms + MAX_AHEAD_MS


def incoming_wins(held: Register, key: str, value: str, clock: int, device: bytes) -> bool:
    """Whether another device's ``value`` for ``key`` replaces the held one."""
    if key.startswith("read:"):
        return bool(json.loads(value) > json.loads(held.value))
    return (clock, device) > (held.clock, held.device)


def authorise(
    me: bytes, sender: bytes, device: bytes, my_device: bytes, certified: bool
) -> str | None:
    """None if a sync from ``sender``'s ``device`` may set our settings, else why not."""
    if sender != me:
        return "not from one of our devices (a contact or a stranger)"
    if device == my_device:
        return "from this device (a replay of our own)"
    if not certified:
        return "from a device our roster does not list (revoked or unknown)"
    return None
