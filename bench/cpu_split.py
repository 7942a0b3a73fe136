"""Where the CPU of one scan goes: the parent (walk, batching, merging) against the workers (Amdahl).

    python bench/cpu_split.py CORPUS --jobs 2 [--rounds 3]

Each round runs ``engine.scan`` in a fresh process and prints one JSON line:
- ``parent_cpu``: the parent's user+sys seconds for the whole scan (``RUSAGE_SELF``: rules, database, the
  walk, pickling batches, merging results; with ``--jobs 1`` it is everything);
- ``parent_scan_cpu``: the parent's CPU while the pool runs (the part that competes with the workers);
- ``worker_cpu``: the workers' user+sys seconds (``RUSAGE_CHILDREN`` once the pool is joined);
- ``worker_init_cpu``: of that, building the worker state (0 when workers adopt the parent's forked state);
- ``worker_idle_s``: worker-seconds not spent in a batch between the pool's start and its end;
- ``parent_share``: ``parent_scan_cpu / (parent_scan_cpu + worker_cpu)``;
- ``tasks``, ``tree_tasks``, ``part_tasks``: batches run, those that walked part of the tree (with a pool the
  workers list all but the first files), and parts of large files split across tasks; ``walk_tasks``: tasks that
  only listed (``executors_local._walk``);
- ``starved_s``/``starved_waits``: the parent waited for a result with fewer tasks in flight than workers (a
  worker had nothing to do); ``gaps_s``: worker seconds between the end of one task and the start of the next.
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
jobs = int(sys.argv[2])
from veritensor_fast import engine, executors_local, executors_tasks, worker
from veritensor_fast.sources.fs import FileSource

log = sys.argv[3]
real_run, real_init = worker.WorkerContext.run_batch, worker.init_worker


def run_batch(self, batch):  # every batch, in a worker or in-process (--jobs 1)
    t, c, f0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    r = real_run(self, batch)
    t1, c1, f1 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with open(log, "a") as f:  # one line per batch: worker pid, start, end (CLOCK_MONOTONIC), CPU, items, bytes
        kinds = ''.join(sorted({it.kind[0] for it in batch}))  # f file, d dir shard, t tree (a walk), s: a part
        kinds += 's' * any(getattr(it, 'span', ()) for it in batch)
        f.write(f"b {t1 - t} {os.getpid()} {t} {t1} {c1 - c} {r.items} {r.bytes} {len(r.more)} {r.scanned[0][0] if len(r.scanned) == 1 else '-'} {len(sys.modules)} {f1 - f0} {kinds}\n")
    return r


def init_worker(o, db):
    c = time.process_time()
    real_init(o, db)
    with open(log, "a") as f:
        f.write(f"i {time.process_time() - c}\n")


worker.WorkerContext.run_batch = run_batch
real_walk = getattr(executors_local, "_walk", None)


def walk(batch):  # a walk task (tree items only: listed, not scanned), logged as a batch of its own
    t, c = time.perf_counter(), time.process_time()
    r = real_walk(batch)
    t1, c1 = time.perf_counter(), time.process_time()
    with open(log, "a") as f:
        f.write(f"b {t1 - t} {os.getpid()} {t} {t1} {c1 - c} 0 0 0 - {len(sys.modules)} 0 w\n")
    return r


if real_walk is not None:
    walk.__module__, walk.__qualname__ = "veritensor_fast.executors_local", "_walk"
    executors_local._walk = walk
starve = [0.0, 0]
try:
    from veritensor_fast.executors_pool import LeanPool
    real_wait = LeanPool.wait

    def wait(self, fs, *a, **k):  # the parent waits for results: fewer tasks in flight than workers, one idles
        fs = list(fs)
        t = time.perf_counter()
        r = real_wait(self, fs, *a, **k)
        if len(fs) < jobs:
            starve[0] += time.perf_counter() - t
            starve[1] += 1
        return r

    LeanPool.wait = wait
except ImportError:  # an older tree: ProcessPoolExecutor
    real_pwait = executors_local.wait

    def pwait(fs, *a, **k):
        t = time.perf_counter()
        r = real_pwait(fs, *a, **k)
        if len(fs) < jobs:
            starve[0] += time.perf_counter() - t
            starve[1] += 1
        return r

    executors_local.wait = pwait
init_worker.__module__, init_worker.__qualname__ = "veritensor_fast.worker", "init_worker"  # picklable by reference
worker.init_worker = executors_tasks.init_worker = init_worker
mark = {}
real_map = executors_local.PoolExecutor.map


def pool_map(self, batches):
    mark["t0"], mark["c0"], mark["mods"] = time.perf_counter(), time.process_time(), len(sys.modules)
    yield from real_map(self, batches)
    mark["t1"], mark["c1"] = time.perf_counter(), time.process_time()


executors_local.PoolExecutor.map = pool_map
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
res = engine.scan(FileSource([sys.argv[1]], default_excludes=sys.argv[4] == "1"), worker.ScanOptions(), jobs=jobs)
wall = time.perf_counter() - t0
r1, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
parent = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
rows = [ln.split() for ln in open(log)] if os.path.exists(log) else []
busy = sum(float(r[1]) for r in rows if r[0] == "b")
inits = sum(float(r[1]) for r in rows if r[0] == "i")
per: dict = {}
for r in rows:
    if r[0] == "b":
        per.setdefault(r[2], []).append((float(r[3]), float(r[4]), float(r[5]), int(r[6]), int(r[7]), r[9], int(r[10]), int(r[11])))
ends = sorted(max(e for _, e, *_ in bs) for bs in per.values())
t_pool0 = mark.get("t0", t0)
timeline = {  # per worker: first batch start and last end (s after the pool started), busy s, batches, CPU s
    pid: [round(min(s for s, *_ in bs) - t_pool0, 3), round(max(e for _, e, *_ in bs) - t_pool0, 3),
          round(sum(e - s for s, e, *_ in bs), 3), len(bs), round(sum(c for _, _, c, *_ in bs), 3)]
    for pid, bs in per.items()}
longest = sorted((e - s, c, b, os.path.basename(n)) for bs in per.values() for s, e, c, _, b, n, _, _ in bs)[-4:]
workers = rc.ru_utime + rc.ru_stime
scan_cpu = mark.get("c1", 0) - mark.get("c0", 0) if mark else parent
pool_s = mark.get("t1", 0) - mark.get("t0", 0)
print(json.dumps({
    "jobs": res.stats["jobs"], "files": res.stats["files"], "findings": len(res.findings), "wall_s": round(wall, 3),
    "parent_cpu": round(parent, 3), "parent_scan_cpu": round(scan_cpu, 3), "worker_cpu": round(workers, 3),
    "worker_init_cpu": round(inits, 3), "worker_idle_s": round(max(0.0, jobs * pool_s - busy), 3) if mark else 0,
    "parent_share": round(scan_cpu / (scan_cpu + workers), 3) if mark and scan_cpu + workers else 1.0,
    "parent_us_per_file": round(scan_cpu / max(res.stats["files"], 1) * 1e6, 1),
    "pool_s": round(pool_s, 3), "batch_cpu": round(sum(w[4] for w in timeline.values()), 3),
    # the tail: seconds between the first worker's last batch end and the last one's (a straggler)
    "tail_s": round(ends[-1] - ends[0], 3) if len(ends) > 1 else 0.0,
    "first_batch_s": round(min((w[0] for w in timeline.values()), default=0.0), 3),
    # serial start: from the scan's start (rules, database, listing the first batches, the workers' state,
    # the prefork imports, the fork) to the pool's first batch; 0 with --jobs 1
    "pool_start_s": round(t_pool0 - t0, 3) if mark else 0.0,
    "shutdown_s": round(mark.get("t1", 0) - ends[-1], 3) if mark and ends else 0.0,
    # the longest batches: wall s, CPU s, bytes, the file when the batch is one file
    # modules a worker imported after the fork (each worker pays for them; the parent could import them once)
    "worker_new_modules": max((m for bs in per.values() for *_, m, _ in bs), default=0) - mark.get("mods", 0)
    if mark else 0,
    "batch_page_faults": sum(f for bs in per.values() for *_, f in bs),  # minor faults inside batches
    "longest_batches": [[round(d, 3), round(c, 3), b, n] for d, c, b, n in longest],
    # tasks run: all, those that walked a tree item (the listing in the workers), parts of split files
    # the parent waited for results with fewer tasks in flight than workers (no work to hand out): seconds, times
    "starved_s": round(starve[0], 3), "starved_waits": starve[1],
    # worker seconds between two tasks (the round trip of a result and the next task, or no work to take)
    "gaps_s": round(sum(b[0] - a[1] for bs in per.values() for a, b in zip(sorted(bs), sorted(bs)[1:])), 3),
    "walk_tasks": sum(1 for r in rows if r[0] == "b" and r[12] == "w"),
    "tasks": sum(1 for r in rows if r[0] == "b"), "tree_tasks": sum(1 for r in rows if r[0] == "b" and "t" in r[12]),
    "part_tasks": sum(1 for r in rows if r[0] == "b" and "s" in r[12]), "workers": timeline,
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-default-excludes", action="store_true", help="as the CLI's option (the real tree)")
    a = ap.parse_args()
    for _ in range(a.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            # run in the empty temporary directory: ``-c`` puts the working directory first on ``sys.path``
            p = subprocess.run([sys.executable, "-c", CHILD, os.path.abspath(a.corpus), str(a.jobs),
                                os.path.join(tmp, "log"), "0" if a.no_default_excludes else "1"], capture_output=True, text=True, check=False, cwd=tmp)
            sys.stdout.write(p.stdout if p.returncode == 0 else f"failed: {p.stderr[-2000:]}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
