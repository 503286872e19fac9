"""kill -9 a persisted Olm ping-pong at random points, many times, and check it.

Two real accounts (SQLCipher user databases, ``SessionManager``, sealed
envelopes) play ping-pong in a worker process that is killed with SIGKILL
after a random number of committed steps plus a random delay, then
restarted; after every kill each side must have processed an unbroken run of
its messages, none twice, and at the end every message arrived exactly once
and a fresh exchange decrypts both ways. See ``tests/olm_kill9.py``.

    python bench/kill9_olm.py --kills 100 [--seed N] [--max-steps 12] [--targeted 10]

``--targeted N``: the first N kills are each followed by one right after a
receive batch commits (its ratchet steps committed, not yet journaled).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.olm_kill9 import campaign  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--max-steps", type=int, default=12, help="most committed steps between kills"
    )
    parser.add_argument(
        "--targeted", type=int, default=10, help="extra kills right after a receive commit"
    )
    args = parser.parse_args()
    seed = random.randrange(2**32) if args.seed is None else args.seed
    with tempfile.TemporaryDirectory() as tmp:
        result = campaign(
            Path(tmp),
            kills=args.kills,
            seed=seed,
            max_steps=args.max_steps,
            targeted=args.targeted,
        )
    print(f"seed {seed}")
    print(f"kills (SIGKILL, each followed by a restart): {result.kills}")
    print(f"  and right after a receive commit: {result.targeted_kills}")
    print(f"committed steps seen before the kills: {result.steps_before_kill}")
    print(f"messages in the conversation: {result.messages}, each received exactly once")
    print(
        f"envelopes on the network (re-sends after a kill included): {result.network_copies},"
        f" of them v2 (pairwise): {result.pairwise_copies}"
    )
    print(f"ratchets in sync after the last restart: yes ({result.seconds:.0f} s)")


if __name__ == "__main__":
    main()
