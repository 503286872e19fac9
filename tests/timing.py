"""Where the test suite's time goes, per test file (opt-in, see tests/conftest.py).

Run the tests with ``BOXLESS_TEST_PROFILE=DIR``; then ``python -m tests.timing DIR``
prints each file's wall and CPU seconds (the CPU of the processes a test started
counts once they are reaped) and replays pytest-xdist's ``--dist loadfile`` hand-out
on two workers for the collection order, so a change of order or a split file can be
judged without another full run.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


def cpu_seconds() -> float:
    """CPU seconds of this process and of its reaped children (user + system), with
    the fork server's processes (tests/forkserver.py) as children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + _forkserver_cpu()


def _forkserver_cpu() -> float:
    """The fork server's CPU seconds and its reaped children's (from /proc)."""
    from tests import forkserver

    client = forkserver._client
    if client is None or client.server.poll() is not None:
        return 0.0
    try:
        stat = Path(f"/proc/{client.server.pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class FileTime:
    file: str
    tests: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    start: float = 0.0
    end: float = 0.0


class FileClock:
    """Sums each test's wall and CPU seconds per file, in this process."""

    def __init__(self, out_dir: str) -> None:
        self.out = Path(out_dir)
        self.files: dict[str, FileTime] = {}

    @contextmanager
    def measure(self, file: str) -> Iterator[None]:
        t0, c0 = time.time(), cpu_seconds()
        try:
            yield
        finally:
            t1, c1 = time.time(), cpu_seconds()
            ft = self.files.setdefault(file, FileTime(file, start=t0))
            ft.tests += 1
            ft.wall += t1 - t0
            ft.cpu += c1 - c0
            ft.end = t1

    def write(self, worker: str) -> None:
        if not self.files:  # xdist's controller runs no tests
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with (self.out / f"{worker}.jsonl").open("w") as f:
            for ft in self.files.values():
                f.write(json.dumps({"worker": worker, **asdict(ft)}) + "\n")
        from tests import forkserver

        (self.out / f"{worker}.processes.json").write_text(json.dumps(forkserver.started))


def load(out_dir: Path) -> list[dict[str, object]]:
    rows = []
    for path in sorted(out_dir.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    return rows


def replay(files: list[tuple[str, int, float]], workers: int = 2) -> list[float]:
    """Each worker's end time when the files (name, tests, seconds) are handed out in
    this order as xdist's loadfile does: a file to each worker, and the next file to
    a worker as soon as two or fewer of its tests are pending (a file's tests taken
    as equally long)."""
    todo = [[seconds / max(tests, 1)] * max(tests, 1) for _, tests, seconds in files]
    todo.reverse()
    pending: list[list[float]] = [[] for _ in range(workers)]
    clock = [0.0] * workers

    def refill(w: int) -> None:
        if todo and len(pending[w]) <= 2:
            pending[w] += todo.pop()

    for w in range(workers):
        if todo:
            pending[w] += todo.pop()
    for w in range(workers):
        refill(w)
    while any(pending):
        w = min((i for i in range(workers) if pending[i]), key=lambda i: clock[i] + pending[i][0])
        clock[w] += pending[w].pop(0)
        refill(w)
    return clock


def main(argv: list[str]) -> None:
    rows = load(Path(argv[0]))
    rows.sort(key=lambda r: float(r["start"]))  # type: ignore[arg-type]
    total_wall = sum(float(r["wall"]) for r in rows)  # type: ignore[arg-type]
    total_cpu = sum(float(r["cpu"]) for r in rows)  # type: ignore[arg-type]
    print(f"{len(rows)} files, {total_wall:.0f} test-s wall, {total_cpu:.0f} CPU-s")
    by_dir: dict[str, list[float]] = {}
    for r in rows:
        d = str(r["file"]).split("/")[1]
        acc = by_dir.setdefault(d, [0.0, 0.0])
        acc[0] += float(r["wall"])  # type: ignore[arg-type]
        acc[1] += float(r["cpu"])  # type: ignore[arg-type]
    for d, (w, c) in sorted(by_dir.items(), key=lambda kv: -kv[1][0]):
        print(f"  {d:12} {w:7.0f} wall {c:7.0f} CPU")
    print("slowest files (wall, CPU, tests, worker):")
    for r in sorted(rows, key=lambda r: -float(r["wall"]))[:40]:  # type: ignore[arg-type]
        print(
            f"  {float(r['wall']):6.1f} {float(r['cpu']):6.1f} {r['tests']:4} {r['worker']} {r['file']}"
        )  # type: ignore[arg-type]
    for w in sorted({str(r["worker"]) for r in rows}):
        mine = [r for r in rows if r["worker"] == w]
        first = min(float(r["start"]) for r in mine)  # type: ignore[arg-type]
        last = max(float(r["end"]) for r in mine)  # type: ignore[arg-type]
        print(
            f"worker {w}: {len(mine)} files, {last - first:.0f} s from its first test to its last"
        )
    for path in sorted(Path(argv[0]).glob("*.processes.json")):
        print(f"{path.name.split('.')[0]}: boxless processes {json.loads(path.read_text())}")
    order = [(str(r["file"]), int(r["tests"]), float(r["wall"])) for r in rows]  # type: ignore[arg-type]
    print("replayed hand-out, order as run:", [round(t) for t in replay(order)])


if __name__ == "__main__":
    main(sys.argv[1:])
