"""``-o FIFO`` whose reader opens it and never reads: on 4863df0 the report blocked forever once the pipe
buffer filled. A write that makes no progress for ``safeio.FIFO_STALL`` seconds is now exit 2 with one line
(usab21). Real FIFOs (``os.mkfifo``), real readers; the pipe is shrunk to one page (``F_SETPIPE_SZ``) so a
report of a few KiB fills it, and the stall bound is shortened for the test."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from veritensor_fast import safeio
from veritensor_fast.cli import app

from conftest import hf_token

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _tree(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    (d / "keys.env").write_text("".join(f"HF_TOKEN_{i}={hf_token()}\n" for i in range(40)))
    return d


def _invoke(args: list[str], box: dict[str, Any]) -> None:
    box["result"] = CliRunner().invoke(app, args)


def _run_scan(tmp_path: Path, fifo: Path) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    args = ["scan", str(_tree(tmp_path)), "-o", str(fifo), "-f", "json", "-j", "1", "--no-config", "--no-progress"]
    t = threading.Thread(target=_invoke, args=(args, box), daemon=True)
    t.start()
    return t, box


def _reader(fifo: Path) -> int:
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open now: the writer finds a reader at once
    fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)
    return fd


def test_a_reader_that_never_reads_is_exit_2_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safeio, "FIFO_STALL", 0.5, raising=False)  # (4863df0 has none)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    fd = _reader(fifo)
    try:
        t, box = _run_scan(tmp_path, fifo)
        t.join(60)
        assert not t.is_alive(), "the report still blocks on a reader that does not read"  # 4863df0: forever
    finally:
        os.close(fd)
    res = box["result"]
    assert res.exit_code == 2, res.output
    err = [ln for ln in res.output.splitlines() if "cannot write report" in ln]
    assert len(err) == 1 and str(fifo) in err[0] and "took nothing" in err[0], res.output
    assert stat_is_fifo(fifo)  # never replaced by a regular file


def stat_is_fifo(p: Path) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(p).st_mode)


def test_a_slow_reader_that_keeps_reading_gets_the_whole_report(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound is on a stall, not on the whole write: a reader taking a page every 0.1 s gets everything."""
    monkeypatch.setattr(safeio, "FIFO_STALL", 0.5, raising=False)  # (4863df0 has none)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    fd = _reader(fifo)
    chunks: list[bytes] = []
    try:
        t, box = _run_scan(tmp_path, fifo)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                b = os.read(fd, 1024)
            except BlockingIOError:
                b = None
            if b == b"" and not t.is_alive():
                break
            if b:
                chunks.append(b)
            time.sleep(0.1)
        t.join(60)
    finally:
        os.close(fd)
    assert box["result"].exit_code == 1, box["result"].output
    report = json.loads(b"".join(chunks))
    assert len(report["findings"]) == 40
    assert len(b"".join(chunks)) > 3 * 4096  # it filled the one-page pipe several times
