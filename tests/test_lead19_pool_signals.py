"""lead19: a worker that gets SIGTERM while it is being forked dies of it, whatever handler the parent had.

Found by ``test_trust19_reap`` failing one run in a few: Ctrl-C while ``baseline create`` started its workers
made the pool's ``_break`` send SIGTERM to a worker still in its at-fork hooks. It ran the parent's handler
(the CLI's ``stop_on_sigterm`` raises ``SystemExit``), which the hook machinery swallowed ("Exception ignored
in: Random.seed"); the worker lived on, waiting for a task, and the parent's ``join`` waited for it forever.
The at-fork window is widened here by a hook that sleeps, so the signal lands in it every time."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and at-fork hooks")

SCRIPT = r"""
import json, multiprocessing as mp, os, signal, time
from veritensor_fast.executors_pool import LeanPool

def handler(signum, frame):  # as the CLI's stop_on_sigterm: unwind through the finally blocks
    raise SystemExit(128 + signum)

signal.signal(signal.SIGTERM, handler)
os.register_at_fork(after_in_child=lambda: time.sleep(1.5))  # the child's at-fork window, widened
pool = LeanPool(1, mp.get_context("fork"), int, ())
proc = next(iter(pool._processes.values()))
time.sleep(0.3)
os.kill(proc.pid, signal.SIGTERM)  # lands while the child sleeps in its hook
proc.join(8)
code = proc.exitcode
if code is None:
    proc.kill()
    proc.join()
pool.shutdown(wait=True, cancel_futures=True)
print(json.dumps({"exitcode": code}))
"""


def test_sigterm_in_a_starting_worker_ends_it() -> None:
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().endswith('{"exitcode": -15}'), (p.stdout, p.stderr[-2000:])
