"""lead22: two more files a scanned repository can make git block on, found after hist22's ``diff.orderFile``/
``mailmap.file`` fix by trying every config key that names a file (``scan --staged``, ``--history``,
``--since-commit``).

- ``core.excludesFile`` naming a FIFO: ``git diff --cached`` (what ``--staged`` runs) opens it, so ``scan
  --staged`` hung forever on 75722a6. The hardened runner now sets it to ``/dev/null`` (like
  ``core.attributesFile``); ``.gitignore`` files in the work tree are not read by the plumbing it runs.
- ``.git/info/exclude`` as a FIFO: the same command opens it; no option turns it off, so the guard now checks
  ``info/`` (one level) like ``refs/`` and refuses the repository (exit 2, the path named).

Each CLI run has a hard timeout; FIFOs are opened read-write afterwards so a git left blocked ends.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, git_run, hf_token, token_repo

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _staged(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["timeout", "-s", "KILL", "40", *CLI, "scan", "--staged", "--no-progress", "--jobs", "1",
                           "--format", "json", str(repo)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=repo, env=dict(os.environ))


def _release(fifo: Path) -> None:
    try:
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    except OSError:
        pass


def _staged_token(tmp_path: Path) -> tuple[Path, str]:
    repo = token_repo(tmp_path / "r")
    secret = hf_token()
    (repo / "s.txt").write_text(f"token = {secret}\n")
    git_run(repo, "add", "s.txt")
    return repo, secret


def test_excludes_file_fifo_does_not_block_staged(tmp_path: Path) -> None:
    repo, secret = _staged_token(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    git_run(repo, "config", "core.excludesFile", str(fifo))
    try:
        p = _staged(repo)
    finally:
        _release(fifo)
    assert p.returncode == 1, (p.returncode, p.stderr)  # on 75722a6: killed by the timeout (-9)
    assert '"path": "s.txt"' in p.stdout and secret not in p.stdout + p.stderr


def test_info_exclude_fifo_is_refused(tmp_path: Path) -> None:
    repo, _secret = _staged_token(tmp_path)
    fifo = repo / ".git" / "info" / "exclude"
    fifo.parent.mkdir(exist_ok=True)
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    try:
        p = _staged(repo)
    finally:
        _release(fifo)
    assert p.returncode == 2, (p.returncode, p.stderr)  # on 75722a6: killed by the timeout (-9)
    assert "info/exclude is a FIFO or device" in p.stderr


def test_info_exclude_regular_file_is_fine(tmp_path: Path) -> None:
    """Guard: a real ``info/exclude`` (``git init`` writes one) changes nothing."""
    repo, _secret = _staged_token(tmp_path)
    assert (repo / ".git" / "info" / "exclude").is_file()
    p = _staged(repo)
    assert p.returncode == 1 and '"path": "s.txt"' in p.stdout, p.stderr
