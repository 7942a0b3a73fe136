"""scale24: the local pool's probe, chosen while other work is in flight, is never dropped.

Once the restart budget is spent (``failure_budget``: pool breaks or ``MemoryError`` task failures in a row),
``PoolExecutor.map`` takes a probe out of its queues (the next planned batch) to run alone once the tasks in
flight end. When one of those tasks finished first, probing ended, but the probe was never sent nor put back:
its files were neither scanned nor reported (a silent loss). Here tasks fail with ``MemoryError`` (as when a
worker cannot hold a result) while a slow task is still in flight; every file must come back, scanned or as an
error. A subprocess under an address-space cap runs the real pool (forked workers inherit the patched task).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys, time
from veritensor_fast import executors_tasks
from veritensor_fast.executors_local import PoolExecutor, failure_budget
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

real = executors_tasks.run_batch

def run_batch(batch):
    name = batch[0].path
    if name.startswith("mem"):  # a task that fails as a worker that cannot hold its result
        raise MemoryError
    if name.startswith("slow"):  # in flight while the failures reach the budget
        time.sleep(4)
    return real(batch)

executors_tasks.run_batch = run_batch
root = sys.argv[1]
names = ["slow.txt"] + [f"mem{i:02}.txt" for i in range(20)] + [f"good{i:02}.txt" for i in range(10)]
assert failure_budget(2) == 16
batches = [list(FileSource([f"{root}/{n}"]).items()) for n in names]
o = ScanOptions()
ex = PoolExecutor(o, compile_ruleset(o.ruleset()), 2)
res = list(ex.map(iter(batches)))
ex.close()
print(sum(r.items for r in res), sorted(e.path.rsplit("/", 1)[-1] for r in res for e in r.errors))
"""


def test_a_probe_chosen_while_work_is_in_flight_is_not_lost(tmp_path: Path) -> None:
    for n in ["slow.txt"] + [f"mem{i:02}.txt" for i in range(20)] + [f"good{i:02}.txt" for i in range(10)]:
        (tmp_path / n).write_text("nothing here\n")
    p = subprocess.run(["prlimit", "--as=4000000000", sys.executable, "-c", SCRIPT, str(tmp_path)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    items, errors = p.stdout.strip().split(" ", 1)
    assert errors == str([f"mem{i:02}.txt" for i in range(20)])  # each failing file reported, none dropped
    assert items == "11"  # slow.txt and the ten others scanned
