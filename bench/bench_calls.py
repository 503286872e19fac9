"""Call set-up time on loopback: click -> ringing -> connected, p50/p95 over N calls.

Real processes: two service nodes, two `boxless up` (light clients), Chromium
with fake camera/microphone. Each round Alice clicks "Voice call", Bob accepts
the moment his screen rings, and we time click -> Bob's screen rings, Bob's
accept -> both screens connected, and click -> both connected. Run against
another source tree (e.g. a git worktree of an older commit) with ``--tree``
to compare side by side::

    git worktree add /tmp/base <commit>
    .venv/bin/python bench/bench_calls.py -n 15 --tree /tmp/base --tree .

``--group P`` measures a group video call of P people instead (a mesh): A clicks
"Group video call", the others join the moment they ring; click -> all rung,
first join -> every page has P-1 connected tiles, click -> all connected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


@contextlib.contextmanager
def _people_and_browser(names: list[str]) -> Iterator[tuple[Any, list[Any], Any]]:
    """A world of ``names`` (the first befriends the others) and a Chromium with fake
    camera and microphone; both stopped on the way out."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_web import CHROMIUM_ARGS, chromium_path
    from tests.e2e.world import World

    fake = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with tempfile.TemporaryDirectory() as root:
        world = World(Path(root))
        try:
            users = world.persons(*names)
            for u in users[1:]:
                world.befriend(users[0], u)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_ARGS + fake
                )
                try:
                    yield world, users, browser
                finally:
                    browser.close()
        finally:
            world.close()


def _rounds(
    n: int, gap: float, one: Callable[[], tuple[float, float, float]]
) -> dict[str, list[float]]:
    """``n`` timed rounds after one that warms up (Olm sessions, JIT), at least ``gap``
    s apart; ``one()`` runs a round and returns when it clicked, rang and connected."""
    out: dict[str, list[float]] = {"ring": [], "connect": [], "total": []}
    last = 0.0
    for i in range(n + 1):
        time.sleep(max(0.0, last + gap - time.monotonic()))
        last = time.monotonic()
        t0, t1, t2 = one()
        if i:
            out["ring"].append(t1 - t0)
            out["connect"].append(t2 - t1)
            out["total"].append(t2 - t0)
    return out


def inner(n: int) -> dict[str, list[float]]:
    from playwright.sync_api import expect

    from tests.e2e.test_web import DESKTOP, open_ui

    with _people_and_browser(["Alice", "Bob"]) as (world, (alice, bob), browser):
        pa, pb = open_ui(browser, alice, DESKTOP), open_ui(browser, bob, DESKTOP)
        pa.evaluate(f"location.hash = '#/chat/{world.key(bob)}'")
        pb.evaluate(f"location.hash = '#/chat/{world.key(alice)}'")
        pa.locator("#call-audio").wait_for()

        def one() -> tuple[float, float, float]:
            t0 = time.monotonic()
            pa.click("#call-audio")
            pb.locator("#call-accept").wait_for(timeout=30_000)
            t1 = time.monotonic()
            pb.click("#call-accept")
            for p in (pa, pb):
                expect(p.locator("#call-screen[data-phase=connected]")).to_be_attached(
                    timeout=30_000
                )
            t2 = time.monotonic()
            pa.click("#call-hangup")
            expect(pb.locator("#call-screen")).to_have_count(0, timeout=30_000)
            return t0, t1, t2

        return _rounds(n, 2.2, one)


def inner_group(n: int, people: int) -> dict[str, list[float]]:
    from playwright.sync_api import expect

    from tests.e2e.test_web import DESKTOP, open_ui

    names = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]
    with _people_and_browser(names[:people]) as (world, users, browser):
        gid = world.group(users[0], users[1:], "Bench")
        pages = [open_ui(browser, u, DESKTOP) for u in users]
        for p in pages:
            p.evaluate(f"location.hash = '#/group/{gid}'")
            p.locator("#group-call-video").wait_for()

        def one() -> tuple[float, float, float]:
            t0 = time.monotonic()
            pages[0].click("#group-call-video")
            for p in pages[1:]:
                p.locator("#gc-join").wait_for(timeout=60_000)
            t1 = time.monotonic()
            for p in pages[1:]:
                p.click("#gc-join")
            for p in pages:
                expect(p.locator("#gc-grid .gc-tile.connected")).to_have_count(
                    people - 1, timeout=120_000
                )
            t2 = time.monotonic()
            for p in pages:
                p.click("#gc-leave")
            for p in pages:
                expect(p.locator("#group-call-screen")).to_have_count(0, timeout=30_000)
            return t0, t1, t2

        return _rounds(n, 4.0, one)  # rings are rate-limited per peer (3 per 10 s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="timed calls per tree")
    ap.add_argument(
        "--tree", action="append", help="source tree to measure (repeatable; default .)"
    )
    ap.add_argument("--group", type=int, default=0, help="a group call of this many (3-8)")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        res = inner_group(args.n, args.group) if args.group else inner(args.n)
        print(json.dumps(res))
        return
    rows = []
    for tree in args.tree or ["."]:
        root = Path(tree).resolve()
        env = {**os.environ, "PYTHONPATH": f"{root / 'src'}:{root}"}
        got = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--inner", "-n", str(args.n),
             "--group", str(args.group)],
            env=env, cwd=root, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if got.returncode:
            sys.exit(f"{tree}: the run failed:\n{got.stderr[-3000:]}")
        res = json.loads(got.stdout.strip().splitlines()[-1])
        rows.append((tree, res))
    print(f"{'tree':<24} {'what':<26} {'p50 s':>7} {'p95 s':>7} {'mean':>7}  n")
    names = {
        "ring": "click -> callee rings",
        "connect": "accept -> both connected",
        "total": "click -> connected",
    }
    if args.group:
        names = {
            "ring": "click -> all rung",
            "connect": "joins -> all pairs connected",
            "total": "click -> all connected",
        }
    for tree, res in rows:
        for k, label in names.items():
            v = res[k]
            print(
                f"{tree:<24} {label:<26} {pct(v, 0.5):7.2f} {pct(v, 0.95):7.2f} {statistics.mean(v):7.2f}  {len(v)}"
            )


if __name__ == "__main__":
    main()
