"""The fault suite, long runs: kill -9, a service node lost mid-burst, a partition, a lossy link.

    python bench/fault_runner.py [--kills 100] [--k 3] [--burst 500] [--partition 100]
                                 [--lossy 200] [--seed N] [--only kill,burst,partition,lossy]

* kill: Alice and Bob (and Carol) as `boxless up` processes on two `boxless node`
  processes; each iteration Alice posts ``--k`` texts and Bob one while one of
  them is SIGKILLed at a random moment of the send/receive window and restarted
  (tests/faultproc.py); every ``--group-every`` iterations Alice and Bob also post
  a group text and Alice removes Carol from their group or invites her back. At
  the end every text is in both histories exactly once, in order, delivered, and
  a final text each way (and a group text) decrypts.
* burst: ``--burst`` texts while Alice's preferred service node is SIGKILLed
  and restarted (tests/faultproc.py).
* partition: four in-process service nodes in two halves joined through link
  cutters; Alice on one half, Bob on the other; ``--partition`` texts each way
  sent while the halves are cut, then healed (tests/faultnet.py).
* lossy: Alice's light node loses every tenth message each way; ``--lossy``
  texts each way (tests/faultnet.py).

The in-process cases use the clients' production retry policy (re-send of an
undelivered message after 30 s); the quick tests shorten it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import faultnet, faultproc  # noqa: E402

CASES = ("kill", "burst", "partition", "lossy")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, seed: int) -> list[tuple[str, str, str]]:
    """Every case asked for, in a fresh directory (kept, with every log, on a failure)."""
    root = Path(tempfile.mkdtemp(prefix="fault-"))
    try:
        rows = await _cases(args, seed, root)
    except BaseException:
        print(f"failed: logs and databases kept in {root}", flush=True)
        raise
    shutil.rmtree(root, ignore_errors=True)
    return rows


async def _cases(args: argparse.Namespace, seed: int, root: Path) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    only = set(args.only.split(","))
    if "kill" in only or "burst" in only:
        async with faultproc.world(root / "procs", carol=args.group_every > 0) as w:
            if "kill" in only:
                t0 = time.monotonic()

                def progress(i: int, s: faultproc.KillStats) -> None:
                    if i % 10 == 0:
                        print(
                            f"  kill iteration {i}: {s.kills} ({time.monotonic() - t0:.0f} s)",
                            flush=True,
                        )

                k = await faultproc.client_kills(
                    w,
                    args.kills,
                    k=args.k,
                    seed=seed,
                    group_every=args.group_every,
                    progress=progress,
                )
                rows += [
                    (
                        "client kill -9",
                        "iterations (one SIGKILL + restart each)",
                        f"{k.iterations} (Alice {k.kills['alice']}, Bob {k.kills['bob']})",
                    ),
                    (
                        "",
                        "kills landing before the iteration's texts all arrived",
                        f"{k.kills_in_window}",
                    ),
                    (
                        "",
                        "send/receive window (measured, kill moment uniform over it)",
                        f"{k.window_s:.2f} s",
                    ),
                    (
                        "",
                        "texts (both ways) / POSTs cut by a kill (text stored anyway)",
                        f"{k.texts} / {k.send.cut} ({k.send.cut_but_stored})",
                    ),
                    (
                        "",
                        "group changes in the kill window (Carol removed / invited back)",
                        f"{k.group_changes}, with a group text from Alice and Bob each",
                    ),
                    (
                        "",
                        "restart to API ready, median / max",
                        f"{statistics.median(k.restart_s):.1f} / {max(k.restart_s):.1f} s",
                    ),
                    (
                        "",
                        "iteration (kill, restart, all arrived), median / p90",
                        f"{statistics.median(k.iteration_s):.1f} / "
                        f"{_pct(k.iteration_s, 0.9):.1f} s",
                    ),
                    (
                        "",
                        "after the last kill, until every text delivered",
                        f"{k.settle_s:.1f} s",
                    ),
                    (
                        "",
                        "lost / twice / out of order / undelivered / ratchet broken",
                        "0 / 0 / 0 / 0 / 0 (1:1 and group)",
                    ),
                ]
            if "burst" in only:
                b = await faultproc.service_kill_burst(w, args.burst)
                rows += [
                    (
                        "service node kill -9",
                        "texts in the burst",
                        f"{b.messages} (s1 killed after {b.killed_after}, "
                        f"back after {b.restarted_after})",
                    ),
                    ("", "posting the burst (incl. the restart)", f"{b.post_s:.1f} s"),
                    (
                        "",
                        "until Bob had all / all delivered",
                        f"{b.all_received_s:.1f} / {b.all_delivered_s:.1f} s",
                    ),
                    ("", "lost / twice / out of order", "0 / 0 / 0"),
                ]
    if "partition" in only:
        p = await faultnet.partition_heal(root / "partition", args.partition)
        rows += [
            (
                "partition + heal",
                "texts each way during the partition",
                f"{p.during} (+{p.before} before, {p.after} after)",
            ),
            ("", "partition length", f"{p.cut_s:.1f} s"),
            (
                "",
                "heal -> halves relinked / every text on both sides",
                f"{p.relinked_s:.1f} / {p.converged_s:.1f} s",
            ),
            (
                "",
                "arrival after the heal: fastest / median / slowest",
                f"{min(p.arrivals_s):.1f} / {statistics.median(p.arrivals_s):.1f} / "
                f"{max(p.arrivals_s):.1f} s",
            ),
            ("", "heal -> every text delivered", f"{p.delivered_s:.1f} s"),
            ("", "lost / twice / out of order", "0 / 0 / 0"),
        ]
    if "lossy" in only:
        d = await faultnet.lossy_link(root / "lossy", args.lossy)
        rows += [
            ("10 % loss on Alice's link", "texts each way", f"{d.texts}"),
            (
                "",
                "dropped: incoming by filter / sends (lost request, lost answer)",
                f"{d.dropped_in} / {d.dropped_requests} + {d.dropped_answers}",
            ),
            (
                "",
                "until every text on both sides / delivered",
                f"{d.converged_s:.1f} / {d.delivered_s:.1f} s",
            ),
            ("", "lost / twice / out of order", "0 / 0 / 0"),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--k", type=int, default=3, help="texts Alice posts per kill iteration")
    parser.add_argument(
        "--group-every",
        type=int,
        default=4,
        help="group texts and a change every N kills (0: no group)",
    )
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--partition", type=int, default=100)
    parser.add_argument("--lossy", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", default=",".join(CASES))
    args = parser.parse_args()
    seed = random.randrange(2**32) if args.seed is None else args.seed
    print(f"seed {seed}", flush=True)
    t0 = time.monotonic()
    rows = trio.run(run, args, seed)
    width = max(len(r[1]) for r in rows)
    print(f"\n{'case':<26}{'figure':<{width + 2}}value")
    for case, figure, value in rows:
        print(f"{case:<26}{figure:<{width + 2}}{value}")
    print(f"\nall cases passed in {time.monotonic() - t0:.0f} s (seed {seed})")


if __name__ == "__main__":
    main()
