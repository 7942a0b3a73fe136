"""review18: SIGTERM (a CI job's timeout, ``kill``) ends a scan through its cleanup, as Ctrl-C does.

Before, SIGTERM killed the CLI at once: the git commands a history sweep had started (the listing, the early
provenance pass) ran on, and the pool workers were left to their parent-death signal. Each test runs the CLI in a subprocess under
``timeout`` and an address-space cap, and checks processes, never time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import init_repo

#: The CLI with its engine replaced by one that starts a git command the sweep owns (as the early provenance
#: pass is started), prints its pid and then waits to be stopped.
DRIVER = r"""
import subprocess, sys, time
from veritensor_fast import gitcmd, history
from veritensor_fast.sources.git_spool import Spool

real = gitcmd.popen

def fake_scan(src, options, **kw):
    gitcmd.popen = lambda r, a, **k: real(r, a, **{**k, "stdin": subprocess.PIPE})  # runs until stopped
    sp = Spool(src.origin, ["cat-file", "--batch"])
    gitcmd.popen = real
    src._log = sp
    print(sp.proc.pid, flush=True)
    time.sleep(60)

history.scan = fake_scan
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", "scan", "--history", "--no-datastore", "--jobs", "1", sys.argv[1]]
main()
"""


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_sigterm_kills_and_reaps_a_running_git_child(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    proc = subprocess.Popen(["timeout", "-s", "KILL", "30", "prlimit", "--as=2000000000", "--", sys.executable, "-c",
                             DRIVER, str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    git_pid = 0
    try:
        assert proc.stdout is not None
        git_pid = int(proc.stdout.readline())
        assert _state(git_pid) not in (None, "Z")  # running (its input stays open), as the provenance pass is
        driver = int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[0])
        os.kill(driver, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert _state(git_pid) in (None, "Z"), "the git command was left behind"
        assert proc.returncode == -signal.SIGTERM, err  # still dies of the signal (after its cleanup)
    finally:
        if git_pid and _state(git_pid) not in (None, "Z"):
            os.kill(git_pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_sigterm_of_a_pool_scan_exits_with_no_worker_left(tmp_path: Path) -> None:
    """The workers do not inherit the CLI's SIGTERM handler: the pool's own SIGTERM (a broken pool) still ends
    them, and the parent's SIGTERM leaves none behind."""
    for i in range(400):
        (tmp_path / f"f{i}.txt").write_text("plain text line\n" * 2000)
    proc = subprocess.Popen(["timeout", "-s", "KILL", "30", "prlimit", "--as=4000000000", "--", sys.executable, "-m",
                             "veritensor_fast.cli", "scan", "--jobs", "2", "--no-progress", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ))
    try:
        kids: list[str] = []
        scanner = 0
        for _ in range(500):  # until the pool's workers are up
            found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            if found:
                scanner = int(found[0])
                kids = subprocess.run(["pgrep", "-P", str(scanner)], capture_output=True, text=True).stdout.split()
                if len(kids) >= 2 or proc.poll() is not None:
                    break
            time.sleep(0.01)
        if proc.poll() is not None:  # finished before the pool was seen: nothing to judge
            return
        os.kill(scanner, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode in (-signal.SIGTERM, 0), err
        for k in kids:
            assert _state(int(k)) in (None, "Z")
    finally:
        proc.kill()
        proc.wait()
