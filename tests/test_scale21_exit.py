"""The command ends without the interpreter's teardown (``cli.exit_now``), and loses nothing by it.

The teardown (every module, object and database freed one by one) cost 35-50 ms of wall time after every scan,
serial, with both cores idle. These tests run the real command line in a child process (``main()``, as the
``veritensor-fast`` entry point does) and check what a user and a host program see: the exit status, a
complete report on a pipe and in a file, ``atexit`` handlers that still run (the pool's, a host's), and a
thread that is still running, which is waited for as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import hf_token

ROOT = Path(__file__).resolve().parent.parent

# A host that imports the command and calls ``main()``: its ``atexit`` handler must run; a module global with a
# ``__del__`` is freed only by the interpreter's teardown, which the command now skips.
_PROBE = """
import atexit, sys, threading, time
class Sentinel:
    def __del__(self):
        sys.stderr.write("TEARDOWN\\n")
keep = Sentinel()
atexit.register(lambda: sys.stderr.write("ATEXIT\\n"))
if sys.argv[1] == "thread":
    def late():
        time.sleep(0.3)
        sys.stderr.write("THREAD-DONE\\n")
    threading.Thread(target=late).start()  # not a daemon: the process must wait for it
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", *sys.argv[2:]]
main()
"""


def _probe(tmp_path: Path, mode: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", _PROBE, mode, *args], capture_output=True, cwd=tmp_path,
                          env=env, timeout=120, check=False)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    t = tmp_path / "t"
    t.mkdir()
    for i in range(300):  # a report of a few hundred KB: more than a pipe buffer
        (t / f"f{i}.py").write_text(f"TOKEN_{i} = '{hf_token()}'\n")
    return t


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_report_on_a_pipe_is_complete_and_the_status_kept(tmp_path: Path, target: Path, jobs: str) -> None:
    p = _probe(tmp_path, "plain", "scan", str(target), "--jobs", jobs, "-f", "json", "--no-progress")
    assert p.returncode == 1, p.stderr
    report = json.loads(p.stdout)
    assert len(report["findings"]) == 300
    assert b"ATEXIT" in p.stderr
    assert b"TEARDOWN" not in p.stderr  # fails before this change: the interpreter's teardown ran


def test_report_file_and_clean_and_incomplete_status(tmp_path: Path, target: Path) -> None:
    out = tmp_path / "r.sarif"
    p = _probe(tmp_path, "plain", "scan", str(target), "--jobs", "2", "-f", "sarif", "-o", str(out), "-q")
    assert p.returncode == 1, p.stderr
    assert len(json.loads(out.read_text())["runs"][0]["results"]) == 300
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("nothing here\n")
    p = _probe(tmp_path, "plain", "scan", str(clean), "-q")
    assert p.returncode == 0 and b"ATEXIT" in p.stderr, p.stderr
    p = _probe(tmp_path, "plain", "scan", str(tmp_path / "missing"), "-q")
    assert p.returncode == 3 and b"missing" in p.stdout + p.stderr and b"ATEXIT" in p.stderr
    p = _probe(tmp_path, "plain", "scan", "--jobs", "-1", str(clean))
    assert p.returncode == 2 and b"--jobs must be" in p.stderr and b"ATEXIT" in p.stderr


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("nothing here\n")
    p = _probe(tmp_path, "thread", "scan", str(clean), "-q")
    assert p.returncode == 0, p.stderr
    assert b"THREAD-DONE" in p.stderr and b"ATEXIT" in p.stderr


def test_a_closed_pipe_still_exits_with_the_usual_status(tmp_path: Path, target: Path) -> None:
    """Standard output closed by its reader: the command neither hangs nor claims success."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r, w = os.pipe()
    os.close(r)  # nobody will read: every write fails (EPIPE)
    try:
        p = subprocess.run([sys.executable, "-m", "veritensor_fast", "scan", str(target), "-f", "json",
                            "--no-progress"], stdout=w, stderr=subprocess.PIPE, cwd=tmp_path, env=env, timeout=120,
                           check=False)
    finally:
        os.close(w)
    assert p.returncode != 0


_HOST = """
import sys
from veritensor_fast import cli
def run():
    sys.argv = ["veritensor-fast", *sys.argv[1:]]
    try:
        cli.main()
    except SystemExit as exc:
        return exc.code
print("HOST-GOT", run(), flush=True)
"""


def test_a_host_calling_main_from_its_own_module_gets_systemexit(tmp_path: Path) -> None:
    """Only the program's entry point (called from ``__main__``) ends the process at once; a host's function
    that calls ``main()`` (a test runner, a service) still catches ``SystemExit`` and goes on."""
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("nothing here\n")
    (tmp_path / "hostmod.py").write_text(_HOST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    p = subprocess.run([sys.executable, "-c", "import hostmod", "scan", str(clean), "-q"], capture_output=True,
                       cwd=tmp_path, env=env, timeout=120, check=False)
    assert p.returncode == 0 and b"HOST-GOT 0" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("tool", ["cProfile", "profile"])
def test_a_profiled_command_still_writes_its_profile(tool: str, tmp_path: Path) -> None:
    """``python -m cProfile -o F -m veritensor_fast scan …`` writes F after ``main`` returns: the fast exit must
    not take that away (it did: the profile was never written)."""
    (tmp_path / "a.txt").write_text("nothing here\n")
    out = tmp_path / "prof.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", tool, "-o", str(out), "-m", "veritensor_fast", "scan",
                        str(tmp_path / "a.txt"), "--no-config", "--no-progress", "--jobs", "1"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file() and out.stat().st_size > 0
