"""trust19: Ctrl-C and SIGTERM leave no process behind, not even a zombie, in ``scan``, ``scan --history`` and
``baseline create``.

In a container whose PID 1 never reaps, a process whose parent dies without reaping it stays a zombie forever.
On main: ``baseline create`` had no SIGTERM handler, so its pool workers were orphaned (killed by their
parent-death signal, never reaped); and in a history scan each pool worker's ``git cat-file --batch`` reader was
orphaned when the parent killed the workers (Ctrl-C or SIGTERM). Each case runs the real CLI under a
*subreaper* harness (``PR_SET_CHILD_SUBREAPER``), which adopts whatever the CLI's process tree left behind, so
the check does not depend on this container's PID 1. Processes are checked, never time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git_run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")

#: Runs the CLI in its own process group as a subreaper's child; when ``ready`` holds (``workers``: two
#: children; ``readers``: a git process under a worker) sends the signal (SIGINT to the whole group, as a
#: terminal's Ctrl-C does; SIGTERM to the CLI alone, as ``kill`` or a CI timeout does); after the CLI exits,
#: reports the processes it left (adopted here).
HARNESS = r"""
import ctypes, json, os, signal, subprocess, sys, time
ready, signame = sys.argv[1], sys.argv[2]
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

def kids(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out

def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"

import tempfile
errf = tempfile.TemporaryFile()
p = subprocess.Popen(sys.argv[3:], start_new_session=True, stdout=subprocess.DEVNULL, stderr=errf)
seen = False
for _ in range(3000):
    if p.poll() is not None:
        break
    workers = kids(p.pid)
    if ready == "workers":
        seen = len(workers) >= 2
    else:
        seen = any(comm(g) == "git" for w in workers for g in kids(w))
    if seen:
        break
    time.sleep(0.005)
if seen:
    sig = getattr(signal, signame)
    if sig == signal.SIGINT:
        os.killpg(p.pid, sig)
    else:
        os.kill(p.pid, sig)
try:
    p.wait(timeout=60)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
time.sleep(0.3)  # a parent-death signal or a closed pipe ends an orphan shortly after
left = [[k, comm(k)] for k in kids(os.getpid())]
for k, _ in left:
    try:
        os.kill(k, signal.SIGKILL)
        os.waitpid(k, 0)
    except OSError:
        pass
print(json.dumps({"seen": seen, "rc": p.returncode, "left": left, "err": (errf.seek(0), errf.read())[1].decode("utf-8", "replace")[-2000:]}))
"""


def _run(ready: str, sig: str, *args: str) -> dict[str, object]:
    p = subprocess.run(["prlimit", "--as=4000000000", "--", sys.executable, "-c", HARNESS, ready, sig,
                        sys.executable, "-m", "veritensor_fast.cli", *args],
                       capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ))
    assert p.returncode == 0, p.stderr[-2000:]
    out: dict[str, object] = json.loads(p.stdout)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("files")
    for i in range(400):
        (d / f"f{i}.txt").write_text(f"plain text line {i}\n" * 2000)
    return d


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository of 600 commits, one 100 KB text blob each: long enough that workers read blobs."""
    repo = tmp_path_factory.mktemp("hist")
    git_run(repo, "init", "-q", "-b", "main")
    chunks = []
    for i in range(600):
        data = b"row of revision %d: nothing to see\n" % i * 2800
        chunks.append(b"commit refs/heads/main\ncommitter t <t@example.invalid> %d +0000\ndata 2\nc\n"
                      b"M 644 inline f%d.txt\ndata %d\n%s\n" % (1_600_000_000 + i, i % 50, len(data), data))
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=b"".join(chunks), check=True)
    return repo


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_baseline_create_leaves_no_worker(files: Path, tmp_path: Path, sig: str) -> None:
    out = _run("workers", sig, "baseline", "create", "--jobs", "2", "-o", str(tmp_path / "b.json"), str(files))
    if not out["seen"]:
        pytest.skip("finished before its workers were seen")
    assert out["left"] == [], out
    assert out["rc"] in ((-signal.SIGTERM, 0) if sig == "SIGTERM" else (130, 1, 0)), out


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_history_scan_leaves_no_git_reader(history: Path, sig: str) -> None:
    out = _run("readers", sig, "scan", "--history", "--no-datastore", "--no-progress", "--jobs", "2", str(history))
    assert out["seen"], out  # the workers' git readers were running when the signal came
    assert out["left"] == [], out
    assert out["rc"] != 0, out


def test_directory_scan_ctrl_c_leaves_no_worker(files: Path) -> None:
    out = _run("workers", "SIGINT", "scan", "--jobs", "2", "--no-progress", str(files))
    if not out["seen"]:
        pytest.skip("finished before its workers were seen")
    assert out["left"] == [], out
