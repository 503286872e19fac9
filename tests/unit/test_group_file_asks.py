"""Who gets a group file pinned again by asking (the pure rule; the limits are the 1:1
asks' ``AskLimiter``, tests/integration/test_attacks_repin.py),
played by a table of attackers; the notes' routing past the contact gate."""

from __future__ import annotations

import pytest

from boxless.blobs.cid import RAW, Cid
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentAsk, AttachmentKind, AttachmentRef
from boxless.client.attachment_store import AttachmentRow
from boxless.client.group_file_asks import SKEW_MS, ask_refusal, is_group_note
from boxless.groups import GroupState, Role
from boxless.groups.membership import Member

ME, BOB, EVE, GONE = b"a" * 32, b"b" * 32, b"e" * 32, b"g" * 32
GID, OTHER = b"G" * 32, b"O" * 32
SENT_MS = 1_000_000_000
REF = AttachmentRef(
    cid=bytes(Cid.of(RAW, b"x")),
    key=bytes(32),
    plaintext_sha256=bytes(32),
    ciphertext_sha256=bytes(32),
    size=1,
    mime="application/pdf",
    name="a.pdf",
    kind=AttachmentKind.FILE,
)


def _state(*members: bytes) -> GroupState:
    return GroupState(
        GID, ME, "g", "", b"", {m: Member(Role.MEMBER, b"j" * 32) for m in members},
        frozenset({GONE}), False, False,
    )  # fmt: skip


def _file(outgoing: bool = True, chat: str = f"group:{GID.hex()}") -> AttachmentRow:
    return AttachmentRow(b"m" * 64, 0, chat, outgoing, REF, "ready", 1, None, 0)


GOOD = dict(
    me=ME, asker=BOB, group_id=GID, state=_state(ME, BOB), asker_joined_ms=SENT_MS - 1,
    file=_file(), sent_at_ms=SENT_MS,
)  # fmt: skip


@pytest.mark.parametrize(
    "change,why",
    [
        ({}, None),
        ({"asker_joined_ms": SENT_MS + SKEW_MS}, None),  # a Join op's clock a little ahead
        ({"state": None}, "not a group we are in"),
        ({"state": _state(BOB)}, "not a group we are in"),  # we left
        ({"asker": EVE}, "not a member"),  # a contact of ours, not in the group
        ({"asker": GONE}, "not a member"),  # a removed member
        ({"file": None}, "not a file we sent"),  # a forged file id
        ({"sent_at_ms": None}, "not a file we sent"),
        ({"file": _file(outgoing=False)}, "not a file we sent"),  # someone else's file
        ({"file": _file(chat=f"group:{OTHER.hex()}")}, "not a file we sent"),  # another group
        ({"file": _file(chat="contact:" + BOB.hex())}, "not a file we sent"),  # a 1:1 file
        ({"asker_joined_ms": SENT_MS + SKEW_MS + 1}, "joined after"),  # never received it
        ({"asker_joined_ms": None}, "joined after"),
    ],
)
def test_who_may_ask(change: dict[str, object], why: str | None) -> None:
    got = ask_refusal(**{**GOOD, **change})  # type: ignore[arg-type]
    assert got is None if why is None else (got is not None and why in got)


def test_only_group_notes_take_the_ungated_route() -> None:
    mid16, mid32 = b"m" * 16, b"m" * 32
    assert is_group_note(env.Attachments((), ask=AttachmentAsk(mid32, 0, GID)))
    assert not is_group_note(env.Attachments((), ask=AttachmentAsk(mid16, 0)))  # 1:1: gated
    assert not is_group_note(env.Attachments((REF,)))  # a file: gated
    assert not is_group_note(env.Text("hi"))
