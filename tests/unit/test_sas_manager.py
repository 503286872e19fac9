"""The client's emoji-verification flows (SasBook): two books wired in memory, a fake clock."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import pytest

from boxless.chat import envelope as env
from boxless.client.verification import FLOW_TIMEOUT_S, Outcome, SasBook, SasStateError, View
from boxless.crypto.verification import SasParty

R = env.SasCancelReason


def party(first: int) -> SasParty:
    """A party whose identity key starts with ``first`` (crossed requests compare keys)."""
    return SasParty(bytes([first]) + secrets.token_bytes(31), *(secrets.token_bytes(32),) * 2)


@dataclass
class Side:
    party: SasParty
    book: SasBook
    events: list[dict[str, object]] = field(default_factory=list)
    verified: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def key(self) -> bytes:
        return self.party.identity_key


class Net:
    """Alice and Bob's books; messages queue until :meth:`flush` delivers them in order."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        alice, bob = party(1), party(2)
        self.alice = Side(alice, SasBook(alice))
        self.bob = Side(bob, SasBook(bob))
        self.queue: list[tuple[Side, Side, env.Body]] = []

    def other(self, side: Side) -> Side:
        return self.bob if side is self.alice else self.alice

    def take(self, side: Side, out: Outcome) -> Outcome:
        side.events += out.events
        side.verified += out.verified
        for to, body in out.sends:
            assert to == self.other(side).key
            self.queue.append((side, self.other(side), body))
        return out

    def act(self, side: Side, action: str) -> Outcome:
        book, them = side.book, self.other(side)
        if action == "start":
            return self.take(side, book.start(them.key, them.party, self.now))
        return self.take(side, getattr(book, action)(them.key, self.now))

    def deliver(
        self, sender: Side, to: Side, body: env.Body, message_id: bytes | None = None
    ) -> Outcome:
        msg = env.new_message(
            body, lamport=1, sent_at_ms=int(self.now * 1000), message_id=message_id
        )
        return self.take(to, to.book.receive(sender.key, sender.party, msg, self.now))

    def flush(self) -> list[env.Body]:
        sent = []
        while self.queue:
            sender, to, body = self.queue.pop(0)
            sent.append(body)
            self.deliver(sender, to, body)
        return sent

    def view(self, side: Side) -> View:
        session = side.book.current(self.other(side).key)
        assert session is not None
        return session.view

    def session(self, side: Side):  # type: ignore[no-untyped-def]
        return side.book.current(self.other(side).key)


def to_compare(net: Net) -> None:
    net.act(net.alice, "start")
    net.flush()
    assert net.view(net.bob) is View.REQUESTED and net.view(net.alice) is View.WAITING
    net.act(net.bob, "accept")
    net.flush()
    assert net.view(net.alice) is View.COMPARE and net.view(net.bob) is View.COMPARE


def test_both_see_the_same_emoji_and_confirming_verifies_both() -> None:
    net = Net()
    to_compare(net)
    a, b = net.session(net.alice), net.session(net.bob)
    assert a.emoji == b.emoji and len(a.emoji) == 7 and a.decimals == b.decimals
    last = net.alice.events[-1]
    assert last["state"] == "compare" and len(last["emoji"]) == 7  # type: ignore[arg-type]
    net.act(net.alice, "confirm")
    assert net.view(net.alice) is View.CONFIRMED
    net.flush()
    assert net.session(net.bob).to_json(net.now)["they_confirmed"] is True
    assert net.view(net.bob) is View.COMPARE and not net.bob.verified
    net.act(net.bob, "confirm")
    net.flush()
    assert net.view(net.alice) is View.VERIFIED and net.view(net.bob) is View.VERIFIED
    assert net.alice.verified == [(net.bob.key, net.bob.party.device_curve25519)]
    assert net.bob.verified == [(net.alice.key, net.alice.party.device_curve25519)]


def test_they_dont_match_cancels_both_sides_with_mismatch() -> None:
    net = Net()
    to_compare(net)
    net.act(net.bob, "mismatch")
    net.flush()
    for side, by in ((net.alice, "them"), (net.bob, "us")):
        s = net.session(side)
        assert (s.view, s.reason, s.by, s.emoji) == (View.CANCELLED, "mismatch", by, [])
    assert not net.alice.verified and not net.bob.verified
    with pytest.raises(SasStateError, match="no emoji to confirm"):
        net.act(net.alice, "confirm")


def test_a_flow_times_out_on_both_sides() -> None:
    net = Net()
    net.act(net.alice, "start")
    net.flush()
    assert net.alice.book.get_timer() == net.now + FLOW_TIMEOUT_S
    net.now += FLOW_TIMEOUT_S - 1
    assert net.take(net.alice, net.alice.book.handle_timer(net.now)).sends == []
    net.now += 1
    net.take(net.bob, net.bob.book.handle_timer(net.now))
    net.take(net.alice, net.alice.book.handle_timer(net.now))
    assert [type(b) for b in net.flush()] == [env.SasCancel, env.SasCancel]
    for side in (net.alice, net.bob):
        assert (net.session(side).view, net.session(side).reason) == (View.CANCELLED, "timeout")
        assert side.book.get_timer() is None


def test_a_second_flow_replaces_the_first() -> None:
    net = Net()
    net.act(net.alice, "start")
    net.flush()
    first = net.session(net.alice).flow.flow_id
    net.act(net.alice, "start")
    assert net.alice.events[-2]["reason"] == "replaced" and net.alice.events[-2]["flow"] == first
    net.flush()
    second = net.session(net.alice).flow.flow_id
    assert net.session(net.bob).flow.flow_id == second != first
    net.act(net.bob, "accept")
    net.flush()
    assert net.view(net.alice) is View.COMPARE is net.view(net.bob)


def test_starting_while_their_request_waits_accepts_it() -> None:
    net = Net()
    net.act(net.alice, "start")
    net.flush()
    flow = net.session(net.alice).flow.flow_id
    net.act(net.bob, "start")  # Bob pressed "Compare emoji" instead of answering the prompt
    net.flush()
    assert net.view(net.alice) is View.COMPARE is net.view(net.bob)
    assert net.session(net.bob).flow.flow_id == flow


@pytest.mark.parametrize("first", ["alice", "bob"])
def test_crossed_requests_settle_on_one_flow(first: str) -> None:
    net = Net()  # Alice's identity key is the smaller: her request wins
    net.act(net.alice, "start")
    net.act(net.bob, "start")
    if first == "bob":
        net.queue.reverse()
    net.flush()
    assert net.view(net.alice) is View.COMPARE is net.view(net.bob)
    flow = net.session(net.alice).flow
    assert net.session(net.bob).flow.flow_id == flow.flow_id and flow.role.value == "initiator"
    assert net.session(net.alice).emoji == net.session(net.bob).emoji


def test_out_of_order_and_unknown_flows_are_cancelled_with_a_reason() -> None:
    net = Net()
    net.act(net.alice, "start")
    net.flush()
    flow = net.session(net.alice).flow.flow_id
    # a MAC while Alice waits for Bob's key: out of order
    net.deliver(net.bob, net.alice, env.SasMac(flow, b"m" * 32))
    assert (net.view(net.alice), net.session(net.alice).reason) == (View.CANCELLED, "unexpected")
    assert net.queue[-1][2] == env.SasCancel(flow, R.UNEXPECTED)
    net.flush()
    assert net.session(net.bob).reason == "unexpected" and net.session(net.bob).by == "them"
    # a key for a flow nobody runs: answered by a cancel; a cancel is never answered
    net.deliver(net.bob, net.alice, env.SasKey("nosuchflow", b"k" * 32))
    assert net.queue.pop()[2] == env.SasCancel("nosuchflow", R.UNEXPECTED)
    net.deliver(net.bob, net.alice, env.SasCancel("nosuchflow", R.USER))
    assert net.queue == []
    # an accept without a request is the local user's mistake
    with pytest.raises(SasStateError, match="no request to accept"):
        net.act(net.alice, "accept")


def initiator_key(net: Net) -> env.SasKey:
    """Run a flow up to the initiator's key and return that message, undelivered."""
    net.act(net.alice, "start")
    net.flush()
    net.act(net.bob, "accept")
    [(_, _, bob_key)] = net.queue
    net.queue.clear()
    net.deliver(net.bob, net.alice, bob_key)
    [(_, _, alice_key)] = net.queue
    net.queue.clear()
    assert isinstance(alice_key, env.SasKey)
    return alice_key


def test_a_key_from_another_flow_fails_the_commitment() -> None:
    net = Net()
    initiator_key(net)  # Alice's real key never reaches Bob; a man in the middle's does
    stolen = initiator_key(Net())  # a real key, from another flow
    flow = net.session(net.bob).flow.flow_id
    net.deliver(net.alice, net.bob, env.SasKey(flow, stolen.key))
    assert (net.view(net.bob), net.session(net.bob).reason) == (View.CANCELLED, "mismatch")
    assert net.session(net.bob).emoji == []  # no emoji were ever shown to Bob
    net.flush()
    assert (net.view(net.alice), net.session(net.alice).reason) == (View.CANCELLED, "mismatch")


def test_a_forged_mac_is_a_mismatch() -> None:
    net = Net()
    to_compare(net)
    flow = net.session(net.bob).flow.flow_id
    net.deliver(net.alice, net.bob, env.SasMac(flow, b"\0" * 32))
    assert net.session(net.bob).reason == "mismatch" and not net.bob.verified


def test_resent_copies_stale_messages_and_stragglers_are_ignored() -> None:
    net = Net()
    net.act(net.alice, "start")
    [(_, _, request)] = net.queue
    net.flush()
    mid = secrets.token_bytes(16)
    net.act(net.bob, "accept")
    [(_, _, key)] = net.queue
    net.queue.clear()
    net.deliver(net.bob, net.alice, key, message_id=mid)
    assert net.view(net.alice) is View.COMPARE
    net.deliver(net.bob, net.alice, key, message_id=mid)  # the outbox re-sent it
    assert net.view(net.alice) is View.COMPARE
    net.flush()
    net.act(net.alice, "cancel")
    net.flush()
    events = len(net.alice.events)
    net.deliver(net.bob, net.alice, key)  # a straggler of a cancelled flow
    assert net.queue == [] and len(net.alice.events) == events
    net.now += FLOW_TIMEOUT_S + 1
    old = env.new_message(request, lamport=1, sent_at_ms=int((net.now - FLOW_TIMEOUT_S - 5) * 1000))
    assert net.bob.book.receive(net.alice.key, net.alice.party, old, net.now) == Outcome()


def test_a_mac_that_overtakes_the_key_is_held() -> None:
    net = Net()
    alice_key = initiator_key(net)  # late: a failed send, re-sent after her MAC
    assert net.view(net.alice) is View.COMPARE and net.view(net.bob) is View.WAITING
    net.act(net.alice, "confirm")
    [(_, _, mac)] = net.queue
    net.queue.clear()
    net.deliver(net.alice, net.bob, mac)
    assert net.view(net.bob) is View.WAITING
    net.deliver(net.alice, net.bob, alice_key)
    assert net.view(net.bob) is View.COMPARE
    net.act(net.bob, "confirm")
    net.flush()
    assert net.view(net.alice) is View.VERIFIED is net.view(net.bob)


def test_user_actions_need_the_right_state() -> None:
    net = Net()
    with pytest.raises(SasStateError, match="is none"):
        net.act(net.alice, "cancel")
    net.act(net.alice, "start")
    for action in ("accept", "confirm", "mismatch"):
        with pytest.raises(SasStateError):
            net.act(net.alice, action)
    net.flush()
    net.act(net.bob, "cancel")  # declining a request
    net.flush()
    assert net.session(net.alice).reason == "user" and net.session(net.alice).by == "them"
