"""Where the CPU of one scan goes: the parent (walk, batching, merging) against the workers (Amdahl).

    python bench/cpu_split.py CORPUS --jobs 2 [--rounds 3]

Each round runs ``engine.scan`` in a fresh process and prints one JSON line:
- ``parent_cpu``: the parent's user+sys seconds for the whole scan (``RUSAGE_SELF``: rules, database, the
  walk, pickling batches, merging results; with ``--jobs 1`` it is everything);
- ``parent_scan_cpu``: the parent's CPU while the pool runs (the part that competes with the workers);
- ``worker_cpu``: the workers' user+sys seconds (``RUSAGE_CHILDREN`` once the pool is joined);
- ``worker_init_cpu``: of that, building the worker state (0 when workers adopt the parent's forked state);
- ``worker_idle_s``: worker-seconds not spent in a batch between the pool's start and its end;
- ``parent_share``: ``parent_scan_cpu / (parent_scan_cpu + worker_cpu)``.
Load on a shared machine distorts wall times far more than CPU seconds: compare CPU, same run, paired.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
from veritensor_fast import engine, executors_local, worker
from veritensor_fast.sources.fs import FileSource

log = sys.argv[3]
real_run, real_init = worker.run_batch, worker.init_worker


def run_batch(batch):
    t = time.perf_counter()
    r = real_run(batch)
    with open(log, "a") as f:
        f.write(f"b {time.perf_counter() - t}\n")
    return r


def init_worker(o, db):
    c = time.process_time()
    real_init(o, db)
    with open(log, "a") as f:
        f.write(f"i {time.process_time() - c}\n")


for fn, name in ((run_batch, "run_batch"), (init_worker, "init_worker")):
    fn.__module__, fn.__qualname__ = "veritensor_fast.worker", name  # picklable by reference
    setattr(worker, name, fn)
    setattr(executors_local, name, fn)
mark = {}
real_map = executors_local.PoolExecutor.map


def pool_map(self, batches):
    mark["t0"], mark["c0"] = time.perf_counter(), time.process_time()
    yield from real_map(self, batches)
    mark["t1"], mark["c1"] = time.perf_counter(), time.process_time()


executors_local.PoolExecutor.map = pool_map
jobs = int(sys.argv[2])
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
res = engine.scan(FileSource([sys.argv[1]]), worker.ScanOptions(), jobs=jobs)
wall = time.perf_counter() - t0
r1, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
parent = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
rows = [ln.split() for ln in open(log)] if os.path.exists(log) else []
busy = sum(float(v) for k, v in rows if k == "b")
inits = sum(float(v) for k, v in rows if k == "i")
workers = rc.ru_utime + rc.ru_stime
scan_cpu = mark.get("c1", 0) - mark.get("c0", 0) if mark else parent
pool_s = mark.get("t1", 0) - mark.get("t0", 0)
print(json.dumps({
    "jobs": res.stats["jobs"], "files": res.stats["files"], "findings": len(res.findings), "wall_s": round(wall, 3),
    "parent_cpu": round(parent, 3), "parent_scan_cpu": round(scan_cpu, 3), "worker_cpu": round(workers, 3),
    "worker_init_cpu": round(inits, 3), "worker_idle_s": round(max(0.0, jobs * pool_s - busy), 3) if mark else 0,
    "parent_share": round(scan_cpu / (scan_cpu + workers), 3) if mark and scan_cpu + workers else 1.0,
    "parent_us_per_file": round(scan_cpu / max(res.stats["files"], 1) * 1e6, 1),
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    for _ in range(a.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            # run in the empty temporary directory: ``-c`` puts the working directory first on ``sys.path``
            p = subprocess.run([sys.executable, "-c", CHILD, os.path.abspath(a.corpus), str(a.jobs),
                                os.path.join(tmp, "log")], capture_output=True, text=True, check=False, cwd=tmp)
            sys.stdout.write(p.stdout if p.returncode == 0 else f"failed: {p.stderr[-2000:]}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
