"""kill -9 a persisted Olm ping-pong at random points (see tests/olm_kill9.py).

The fault: a process killed between any two instructions of the message path
-- inside an Olm step, between the session write and the caller's
"processed" mark, inside a SQLCipher commit, between queueing a reply and
sending it. Each restart must find every message processed exactly once and
both ratchets able to continue; the long run (100+ kills) is
``bench/kill9_olm.py``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.olm_kill9 import campaign

pytestmark = pytest.mark.slow

KILLS = 20
TARGETED = 4  # of them also killed right after a receive commit (step not journaled)


def test_kill9_at_random_points_loses_nothing_and_keeps_ratchets_in_sync(
    tmp_path: Path,
) -> None:
    """Would fail if a decrypt's new ratchet state and the caller's "processed"
    mark could commit apart (checked by a mutant that commits between them: the
    re-delivered message then fails as a duplicate and is lost), or if an
    encrypt's step were journaled after its message could leave (a mutant that
    appends it after the send round's commit: a restarted sender reuses the
    message key and the peer refuses it as a duplicate)."""
    seed = int(os.environ.get("BOXLESS_KILL9_SEED", random.randrange(2**32)))
    result = campaign(tmp_path, kills=KILLS, seed=seed, targeted=TARGETED)
    assert result.kills == KILLS, f"seed {seed}"
    assert result.targeted_kills == TARGETED, f"seed {seed}"
    assert result.messages > KILLS // 2, f"seed {seed}: the conversation barely moved"
