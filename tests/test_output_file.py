"""``--output``: an unwritable destination exits 2 with one line naming the path and the OS error, before
anything is scanned; a failed write leaves no temporary file; a written report prints a one-line summary on
stderr (issue 11, issue 15)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
import typer

from conftest import CLI, hf_token, run_cli


@pytest.mark.parametrize("dest,reason", [
    ("/dev/full", "No space left on device"),
    ("missing/dir/report.json", "No such file or directory"),
    (".", "Is a directory"),
])
def test_unwritable_output_exit_2_before_scanning(tmp_path: Path, dest: str, reason: str) -> None:
    # the scan input is standard input that never ends: only a check made before scanning can answer
    proc = subprocess.Popen([*CLI, "scan", "--no-progress", "-", "-o", dest, "-f", "json"], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and dest in lines[0] and reason in lines[0], err
    assert out == "" and not list(tmp_path.glob("**/*.tmp*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only directory")
def test_read_only_directory_exit_2(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "a.txt").write_text("x\n")
    ro.chmod(0o555)
    try:
        p = run_cli("scan", "--no-progress", "a.txt", "-o", ro / "r.json", cwd=tmp_path)
    finally:
        ro.chmod(0o755)
    assert p.returncode == 2 and str(ro / "r.json") in p.stderr and "Permission denied" in p.stderr


def test_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from veritensor_fast import cli
    from veritensor_fast.engine import ScanResult

    def full(src: object, dst: object) -> None:  # the temporary file is written; the disk fills at the rename
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "report.json"
    with pytest.raises(typer.Exit) as ei:
        cli.emit(ScanResult([], [], {"files": 0}), "json", out, False)
    assert ei.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_output_prints_one_line_summary(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "a.py").write_text(f"T = '{tok}'\n")
    p = run_cli("scan", "--no-progress", "-j1", "a.py", "-f", "json", "-o", "r.json", cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == ["veritensor-fast: 1 finding; report written to r.json"]
    assert tok not in p.stderr and p.stdout == ""
    assert len(json.loads((tmp_path / "r.json").read_text())["findings"]) == 1
