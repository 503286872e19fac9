"""Group calls' sans-IO core: a mesh of cores wired together, and the attacker."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import pytest

from boxless.calls.group import (
    LOST_AFTER,
    MAX_PARTICIPANTS,
    MAX_RESENDS,
    RESEND_EVERY,
    RING_TIMEOUT,
    GroupCallCore,
    GroupChanged,
    GroupOut,
    GroupSend,
    GroupSignal,
    GroupSignalKind,
    MakeOffer,
    PairCandidates,
    PeerGone,
    RemoteDescription,
)
from boxless.errors import UsageError
from tests.unit.test_calls_core import sdp

GID = b"g" * 32
CALL = b"c" * 16


def key(i: int) -> bytes:
    return bytes([i + 1]) * 32


class Mesh:
    """N cores and N fake browsers (each answers offers at once); signals routed in order."""

    def __init__(self, n: int) -> None:
        self.members = {key(i) for i in range(n)}
        self.cores = {key(i): GroupCallCore(key(i)) for i in range(n)}
        self.queue: deque[tuple[bytes, GroupSend]] = deque()
        self.remote: dict[bytes, dict[bytes, str]] = {k: {} for k in self.cores}
        self.now = 1000.0

    def fp(self, me: bytes) -> int:
        return me[0]

    def run(self, me: bytes, out: list[GroupOut]) -> None:
        core = self.cores[me]
        for o in out:
            if isinstance(o, GroupSend):
                self.queue.append((me, o))
            elif isinstance(o, MakeOffer):
                assert core.current is not None
                self.run(
                    me,
                    core.local_description(
                        core.current.call_id, o.peer, sdp(self.fp(me)), self.now
                    ),
                )
            elif isinstance(o, RemoteDescription):
                self.remote[me][o.peer] = o.kind
                if o.kind == "offer":
                    assert core.current is not None
                    answer = sdp(self.fp(me))
                    self.run(
                        me, core.local_description(core.current.call_id, o.peer, answer, self.now)
                    )

    def deliver(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            sender, send = self.queue.popleft()
            out = self.cores[send.peer].receive(sender, send.signal, self.now, members=self.members)
            self.run(send.peer, out)
        raise AssertionError("signals never settled")


def test_four_join_and_every_pair_connects_once_with_one_offerer() -> None:
    mesh = Mesh(4)
    a, *others = sorted(mesh.cores)
    mesh.run(a, mesh.cores[a].start(GID, mesh.members, CALL, True, mesh.now))
    mesh.deliver()
    for k in others:
        call = mesh.cores[k].current
        assert call is not None and call.ringing and a in call.participants
    for k in others:
        mesh.run(k, mesh.cores[k].join(CALL, mesh.members, mesh.now))
        mesh.deliver()
    for k, core in mesh.cores.items():
        call = core.current
        assert call is not None and not call.ringing
        assert set(call.pairs) == mesh.members - {k}, k
        for peer, pair in call.pairs.items():
            assert pair.offerer == (k < peer)
            assert pair.local_sdp and pair.remote_sdp and len(pair.code) == 9
            # each pair's code is equal on both sides
            other = mesh.cores[peer].current
            assert other is not None and other.pairs[k].code == pair.code
    assert all(not c.dropped for c in mesh.cores.values())


def test_leave_and_lost_and_late_join() -> None:
    mesh = Mesh(3)
    a, b, c = sorted(mesh.cores)
    mesh.run(a, mesh.cores[a].start(GID, mesh.members, CALL, False, mesh.now))
    mesh.deliver()
    mesh.run(b, mesh.cores[b].join(CALL, mesh.members, mesh.now))
    mesh.deliver()
    out = mesh.cores[b].leave(CALL, mesh.members, mesh.now)
    assert any(isinstance(o, GroupSend) and o.peer == a for o in out)
    mesh.run(b, out)
    mesh.deliver()
    assert mesh.cores[b].current is None
    call = mesh.cores[a].current
    assert call is not None and b not in call.participants and b not in call.pairs
    # c joins later (its ring still stands): pairs with a only
    mesh.run(c, mesh.cores[c].join(CALL, mesh.members, mesh.now))
    mesh.deliver()
    assert set(mesh.cores[c].current.pairs) == {a}  # type: ignore[union-attr]
    # c goes silent: a drops it after LOST_AFTER; keep-alives keep a pair alive
    later = mesh.now + LOST_AFTER + 1
    out = mesh.cores[a].handle_timer(later)
    assert PeerGone(c) in out
    # a keeps running alone until the ring timeout
    assert mesh.cores[a].handle_timer(mesh.now + RING_TIMEOUT + 1)[-1].call.ended  # type: ignore[union-attr]


def test_ring_times_out_and_ended_calls_stay_ended() -> None:
    mesh = Mesh(2)
    a, b = sorted(mesh.cores)
    mesh.run(a, mesh.cores[a].start(GID, mesh.members, CALL, False, mesh.now))
    mesh.deliver()
    out = mesh.cores[b].handle_timer(mesh.now + RING_TIMEOUT)
    assert isinstance(out[-1], GroupChanged) and out[-1].call.ended
    ring = GroupSignal(CALL, GID, GroupSignalKind.RING)
    assert mesh.cores[b].receive(a, ring, mesh.now + 50, members=mesh.members) == []
    assert mesh.cores[b].dropped["ended call"] == 1


def test_limits_full_call() -> None:
    n = MAX_PARTICIPANTS + 1
    mesh = Mesh(n)
    keys = sorted(mesh.cores)
    mesh.run(keys[0], mesh.cores[keys[0]].start(GID, mesh.members, CALL, False, mesh.now))
    mesh.deliver()
    for k in keys[1:MAX_PARTICIPANTS]:
        mesh.run(k, mesh.cores[k].join(CALL, mesh.members, mesh.now))
        mesh.deliver()
    last = keys[-1]
    with pytest.raises(UsageError, match="full"):
        mesh.cores[last].join(CALL, mesh.members, mesh.now)
    # a ninth that joins anyway (a modified client) is refused by everyone
    hello = GroupSignal(CALL, GID, GroupSignalKind.JOIN)
    for k in keys[:MAX_PARTICIPANTS]:
        assert mesh.cores[k].receive(last, hello, mesh.now, members=mesh.members) == []
        assert mesh.cores[k].dropped["call full"] == 1
        assert len(mesh.cores[k].current.pairs) == MAX_PARTICIPANTS - 1  # type: ignore[union-attr]


def test_attacker_non_member_glare_foreign_group_floods() -> None:
    mesh = Mesh(3)
    a, b, c = sorted(mesh.cores)
    eve = b"\xee" * 32
    core = mesh.cores[b]
    # a stranger (not a member) can't ring or join
    for kind in GroupSignalKind:
        assert (
            core.receive(
                eve, GroupSignal(CALL, GID, kind, sdp=sdp(9)), mesh.now, members=mesh.members
            )
            == []
        )
    assert core.dropped["not a member"] == len(GroupSignalKind) and core.current is None
    # a ring flood from a member rings once; the rest are rate-limited or repeats
    for i in range(1000):
        core.receive(
            a,
            GroupSignal(CALL, GID, GroupSignalKind.RING),
            mesh.now + i / 1000,
            members=mesh.members,
        )
    assert core.dropped["ring repeated"] + core.dropped["ring rate"] == 999
    # another call ringing while this one runs does not replace it
    other = GroupSignal(b"o" * 16, GID, GroupSignalKind.RING)
    assert core.receive(c, other, mesh.now, members=mesh.members) == []
    assert core.current is not None and core.current.call_id == CALL
    mesh.run(b, core.join(CALL, mesh.members, mesh.now))
    mesh.deliver()
    # glare: c (larger key) offering to b is out of turn
    bad = GroupSignal(CALL, GID, GroupSignalKind.OFFER, sdp=sdp(7))
    core.receive(c, GroupSignal(CALL, GID, GroupSignalKind.JOIN), mesh.now, members=mesh.members)
    assert core.receive(c, bad, mesh.now, members=mesh.members) == []
    assert core.dropped["offer from the answerer"] == 1
    # signals for another group under the same call id, bad SDP, candidate floods
    foreign = GroupSignal(CALL, b"x" * 32, GroupSignalKind.LEAVE)
    assert core.receive(a, foreign, mesh.now, members=mesh.members) == []
    assert core.dropped["another group"] == 1
    flood = GroupSignal(CALL, GID, GroupSignalKind.CANDIDATES, candidates=("candidate:1",) * 16)
    got = [core.receive(a, flood, mesh.now, members=mesh.members) for _ in range(10)]
    assert sum(1 for g in got if g and isinstance(g[0], PairCandidates)) == 4
    assert core.dropped["too many candidates"] == 6
    # a member removed from the group is no longer heard
    assert (
        core.receive(a, GroupSignal(CALL, GID, GroupSignalKind.LEAVE), mesh.now, members={b, c})
        == []
    )
    assert a in core.current.participants  # type: ignore[union-attr]


def test_only_members_start() -> None:
    core = GroupCallCore(key(0))
    with pytest.raises(UsageError, match="not a member"):
        core.start(GID, {key(1)}, CALL, False, 0.0)


def test_a_lost_offer_or_answer_is_sent_again() -> None:
    """Signals are ephemeral: an offer whose answer never came is re-sent every
    RESEND_EVERY s (at most MAX_RESENDS times); a repeat of the offer we answered
    gets our answer again."""
    mesh = Mesh(2)
    a, b = sorted(mesh.cores)
    mesh.run(a, mesh.cores[a].start(GID, mesh.members, CALL, True, mesh.now))
    mesh.deliver()
    mesh.run(b, mesh.cores[b].join(CALL, mesh.members, mesh.now))
    # B's join reaches A; A offers; the network loses every answer B sends back once
    lost = 0
    for _ in range(50):
        if not mesh.queue:
            break
        sender, send = mesh.queue.popleft()
        if send.signal.kind is GroupSignalKind.ANSWER and lost == 0:
            lost += 1
            continue
        out = mesh.cores[send.peer].receive(sender, send.signal, mesh.now, members=mesh.members)
        mesh.run(send.peer, out)
    pair = mesh.cores[a].current.pairs[b]  # type: ignore[union-attr]
    assert lost == 1 and not pair.remote_sdp
    timer = mesh.cores[a].get_timer()
    assert timer is not None and timer <= mesh.now + RESEND_EVERY
    mesh.now += RESEND_EVERY
    mesh.run(a, mesh.cores[a].handle_timer(mesh.now))
    mesh.deliver()
    pair = mesh.cores[a].current.pairs[b]  # type: ignore[union-attr]
    assert pair.remote_sdp and pair.code == mesh.cores[b].current.pairs[a].code  # type: ignore[union-attr]
    # answered: no more re-sends; and at most MAX_RESENDS for a peer that never answers
    mesh.now += 10 * RESEND_EVERY
    assert not any(
        isinstance(o, GroupSend) and o.signal.kind is GroupSignalKind.OFFER
        for o in mesh.cores[a].handle_timer(mesh.now)
    )

    # a peer that never answers: the offer goes out again at most MAX_RESENDS times
    mesh.cores[a].current = replace(  # type: ignore[union-attr]
        mesh.cores[a].current, pairs={b: replace(pair, remote_sdp="", resends=0)}
    )
    again = 0
    for _ in range(3 * MAX_RESENDS):
        mesh.now += RESEND_EVERY
        out = mesh.cores[a].handle_timer(mesh.now)
        again += sum(
            isinstance(o, GroupSend) and o.signal.kind is GroupSignalKind.OFFER for o in out
        )
        mesh.cores[a].current = replace(  # type: ignore[union-attr]
            mesh.cores[a].current, participants={b: mesh.now}
        )
    assert again == MAX_RESENDS
