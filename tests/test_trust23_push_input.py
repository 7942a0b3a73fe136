"""``scan --pre-push``: git's hook input is bounded in time as well as in size.

git writes the list of pushed refs to the hook's standard input and closes it at once. An input that never ends
(a hook run by hand on a terminal-less pipe, a wrapper that keeps the pipe open) used to block the scan forever;
now it is exit 2 with a clear error after ``PUSH_INPUT_SECONDS`` (``VERITENSOR_FAST_PUSH_INPUT_SECONDS``)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from conftest import CLI, init_repo

LINE = b"refs/heads/main " + b"1" * 40 + b" refs/heads/main " + b"0" * 40 + b"\n"


def _start(repo: Path, seconds: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, "scan", "--pre-push", "origin", "--no-progress"], cwd=repo,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "VERITENSOR_FAST_PUSH_INPUT_SECONDS": seconds})


def test_input_that_never_ends_is_exit_2_not_a_hang(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    p = _start(repo, "1")
    assert p.stdin is not None
    try:
        p.stdin.write(LINE)  # a line, then nothing: the pipe stays open
        p.stdin.flush()
        p.wait(timeout=60)  # the baseline: blocked for ever (TimeoutExpired)
        err = p.stderr.read() if p.stderr else b""
    finally:
        p.kill()
        p.stdin.close()
    assert p.returncode == 2, err
    assert b"did not end within 1 s" in err and b"Traceback" not in err


def test_input_that_ends_in_time_is_read_whole(tmp_path: Path) -> None:
    """Written slowly but closed within the bound: read to its end (a deletion line: nothing to scan)."""
    repo = init_repo(tmp_path / "r")
    p = _start(repo, "30")
    assert p.stdin is not None
    deletion = b"(delete) " + b"0" * 40 + b" refs/heads/gone " + b"2" * 40 + b"\n"
    for part in (deletion[:20], deletion[20:]):
        p.stdin.write(part)
        p.stdin.flush()
        time.sleep(0.3)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
