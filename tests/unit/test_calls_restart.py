"""1:1 calls' sans-IO core: the caller's ICE restart of a running call, and the
attacker (another contact, a new certificate, a restart loop)."""

from __future__ import annotations

import pytest

from boxless.calls import Changed, Phase, Send
from boxless.calls.core import MAX_RESTARTS
from boxless.chat.envelope import CallSignal, CallSignalKind
from boxless.errors import UsageError
from tests.unit.test_calls_core import deliver, pair, sdp

A, B, M = b"a" * 32, b"b" * 32, b"m" * 32
CID = b"c" * 16


def _connected():  # type: ignore[no-untyped-def]
    caller, callee = pair()
    deliver(caller.start(B, CID, sdp(1), False, 0.0), callee, A, 0.0)
    deliver(callee.accept(CID, sdp(2), 1.0), caller, B, 1.0)
    caller.connected(CID, 2.0)
    callee.connected(CID, 2.0)
    return caller, callee


def test_the_caller_restarts_ice_and_the_callee_answers() -> None:
    caller, callee = _connected()
    code = caller.current.code  # type: ignore[union-attr]
    out = caller.restart(CID, sdp(1, "new1"), 10.0)
    got = deliver(out, callee, A, 10.0)
    assert isinstance(got[-1], Changed) and got[-1].call.restarts == 1
    assert got[-1].call.offer_sdp == sdp(1, "new1") and not got[-1].call.answer_sdp
    assert got[-1].call.phase is Phase.CONNECTED  # the call goes on meanwhile
    back = deliver(callee.accept(CID, sdp(2, "new2"), 11.0), caller, B, 11.0)
    assert isinstance(back[-1], Changed) and back[-1].call.answer_sdp == sdp(2, "new2")
    assert caller.current.code == callee.current.code == code  # type: ignore[union-attr]
    # a repeat of the answer, or of the offer, changes nothing
    again = CallSignal(CID, CallSignalKind.ANSWER, sdp=sdp(2, "new2"))
    assert caller.receive(B, again, 12.0, 12.0, allowed=True) == []
    offer = CallSignal(CID, CallSignalKind.OFFER, sdp=sdp(1, "new1"))
    assert callee.receive(A, offer, 12.0, 12.0, allowed=True) == []
    # only the caller restarts, only an answered call, only the same certificate
    with pytest.raises(UsageError, match="only the caller"):
        callee.restart(CID, sdp(2, "xxxx"), 13.0)
    with pytest.raises(UsageError, match="certificate"):
        caller.restart(CID, sdp(9, "xxxx"), 13.0)


def test_restart_attackers() -> None:
    caller, callee = _connected()
    # another contact's offer with our call id, a new certificate, bad SDP
    forged = CallSignal(CID, CallSignalKind.OFFER, sdp=sdp(1, "evil"))
    assert callee.receive(M, forged, 5.0, 5.0, allowed=True) == []
    other = CallSignal(CID, CallSignalKind.OFFER, sdp=sdp(7, "evil"))
    assert callee.receive(A, other, 5.0, 5.0, allowed=True) == []
    assert callee.dropped["restart with another certificate"] == 1
    assert callee.current.restarts == 0  # type: ignore[union-attr]
    # the callee's offer to the caller is no restart
    assert caller.receive(B, forged, 5.0, 5.0, allowed=True) == []
    # a loop of restarts from the caller: rate-limited, and at most MAX_RESTARTS a call
    taken = 0
    for i in range(1000):
        offer = CallSignal(CID, CallSignalKind.OFFER, sdp=sdp(1, f"u{i:03d}"))
        t = 10.0 + i * 3.0  # slow enough for the offer rate: the cap must hold
        taken += bool(callee.receive(A, offer, t, t, allowed=True))
    assert taken == MAX_RESTARTS and callee.dropped["too many restarts"] > 0
    # the call is still the same call with the same peer
    assert callee.current is not None and callee.current.peer == A


def test_a_restart_answer_goes_out_as_an_answer() -> None:
    caller, callee = _connected()
    deliver(caller.restart(CID, sdp(1, "rst1"), 10.0), callee, A, 10.0)
    out = callee.accept(CID, sdp(2, "rst2"), 11.0)
    [send] = [o for o in out if isinstance(o, Send)]
    assert send.peer == A and send.signal.kind is CallSignalKind.ANSWER
