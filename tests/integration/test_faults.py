"""The fault suite, quick cases (the long runs: bench/fault_runner.py).

* kill -9 of a client (`boxless up` processes) at random moments while texts go
  both ways: 3 iterations; each text once in both histories, in order, and a
  final text each way decrypts (the ratchets survived);
* a service node process SIGKILLed and restarted mid-burst: nothing lost or twice;
* a partition between two halves of in-process service nodes, then a heal: the
  clients converge, nothing lost or twice;
* 10 % loss both ways on a client's link: nothing lost or twice.

The scenarios live in tests/faultproc.py (processes) and tests/faultnet.py (in
process); waits are on events (the API's event stream, client events) with deadlines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests import faultnet, faultproc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[faultproc.World]:
    """One set of processes for the two process cases (their start-up, ~20 s with
    two contact requests' proof of work, is paid once, here); in file order, the
    burst after the kills (each case takes what is in the conversation as its
    baseline)."""
    w = trio.run(faultproc.open_world, tmp_path_factory.mktemp("faults"))
    try:
        yield w
    finally:
        w.stop()


async def test_client_kill9_three_iterations_nothing_lost_or_twice(
    procs: faultproc.World,
) -> None:
    stats = await faultproc.client_kills(procs, 3, k=3, seed=7, settle=False, timeout=60)
    assert sum(stats.kills.values()) == 3
    assert stats.texts == (3 + 1) * 4  # iteration 0 (no kill) and three: 3 from Alice, 1 from Bob


async def test_service_node_kill9_mid_burst_nothing_lost_or_twice(
    procs: faultproc.World,
) -> None:
    stats = await faultproc.service_kill_burst(procs, 45, timeout=60)
    assert stats.killed_after == 15 and stats.restarted_after == 30


async def test_partition_then_heal_converges(tmp_path: Path) -> None:
    stats = await faultnet.partition_heal(tmp_path, 10, policy=faultnet.FAST_RETRIES, timeout=25)
    assert stats.during == 10


async def test_ten_percent_loss_on_a_clients_link(tmp_path: Path) -> None:
    stats = await faultnet.lossy_link(tmp_path, 20, policy=faultnet.FAST_RETRIES, timeout=25)
    assert stats.dropped_in >= 3  # the link really lost some, each way
    assert stats.dropped_requests + stats.dropped_answers >= 3
