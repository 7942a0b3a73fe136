"""Worker processes that die, raise or get signals: the local pool (``--jobs 2``) notices, retries, reports.

Each scan runs the real CLI in a subprocess (``faulty_worker.py``: a reader patched before the workers fork).
Timeouts here only stop a hung scan from hanging the suite; nothing asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import hf_token

HARNESS = str(Path(__file__).with_name("faulty_worker.py"))


def make_tree(root: Path, tokens: int = 6, files: int = 700) -> list[str]:
    """``files`` small files (three batches: a real pool, not the small-scan shortcut), ``tokens`` of them
    holding a token, and ``poison.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    toks = []
    for i in range(files):
        if tokens and i % (files // tokens) == 0 and len(toks) < tokens:
            toks.append(hf_token())
            (root / f"f{i:03}.py").write_text(f"T = '{toks[-1]}'\n")
        else:
            (root / f"f{i:03}.txt").write_text("nothing here\n")
    (root / "poison.txt").write_text("harmless bytes\n")
    return toks


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)


def errs(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's errors without their ``level`` (every one here is a real error)."""
    return [{k: v for k, v in e.items() if k != "level"} for e in rep["errors"]]


def scan(root: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    p = run("scan", str(root), "--jobs", "2", "--format", "json", "--no-progress", *extra, env=env)
    assert p.stdout, p.stderr[-3000:]
    return p.returncode, json.loads(p.stdout), p.stderr


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGBUS", "SIGSEGV"])
def test_worker_killed_by_an_item_loses_nothing_else(tmp_path: Path, sig: str) -> None:
    toks = make_tree(tmp_path / "t")
    code, rep, _ = scan(tmp_path / "t", env={"FAULT": sig})
    assert sorted(f["redacted"] for f in rep["findings"]) == sorted(
        f"{t[:5]}…{t[-2:]}" for t in toks)  # every token, found once
    assert errs(rep) == [{"path": "poison.txt", "kind": "crash", "reason":
                              f"the worker process died while scanning this item (killed by {sig}); "
                              "it was not scanned"}]
    assert rep["stats"]["files"] == 700  # every other file was scanned
    assert rep["stats"]["worker_restarts"] >= 1
    assert code == 1


def test_crash_without_findings_exits_3(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", tokens=0)
    code, rep, stderr = scan(tmp_path / "t")
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("poison.txt", "crash")]
    assert rep["findings"] == [] and rep["stats"]["files"] == 700
    assert code == 3
    assert "Traceback" not in stderr


def test_worker_killed_from_outside_costs_a_retry_not_a_finding(tmp_path: Path) -> None:
    """An innocent worker killed (as the OOM killer would) while the scan runs: nothing is lost, no error."""
    toks = make_tree(tmp_path / "t", files=700)
    (tmp_path / "t" / "poison.txt").unlink()
    p = subprocess.Popen([sys.executable, HARNESS, "scan", str(tmp_path / "t"), "--jobs", "2", "--format", "json",
                          "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "SLOW": "0.005"})
    try:
        kids = wait_for_children(p.pid, 2)
        os.kill(kids[0], signal.SIGKILL)
        out, err = p.communicate(timeout=90)
    finally:
        p.kill()
    assert out, err[-3000:]
    rep = json.loads(out)
    assert sorted(f["redacted"] for f in rep["findings"]) == sorted(f"{t[:5]}…{t[-2:]}" for t in toks)
    assert errs(rep) == [] and rep["stats"]["files"] == 700
    assert rep["stats"]["worker_restarts"] >= 1
    assert p.returncode == 1


def test_item_that_raises_in_the_worker_becomes_internal_error(tmp_path: Path) -> None:
    toks = make_tree(tmp_path / "t")
    code, rep, stderr = scan(tmp_path / "t", env={"FAULT": "raise"})
    assert len(rep["findings"]) == len(toks)
    assert errs(rep) == [{"path": "poison.txt", "kind": "internal", "reason": "worker failed: RuntimeError"}]
    assert code == 1
    assert "reader bug" not in stderr  # the exception's message never reaches the user


def test_workers_that_cannot_start_stop_the_scan_with_exit_2(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", tokens=0)
    p = run("scan", str(tmp_path / "t"), "--jobs", "2", "--no-progress", env={"FAULT": "init"})
    assert p.returncode == 2
    assert "the worker processes could not start" in p.stderr


# ---- signals -------------------------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def wait_for_children(pid: int, n: int, timeout: float = 30) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        kids = children(pid)
        if len(kids) >= n:
            time.sleep(0.3)  # let them initialise and take work
            return children(pid)
        time.sleep(0.05)
    raise AssertionError("the workers never started")


def gone(pids: list[int], timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(Path(f"/proc/{p}").exists() and "Z" not in zstate(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def zstate(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")


@needs_proc
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_process_group_signal_exits_quietly(tmp_path: Path, sig: int, code: int) -> None:
    """Ctrl-C (SIGINT to the terminal's process group): the CLI exits 130, no worker prints a traceback, and no
    worker outlives it. SIGTERM to the group: everyone dies quietly."""
    make_tree(tmp_path / "t", tokens=1)
    p = subprocess.Popen([sys.executable, HARNESS, "scan", str(tmp_path / "t"), "--jobs", "2", "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env={**os.environ, "SLOW": "0.05"})
    try:
        kids = wait_for_children(p.pid, 2)
        time.sleep(1)  # the workers are busy reading (each read takes 50 ms)
        os.killpg(p.pid, sig)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == code
    assert err == ""  # no worker traceback (not even multiprocessing's "Process ForkPoolWorker-1:" header)
    assert gone(kids)


@needs_proc
def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", tokens=1)
    p = subprocess.Popen([sys.executable, HARNESS, "scan", str(tmp_path / "t"), "--jobs", "2", "--no-progress"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "SLOW": "0.05"})
    try:
        kids = wait_for_children(p.pid, 2)
        p.kill()
        p.wait(30)
        assert gone(kids)
    finally:
        for k in children(p.pid):
            os.kill(k, signal.SIGKILL)


IDLE_KILL = """
import os, signal, sys, time
from veritensor_fast.engine import make_batches
from veritensor_fast.executors_local import PoolExecutor
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions
o = ScanOptions()
ex = PoolExecutor(o, compile_ruleset(o.ruleset()), 2)
os.kill(ex._processes()[0].pid, signal.SIGKILL)  # a worker dies while the pool is idle
time.sleep(0.5)
res = list(ex.map(make_batches(FileSource([sys.argv[1]]).items(), [])))
ex.close()
print(sum(r.items for r in res), sum(len(r.findings) for r in res), sum(len(r.errors) for r in res), ex.restarts)
"""


def test_worker_that_died_while_the_pool_was_idle_costs_a_restart(tmp_path: Path) -> None:
    toks = make_tree(tmp_path / "t")
    (tmp_path / "t" / "poison.txt").unlink()
    p = subprocess.run([sys.executable, "-c", IDLE_KILL, str(tmp_path / "t")], capture_output=True, text=True,
                       timeout=90, check=False)
    assert p.stdout.split() == ["700", str(len(toks)), "0", "1"], p.stderr[-2000:]


def test_file_truncated_after_it_was_mapped_does_not_hang_or_lose_other_findings(tmp_path: Path) -> None:
    """A file truncated once opened, before it is scanned (when files were memory-mapped, a real SIGBUS; now
    they are read, never mapped). The scan ends and finds the rest; the shrunken file is scanned as read, or
    reported as changed during the scan."""
    toks = make_tree(tmp_path / "t")
    with open(tmp_path / "t" / "poison.txt", "wb") as f:
        f.write(b"x" * (8 << 20))
    code, rep, _ = scan(tmp_path / "t", env={"FAULT": "truncate"})
    assert sorted(f["redacted"] for f in rep["findings"]) == sorted(f"{t[:5]}…{t[-2:]}" for t in toks)
    assert rep["stats"]["files"] + len(rep["errors"]) == 701
    assert [e["path"] for e in rep["errors"]] in ([], ["poison.txt"])
    assert code == 1
