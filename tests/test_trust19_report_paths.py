"""trust19: a report or baseline path planted in a scanned checkout cannot redirect the write.

On main, ``write_text_replacing`` wrote in place into *any* existing non-regular file, following symbolic links:
``report.json -> /dev/sda`` in a checkout, scanned as root with ``-o report.json``, wrote the report over a disk
(the test uses the harmless ``/dev/zero``, also a character device). And its temporary file had a predictable
name (``<path>.tmp<pid>``) opened through symbolic links: a link planted there redirected the report into the
file it names. Now only a FIFO, a socket, a terminal or ``/dev/null`` is written in place, any other device is
refused (exit 2, nothing written), and the temporary file is created exclusively under a random name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import veritensor_fast
from veritensor_fast.baseline import Baseline
from veritensor_fast.findings import ScanResult

from conftest import run_cli


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("command", ["scan", "baseline"])
def test_a_link_to_a_device_is_refused(tmp_path: Path, command: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("nothing\n")
    out = tmp_path / "out.json"
    out.symlink_to("/dev/zero")
    args = (["scan", "--no-progress", "-o", str(out)] if command == "scan" else ["baseline", "create", "-o", str(out)])
    p = run_cli(*args, str(tmp_path / "src"))
    assert p.returncode == 2 and "cannot write" in p.stderr, (p.returncode, p.stderr)
    assert out.is_symlink() and os.readlink(out) == "/dev/zero"


def test_dev_null_through_a_link_is_still_written(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.symlink_to(os.devnull)
    veritensor_fast.write_report(ScanResult([], [], {"files": 0}), out, "json")
    assert out.is_symlink() and os.path.samefile(out, os.devnull)


@pytest.mark.parametrize("writer", ["report", "baseline"])
def test_a_link_planted_at_the_temporary_name_is_not_followed(tmp_path: Path, writer: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out.json"
    (tmp_path / f"out.json.tmp{os.getpid()}").symlink_to(victim)  # main's temporary name
    if writer == "report":
        veritensor_fast.write_report(ScanResult([], [], {"files": 0}), out, "json")
    else:
        Baseline(()).write(out)
    assert victim.read_text() == "precious\n"
    assert '"findings"' in out.read_text() and not out.is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out.json.tmp") and not p.is_symlink()] == []
