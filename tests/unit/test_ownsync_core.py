"""Own-device sync, the pure core and the codec: who may set our settings, who wins
(two devices converge whatever the order), and the decoder of a peer's bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat.ownsync import OwnSync, SyncEntry
from boxless.client import ownsync_core as core
from boxless.errors import DecodeError, UsageError

ME, BOB = b"\x01" * 32, b"\x02" * 32
A1, A2, A3 = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32
CHAT = "contact:" + "ab" * 32
PIN = core.setting_key(CHAT, "pinned")
READ = core.setting_key("group:" + "cd" * 32, "read")


@pytest.mark.parametrize(
    ("sender", "device", "certified", "allowed"),
    [
        (ME, A2, True, True),  # another device of ours, in the roster
        (ME, A2, False, False),  # revoked, or never listed
        (ME, A1, True, False),  # this device (a replay of our own)
        (BOB, A2, True, False),  # a contact (its own device, certified by its roster)
        (BOB, A2, False, False),  # a stranger
    ],
)
def test_who_may_set_our_settings(
    sender: bytes, device: bytes, certified: bool, allowed: bool
) -> None:
    assert (core.authorise(ME, sender, device, A1, certified) is None) is allowed


def _apply(held: core.Register, key: str, writes: list[tuple[str, int, bytes]]) -> core.Register:
    for value, clock, device in writes:
        if core.incoming_wins(held, key, value, clock, device):
            held = core.Register(value, clock, device)
    return held


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["true", "false"]), st.integers(0, 5), st.sampled_from([A1, A2, A3])
        ),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_last_writer_wins_in_any_order(writes: list[tuple[str, int, bytes]], rnd: object) -> None:
    shuffled = list(writes)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    start = core.default(PIN)
    one, other = _apply(start, PIN, writes), _apply(start, PIN, shuffled)
    # the same (clock, device) written twice with different values is a device lying
    # to itself; every honest device writes one value per clock
    if len({(c, d) for _, c, d in writes}) == len(writes):
        assert one == other


def test_a_local_change_moves_the_clock_past_what_was_seen() -> None:
    held = core.Register("false", 10_000, A2)  # A2's clock runs ahead of ours
    new = core.local_change(held, True, now_ms=5_000, device=A1)
    assert new == core.Register("true", 10_001, A1)
    assert core.incoming_wins(held, PIN, new.value, new.clock, A1)
    assert core.local_change(new, True, now_ms=6_000, device=A1) is None  # unchanged
    assert core.local_change(core.default(PIN), False, 1, A1) is None  # the default


def test_a_read_position_only_moves_forward() -> None:
    held = core.Register("40", 7, A2)
    assert core.local_change(held, 30, now_ms=9, device=A1) is None
    assert not core.incoming_wins(held, READ, "39", 99, A3)
    assert core.incoming_wins(held, READ, "41", 0, A3)


@pytest.mark.parametrize(
    ("key", "value", "parsed"),
    [
        (PIN, "true", (CHAT, "pinned", True)),
        (PIN, "1", None),  # a bool setting takes a bool
        (READ, "12", ("group:" + "cd" * 32, "read", 12)),
        (READ, "true", None),
        (READ, "-1", None),
        ("contact:" + "ab" * 32 + ":alias", '"Bobby"', (CHAT, "alias", "Bobby")),
        ("contact:" + "ab" * 32 + ":tags", '["a","b"]', (CHAT, "tags", ["a", "b"])),
        ("contact:" + "ab" * 32 + ":tags", '["a",1]', None),
        ("contact:" + "ab" * 32 + ":blocked", '"yes"', None),
        ("contact:" + "ab" * 32 + ":starred", "true", (CHAT, "starred", True)),
        ("fav:" + CHAT + ":0a1b", "true", (CHAT, "fav:0a1b", True)),
        ("fav:" + CHAT + ":0a 1b", "true", None),
        ("chat:" + CHAT + ":colour", "true", None),  # a newer client's setting: skipped
        ("chat:contact:zz:pinned", "true", None),
    ],
)
def test_keys(key: str, value: str, parsed: object) -> None:
    assert core.parse_key(key, value) == parsed


def test_the_codec_checks_every_field() -> None:
    body = OwnSync((SyncEntry(PIN, "true", 3),))
    msg = env.decode(env.encode(env.new_message(body, lamport=0, sent_at_ms=1)))
    assert msg.body == body
    for bad in (
        lambda: SyncEntry("", "true", 1),
        lambda: SyncEntry("k" * 201, "true", 1),
        lambda: SyncEntry(PIN, "not json", 1),
        lambda: SyncEntry(PIN, '"' + "x" * 4100 + '"', 1),
        lambda: SyncEntry(PIN, "true", 2**63),
        lambda: OwnSync(()),
        lambda: OwnSync(tuple(SyncEntry(PIN, "true", i) for i in range(65))),
    ):
        with pytest.raises(UsageError):
            bad()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=512))
def test_the_decoder_takes_any_bytes(data: bytes) -> None:
    from boxless.wire import chat_pb2

    pb = chat_pb2.ChatMessage()
    pb.version, pb.message_id = 1, b"\x00" * 16
    try:
        pb.own_sync.ParseFromString(data)
    except Exception:  # noqa: BLE001 (protobuf's own error type for garbage)
        return
    try:
        env.decode(pb.SerializeToString())
    except DecodeError:
        pass
