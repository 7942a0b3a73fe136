"""review19: ``reaper.reap`` kills what a command's process tree left; multiprocessing's own helpers are stopped through it.

On the integration branch it SIGKILLed (and reaped) the ``forkserver`` a pool had started, whose pid
multiprocessing keeps: the next ``forkserver`` pool in the same process (a second CLI command run in-process,
or the host program's own) failed with ``ChildProcessError``. Run in a fresh interpreter."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import multiprocessing as mp, os, subprocess, sys, time
from veritensor_fast import reaper
ctx = mp.get_context("forkserver")
reaper.adopt()
p = ctx.Process(target=int)  # starts the forkserver (and the resource tracker)
p.start(); p.join()
left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a child the command left
reaper.reap()
assert left.poll() is not None, "a child left behind was not killed"
p = ctx.Process(target=int)
p.start(); p.join()
print("second", p.exitcode)
"""


@pytest.mark.skipif(sys.platform != "linux" or "forkserver" not in mp.get_all_start_methods(), reason="Linux")
def test_the_forkserver_outlives_a_command() -> None:
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False,
                       env=dict(os.environ))
    assert p.returncode == 0 and p.stdout.strip() == "second 0", p.stderr[-2000:]


GRANDCHILD = r"""
import os, subprocess, sys, time
from veritensor_fast import reaper
reaper.adopt()
reaper.before_workers()  # a pool starts: the command becomes the subreaper of its tree
r, w = os.pipe()
sh = subprocess.Popen(["sh", "-c", "sleep 60 & echo $! >&%d; wait" % w], pass_fds=(w,), stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
os.close(w)
grandchild = int(os.read(r, 64).split()[0])
reaper.reap()  # kills sh; its sleep, orphaned, comes to us
time.sleep(0.3)
try:
    with open(f"/proc/{grandchild}/stat") as fh:
        state = fh.read().rsplit(")", 1)[1].split()[0]
except FileNotFoundError:
    state = "gone"
print(state)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="Linux")
def test_a_killed_orphans_own_child_is_killed_and_reaped_too() -> None:
    """A process left behind whose own child outlives it: on integ the child, adopted after the kill, stayed
    running (or a zombie) under the command."""
    p = subprocess.run([sys.executable, "-c", GRANDCHILD], capture_output=True, text=True, timeout=60, check=False,
                       env=dict(os.environ))
    assert p.returncode == 0 and p.stdout.strip() == "gone", (p.stdout, p.stderr[-2000:])
