"""``boxless node --blobs`` as a process with ``boxless blob add`` and ``blob get``
against it: the CID printed, the file back byte for byte, the pin on the node's
disk, and a clear error for a CID that is not there or not a CID."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from boxless.blobs import DagBuilder
from boxless.cli.main import app
from tests.nodeproc import NodeProcess


class Result:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


def run_cli(*argv: str) -> Result:
    """The CLI in this process (the node is the separate process)."""
    r = CliRunner().invoke(app, list(argv), prog_name="boxless")
    return Result(r.exit_code, r.stdout, r.output + (r.stderr if r.stderr_bytes else ""))


def test_blob_add_and_get_through_a_node(tmp_path: Path) -> None:
    node = NodeProcess("blobs", tmp_path / "node", ["--blobs"]).start()
    try:
        data = os.urandom(700_000)
        src = tmp_path / "photo.bin"
        src.write_bytes(data)
        added = run_cli(
            "blob", "add", str(src), "--peer", node.addr, "--data-dir", str(tmp_path / "a")
        )
        assert added.returncode == 0, added.stderr
        cid = added.stdout.strip().splitlines()[-1]
        b = DagBuilder()
        b.feed(data)
        b.finish()
        assert cid == str(b.root)
        with sqlite3.connect(tmp_path / "node" / "blobs" / "blobs.db") as db:
            assert db.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 1
        out = tmp_path / "back.bin"
        got = run_cli(
            "blob",
            "get",
            cid,
            "--peer",
            node.addr,
            "-o",
            str(out),
            "--data-dir",
            str(tmp_path / "b"),
        )
        assert got.returncode == 0, got.stderr
        assert out.read_bytes() == data
        bad = run_cli("blob", "get", "nonsense", "--peer", node.addr, "-o", str(out))
        assert bad.returncode != 0 and "not a CID" in bad.stderr
    finally:
        node.stop()
