"""Reports and baselines written to a path that is not a regular file (``/dev/null``, a FIFO) are written into it,
never renamed over it: run as root, ``write_report(result, os.devnull)`` had replaced the ``/dev/null`` device
with a regular file holding the report (and every later ``> /dev/null`` of every process wrote there). The tests
use a FIFO so that a regression cannot damage the machine's ``/dev/null``."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

import veritensor_fast
from veritensor_fast.baseline import Baseline
from veritensor_fast.findings import ScanResult


def _through_fifo(tmp_path: Path, write: object) -> tuple[str, bool]:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        write(fifo)  # type: ignore[operator]
    finally:
        reader.join(5)
        if reader.is_alive():  # the writer never opened the FIFO (it replaced it): unblock the reader
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # never blocks: ENXIO without a reader
            except OSError:
                pass
            reader.join(5)
    return (got[0].decode() if got else ""), stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_write_report_writes_into_a_fifo(tmp_path: Path) -> None:
    res = ScanResult([], [], {"files": 0})
    text, still = _through_fifo(tmp_path, lambda p: veritensor_fast.write_report(res, p, "json"))
    assert still, "the FIFO was replaced by a regular file"
    assert '"findings"' in text


def test_baseline_write_writes_into_a_fifo(tmp_path: Path) -> None:
    text, still = _through_fifo(tmp_path, lambda p: Baseline(()).write(p))
    assert still
    assert '"findings"' in text


def test_a_regular_file_is_still_replaced_atomically(tmp_path: Path) -> None:
    from veritensor_fast.safeio import write_text_replacing

    p = tmp_path / "r.json"
    p.write_text("old")
    ino = p.stat().st_ino
    write_text_replacing(p, "new")
    assert p.read_text() == "new" and p.stat().st_ino != ino  # a new file renamed over the old one
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.json"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    from veritensor_fast.safeio import write_text_replacing

    d = tmp_path / "d"
    d.mkdir()
    (d / "r.json").mkdir()  # a directory where the report should go: the rename fails
    with pytest.raises(OSError):
        write_text_replacing(d / "r.json", "x")
    assert sorted(x.name for x in d.iterdir()) == ["r.json"]
