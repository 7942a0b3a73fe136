"""outproc20: a command run in-process reaps only what it started, never its host's children.

On 8eea362 ``reaper.reap`` killed every child that was not there at ``adopt()``: a program that calls the CLI
in-process (a Jupyter kernel, a test runner, a service) lost a child one of its other threads started while the
scan ran. Now the command's thread and the pool workers carry a tag (a blocked real-time signal, inherited over
fork and exec) and only tagged children are killed. The orphans of the command's own tree still are (the
trust19/review19 reaper tests, and the last test here with the host's own ``forkserver`` forking the workers).
Each case runs in a fresh interpreter; processes are checked, never time."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc, prctl: Linux")

HOST_THREAD = r"""
import json, subprocess, sys, threading
from veritensor_fast import reaper
from veritensor_fast.cli import app

started, go, done = [], threading.Event(), threading.Event()
def host():  # another thread of the host program starts a child of its own while the scan runs
    go.wait()
    started.append(subprocess.Popen(["sleep", "60"]))
    done.set()
threading.Thread(target=host, daemon=True).start()
real, pools = reaper.adopt, []
def adopt():  # the command starts
    real()
    go.set(); done.wait(10)
reaper.adopt = adopt
real_bw = reaper.before_workers
reaper.before_workers = lambda: (pools.append(1), real_bw())
try:
    app(["scan", "--no-progress", "--jobs", "2", "-f", "json", "-o", "/dev/null", sys.argv[1]])
except SystemExit as exc:
    code = exc.code
p = started[0]
alive = p.poll() is None
p.kill(); p.wait()
print(json.dumps({"code": code, "alive": alive, "rc": p.returncode, "pool": bool(pools)}))
"""


def test_a_child_of_another_host_thread_survives_an_in_process_scan(tmp_path: Path) -> None:
    for i in range(200):
        (tmp_path / f"f{i}.txt").write_text("nothing here\n" * 5000)
    p = subprocess.run([sys.executable, "-c", HOST_THREAD, str(tmp_path)], capture_output=True, text=True,
                       timeout=60, check=False, env=dict(os.environ))
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["code"] == 0 and out["pool"], out
    assert out["alive"], out  # 8eea362: killed by reap() (rc -9)


EXITED_THREAD = r"""
import subprocess, threading
from veritensor_fast import reaper
kids, go = [], threading.Event()
def host():
    go.wait()
    kids.append(subprocess.Popen(["sleep", "60"]))
t = threading.Thread(target=host)
t.start()  # the host's thread, there before the command
reaper.adopt()
reaper.before_workers()
go.set(); t.join()  # the thread is gone: its child now hangs under another thread of this process
reaper.reap()
print("alive" if kids[0].poll() is None else "killed")
kids[0].kill(); kids[0].wait()
"""


def test_a_child_left_by_an_exited_host_thread_is_not_killed() -> None:
    p = subprocess.run([sys.executable, "-c", EXITED_THREAD], capture_output=True, text=True, timeout=60,
                       check=False, env=dict(os.environ))
    assert p.returncode == 0 and p.stdout.strip() == "alive", (p.stdout, p.stderr[-2000:])  # 8eea362: killed


HOST_FORKSERVER = r"""
import multiprocessing as mp, os, signal, subprocess, sys, time
from veritensor_fast import reaper
from veritensor_fast.executors_pool import LeanPool

def spawn():
    sh = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE)
    pid = int(sh.stdout.readline())
    sh.wait()
    return pid

if __name__ == "__main__":
    ctx = mp.get_context("forkserver")
    p = ctx.Process(target=int); p.start(); p.join()  # the host's own forkserver, running before the command
    reaper.adopt()
    pool = LeanPool(1, ctx, int, ())
    fut = pool.submit(spawn)
    sleeper = fut.result() if pool.wait([fut]) else None
    worker = next(iter(pool._processes))
    os.kill(worker, signal.SIGKILL)  # the worker dies: its sleep is orphaned to us (the subreaper)
    time.sleep(0.3)
    pool._break(); pool.shutdown()
    reaper.reap()
    time.sleep(0.3)
    try:
        with open(f"/proc/{sleeper}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    print(state)
    if state != "gone":
        os.kill(sleeper, signal.SIGKILL)
"""


@pytest.mark.skipif("forkserver" not in mp.get_all_start_methods(), reason="forkserver")
def test_a_workers_orphan_is_reaped_when_the_hosts_forkserver_forked_the_worker(tmp_path: Path) -> None:
    """The workers tag themselves: forked by a host's untagged forkserver, their children still carry the tag
    (passes on 8eea362 too, which killed every new child: this guards the narrower rule)."""
    script = tmp_path / "host.py"
    script.write_text(HOST_FORKSERVER)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False,
                       env=dict(os.environ))
    assert p.returncode == 0 and p.stdout.strip() == "gone", (p.stdout, p.stderr[-2000:])


HOST_HELPER = r"""
import multiprocessing as mp, threading
from multiprocessing import forkserver
from veritensor_fast import reaper

if __name__ == "__main__":
    go = threading.Event()
    def host():  # the host's thread starts its own forkserver while the command runs
        go.wait()
        p = mp.get_context("forkserver").Process(target=int); p.start(); p.join()
    t = threading.Thread(target=host); t.start()
    reaper.adopt()
    go.set(); t.join()
    pid = forkserver._forkserver._forkserver_pid
    reaper.reap()
    print("kept" if forkserver._forkserver._forkserver_pid == pid else "stopped")
"""


@pytest.mark.skipif("forkserver" not in mp.get_all_start_methods(), reason="forkserver")
def test_the_hosts_forkserver_started_by_another_thread_is_not_stopped(tmp_path: Path) -> None:
    script = tmp_path / "host.py"
    script.write_text(HOST_HELPER)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False,
                       env=dict(os.environ))
    assert p.returncode == 0 and p.stdout.strip() == "kept", (p.stdout, p.stderr[-2000:])  # 8eea362: stopped
