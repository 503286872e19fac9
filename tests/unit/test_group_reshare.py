"""GroupSessions.reshare: a member device that lost our session gets it again, from
now on, and nobody else gets it at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxless.crypto.megolm import MessageBeforeKeyShare, session_id_bytes
from tests.unit.test_megolm import GROUP, T0, Member, deliver


def test_reshare_only_to_a_device_it_was_shared_with_and_from_the_current_index(
    tmp_path: Path,
) -> None:
    alice, bob, eve = (Member(tmp_path, n) for n in ("alice", "bob", "eve"))
    state, _ = alice.groups.outbound(GROUP, [bob.key], T0)  # Bob's share is lost
    session = session_id_bytes(state.session_id)
    before = alice.groups.encrypt(GROUP, b"before the re-share", T0)
    assert alice.groups.reshare(GROUP, session, eve.key) is None  # never shared with Eve
    assert alice.groups.reshare(GROUP, bytes(32), bob.key) is None  # not our session
    share = alice.groups.reshare(GROUP, session, bob.key)
    assert share is not None and share.device == bob.key
    deliver(alice, [bob], [share])
    after = alice.groups.encrypt(GROUP, b"after the re-share", T0)
    assert bob.read(after) == b"after the re-share"
    with pytest.raises(MessageBeforeKeyShare):  # what it missed stays unreadable
        bob.read(before)
