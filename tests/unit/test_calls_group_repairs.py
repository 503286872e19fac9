"""Group calls' sans-IO core, repairs: ICE restarts, new connections (rejoin, retry),
detach, and the "call still running" keep-alive for members not in the call — with
the attacker (a member that renegotiates in a loop, a replay of a call we left)."""

from __future__ import annotations

import pytest

from boxless.calls.group import (
    DETACH_GRACE,
    KEEPALIVE_EVERY,
    REJOIN_QUIET,
    RENEGOTIATE_BURST,
    RENEGOTIATE_EVERY,
    RING_TIMEOUT,
    SEEN_FOR,
    SUMMARY_EVERY,
    GroupChanged,
    GroupSend,
    GroupSignal,
    GroupSignalKind,
    MakeOffer,
    PairReset,
    RemoteDescription,
    StaleRound,
)
from boxless.errors import UsageError
from tests.unit.test_calls_core import sdp
from tests.unit.test_calls_group import CALL, GID, Mesh


class RepairMesh(Mesh):
    """A mesh whose fake browsers make new certificates when told (a new connection)."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.new_cert: dict[bytes, int] = {}

    def fp(self, me: bytes) -> int:
        return me[0] + 64 * self.new_cert.get(me, 0)


def _connected(n: int, video: bool = False) -> tuple[RepairMesh, list[bytes]]:
    """A mesh of ``n`` cores, all joined and every pair described."""
    mesh = RepairMesh(n)
    keys = sorted(mesh.cores)
    mesh.run(keys[0], mesh.cores[keys[0]].start(GID, mesh.members, CALL, video, mesh.now))
    mesh.deliver()
    for k in keys[1:]:
        mesh.run(k, mesh.cores[k].join(CALL, mesh.members, mesh.now))
        mesh.deliver()
    return mesh, keys


def _pair(mesh: RepairMesh, me: bytes, peer: bytes):  # type: ignore[no-untyped-def]
    call = mesh.cores[me].current
    assert call is not None
    return call.pairs[peer]


def _kinds(out: list, kind: GroupSignalKind) -> list[GroupSend]:  # type: ignore[type-arg]
    return [o for o in out if isinstance(o, GroupSend) and o.signal.kind is kind]


def test_an_ice_restart_is_a_new_round_on_the_same_connection() -> None:
    mesh, (a, b) = _connected(2)
    code = _pair(mesh, a, b).code
    # a offers: its browser restarts ICE (same certificate, new ufrag)
    out = mesh.cores[a].local_description(CALL, b, sdp(mesh.fp(a), "rest"), mesh.now, gen=0)
    assert PairReset(b) in out and len(_kinds(out, GroupSignalKind.OFFER)) == 1
    pa = _pair(mesh, a, b)
    assert pa.gen == 1 and pa.epoch == 0 and not pa.remote_sdp and not pa.connected
    mesh.run(a, out)
    mesh.deliver()
    pa, pb = _pair(mesh, a, b), _pair(mesh, b, a)
    assert pa.remote_sdp and pb.gen == 1 and pb.epoch == 0  # same connection, new round
    assert pa.code == pb.code == code  # same certificates: the same code
    # a description made for the old round is refused
    with pytest.raises(StaleRound):
        mesh.cores[b].local_description(CALL, a, sdp(mesh.fp(b)), mesh.now, gen=0)
    # another certificate is another connection: a new epoch on the answerer
    mesh.run(a, mesh.cores[a].local_description(CALL, b, sdp(77), mesh.now, gen=1))
    mesh.deliver()
    assert _pair(mesh, b, a).epoch == 1 and _pair(mesh, b, a).gen == 2
    assert not any(c.dropped for c in mesh.cores.values())


def test_a_member_cannot_make_us_renegotiate_in_a_loop() -> None:
    mesh, (a, b) = _connected(2)
    core = mesh.cores[b]  # the answerer; a is the hostile offerer
    accepted = 0
    for i in range(1000):
        offer = GroupSignal(CALL, GID, GroupSignalKind.OFFER, sdp=sdp(mesh.fp(a), f"u{i:03d}"))
        out = core.receive(a, offer, mesh.now + i / 1000, members=mesh.members)
        accepted += any(isinstance(o, RemoteDescription) for o in out)
    assert accepted == RENEGOTIATE_BURST
    assert core.dropped["renegotiation rate"] == 1000 - RENEGOTIATE_BURST
    # then one per RENEGOTIATE_EVERY s
    later = mesh.now + 1 + RENEGOTIATE_EVERY
    offer = GroupSignal(CALL, GID, GroupSignalKind.OFFER, sdp=sdp(mesh.fp(a), "late"))
    assert core.receive(a, offer, later, members=mesh.members)
    # JOINs asking for new connections are rate-limited the same way (b offers to c)
    mesh3, (x, y, z) = _connected(3)
    hello = GroupSignal(CALL, GID, GroupSignalKind.JOIN)
    renewed = sum(
        PairReset(z) in mesh3.cores[y].receive(z, hello, mesh3.now, members=mesh3.members)
        for _ in range(50)
    )
    assert renewed == RENEGOTIATE_BURST
    assert mesh3.cores[y].dropped["renegotiation rate"] == 50 - RENEGOTIATE_BURST


def test_restart_offers_only_for_a_pair_in_the_running_call() -> None:
    mesh, (a, b, c) = _connected(3)
    eve = b"\xee" * 32
    core = mesh.cores[c]
    restart = GroupSignal(CALL, GID, GroupSignalKind.OFFER, sdp=sdp(mesh.fp(a), "evil"))
    # a non-member, another call, the answerer of a pair (glare), a garbage SDP
    assert core.receive(eve, restart, mesh.now, members=mesh.members) == []
    other = GroupSignal(b"o" * 16, GID, GroupSignalKind.OFFER, sdp=sdp(mesh.fp(a), "evil"))
    assert core.receive(a, other, mesh.now, members=mesh.members) == []
    assert mesh.cores[a].receive(c, restart, mesh.now, members=mesh.members) == []
    bad = GroupSignal(CALL, GID, GroupSignalKind.OFFER, sdp="v=0 junk")
    assert core.receive(a, bad, mesh.now, members=mesh.members) == []
    assert core.dropped["not a member"] == 1 and core.dropped["not the running call"] == 1
    assert mesh.cores[a].dropped["offer from the answerer"] == 1
    assert core.dropped["bad SDP"] == 1
    assert _pair(mesh, c, a).gen == 0  # nothing changed
    # a member removed from the group can't restart its old pair
    assert core.receive(a, restart, mesh.now, members={b, c}) == []
    assert _pair(mesh, c, a).gen == 0


def test_rejoin_makes_new_connections_with_everyone() -> None:
    mesh, (a, b, c) = _connected(3)
    # b's page was reloaded: b rejoins; it offers to c, a offers to it
    out = mesh.cores[b].rejoin(CALL, mesh.members, mesh.now)
    mesh.new_cert[b] = mesh.new_cert[a] = 1  # new connections, new certificates
    assert {o.peer for o in _kinds(out, GroupSignalKind.JOIN)} == {a, c}
    assert MakeOffer(c) in out and MakeOffer(a) not in out
    mesh.run(b, out)
    mesh.deliver()
    for me, peer in ((a, b), (b, a), (b, c), (c, b)):
        pair = _pair(mesh, me, peer)
        assert pair.epoch == 1 and pair.local_sdp and pair.remote_sdp, (me, peer)
    assert _pair(mesh, a, c).epoch == 0  # the others' pair is untouched
    assert _pair(mesh, a, b).code == _pair(mesh, b, a).code
    # a JOIN from a participant we answer changes nothing (its new offer will)
    hello = GroupSignal(CALL, GID, GroupSignalKind.JOIN)
    assert mesh.cores[c].receive(a, hello, mesh.now, members=mesh.members) == []
    ringing = Mesh(2)
    x, y = sorted(ringing.cores)
    ringing.run(x, ringing.cores[x].start(GID, ringing.members, CALL, False, ringing.now))
    ringing.deliver()
    with pytest.raises(UsageError, match="join the call first"):
        ringing.cores[y].rejoin(CALL, ringing.members, ringing.now)


def test_retry_one_pair_from_either_side() -> None:
    mesh, (a, b) = _connected(2)
    # the answerer asks: a JOIN to the offerer, who replaces the pair
    out = mesh.cores[b].retry(CALL, a, mesh.now)
    mesh.new_cert[a] = mesh.new_cert[b] = 1
    assert [o.peer for o in _kinds(out, GroupSignalKind.JOIN)] == [a] and MakeOffer(a) not in out
    mesh.run(b, out)
    mesh.deliver()
    assert _pair(mesh, a, b).epoch == 1 and _pair(mesh, b, a).epoch == 1
    assert _pair(mesh, a, b).remote_sdp and _pair(mesh, b, a).local_sdp
    # the offerer retries: offers at once
    out = mesh.cores[a].retry(CALL, b, mesh.now)
    mesh.new_cert[a] = 2
    assert MakeOffer(b) in out
    mesh.run(a, out)
    mesh.deliver()
    assert _pair(mesh, a, b).epoch == 2 and _pair(mesh, b, a).epoch == 2


def test_a_detached_call_is_left_unless_a_page_rejoins() -> None:
    mesh, (a, b) = _connected(2)
    t = mesh.now
    mesh.cores[b].detach(CALL, t)
    timer = mesh.cores[b].get_timer()
    assert timer is not None and timer <= t + DETACH_GRACE
    # a rejoin in time keeps the call
    mesh.cores[b].rejoin(CALL, mesh.members, t + 2)
    assert mesh.cores[b].current is not None and mesh.cores[b].current.detached_at is None
    # detached again and nobody comes back: we leave (everyone is told)
    mesh.cores[b].detach(CALL, t + 10)
    out: list = []  # type: ignore[type-arg]
    for s in range(11, 11 + int(DETACH_GRACE) + 1):
        out += mesh.cores[b].handle_timer(t + s)
    assert mesh.cores[b].current is None
    assert [o.peer for o in _kinds(out, GroupSignalKind.LEAVE)] == [a]


def test_members_not_in_the_call_keep_seeing_it() -> None:
    mesh, keys = _connected(4)
    a, b, c, d = keys
    # c and d leave; a (the smallest key in the call) keeps them informed
    for k in (c, d):
        mesh.run(k, mesh.cores[k].leave(CALL, mesh.members, mesh.now))
    mesh.deliver()
    assert mesh.cores[c].current is None
    t = mesh.now
    sent: dict[bytes, list[GroupSend]] = {}
    for s in range(1, int(3 * SUMMARY_EVERY) + 1):
        for k in (a, b):
            for o in mesh.cores[k].handle_timer(t + s):
                if not isinstance(o, GroupSend):
                    continue
                if o.peer in (c, d):
                    sent.setdefault(k, []).append(o)  # held: shown to c below
                else:  # keep-alives between a and b get through
                    mesh.cores[o.peer].receive(k, o.signal, t + s, members=mesh.members)
    # one elected participant, one signal per member per SUMMARY_EVERY
    assert b not in sent and len(sent[a]) == 2 * 3
    assert all(o.signal.kind is GroupSignalKind.KEEPALIVE for o in sent[a])
    # the keep-alive shows the call again (as running, not ringing) to one who left
    ka = sent[a][0].signal
    early = mesh.cores[c].receive(a, ka, t + REJOIN_QUIET / 2, members=mesh.members)
    assert early == [] and mesh.cores[c].dropped["ended call"] >= 1
    got = mesh.cores[c].receive(a, ka, t + REJOIN_QUIET + 1, members=mesh.members)
    assert isinstance(got[-1], GroupChanged) and got[-1].call.ringing and not got[-1].call.rung
    # ... but a replayed RING or JOIN of the call we left stays dropped
    other = mesh.cores[d]
    for kind in (GroupSignalKind.RING, GroupSignalKind.JOIN):
        assert other.receive(a, GroupSignal(CALL, GID, kind), t + 30, members=mesh.members) == []
    assert other.current is None
    # the banner lasts while keep-alives come, and goes SEEN_FOR s after the last one
    seen = mesh.cores[c]
    heard = t + REJOIN_QUIET + 1
    for s in (SUMMARY_EVERY, 2 * SUMMARY_EVERY):
        seen.receive(a, ka, heard + s, members=mesh.members)
        assert seen.handle_timer(heard + s + SUMMARY_EVERY) == []
    last = heard + 2 * SUMMARY_EVERY
    assert seen.handle_timer(last + SEEN_FOR)[-1].call.ended  # type: ignore[union-attr]


def test_a_seen_call_ends_when_its_last_participant_leaves() -> None:
    mesh = Mesh(3)
    a, b, c = sorted(mesh.cores)
    hello = GroupSignal(CALL, GID, GroupSignalKind.JOIN, video=True)
    core = mesh.cores[c]
    core.receive(a, hello, mesh.now, members=mesh.members)
    core.receive(b, hello, mesh.now, members=mesh.members)
    assert core.current is not None and set(core.current.participants) == {a, b}
    bye = GroupSignal(CALL, GID, GroupSignalKind.LEAVE)
    core.receive(a, bye, mesh.now + 1, members=mesh.members)
    assert core.current is not None
    out = core.receive(b, bye, mesh.now + 2, members=mesh.members)
    assert core.current is None and out[-1].call.ended  # type: ignore[union-attr]
    # a rung call stops ringing when the caller hangs up
    mesh2 = Mesh(2)
    x, y = sorted(mesh2.cores)
    mesh2.run(x, mesh2.cores[x].start(GID, mesh2.members, CALL, False, mesh2.now))
    mesh2.deliver()
    mesh2.run(x, mesh2.cores[x].leave(CALL, mesh2.members, mesh2.now + 1))
    mesh2.deliver()
    assert mesh2.cores[y].current is None


def test_the_summary_costs_one_signal_per_member_per_period_in_a_large_group() -> None:
    mesh = Mesh(50)
    keys = sorted(mesh.cores)
    mesh.run(keys[0], mesh.cores[keys[0]].start(GID, mesh.members, CALL, False, mesh.now))
    mesh.deliver()
    for k in keys[1:3]:
        mesh.run(k, mesh.cores[k].join(CALL, mesh.members, mesh.now))
        mesh.deliver()
    t, total = mesh.now, 0
    for s in range(1, int(10 * SUMMARY_EVERY) + 1, int(KEEPALIVE_EVERY)):
        for k in keys[:3]:
            out = mesh.cores[k].handle_timer(t + s)
            total += sum(1 for o in out if isinstance(o, GroupSend) and o.peer not in keys[:3])
    assert total <= 47 * 10  # 47 members outside, one signal each per minute
    assert mesh.cores[keys[5]].current is not None  # their ring (45 s) ...
    assert mesh.cores[keys[5]].handle_timer(t + RING_TIMEOUT)  # ... ended; summaries re-show it
