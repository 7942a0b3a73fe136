"""The timeline of one CLI scan, end to end: where the wall time of ``--jobs 1`` and ``--jobs N`` goes.

    python bench/timeline.py CORPUS [--jobs 1 2] [--rounds 3] [--code DIR ...] [--rt] [--scan-args '...']

Each round runs ``veritensor-fast scan CORPUS --jobs J -f json -o FILE`` in a fresh process for every code tree
(``--code``, default this checkout; several trees give paired, interleaved A/B rounds) and every J, with hooks
that log, on one clock (``CLOCK_MONOTONIC``, all processes): the interpreter's start, imports done, the first
batch, the last batch's end, the report written, the ``atexit`` handlers and the process's exit as its parent
sees it. Per worker: time in batches, in walk tasks, waiting for a task (idle), receiving and sending. It
prints the median of each column per (tree, J) as a Markdown table, then the end-to-end ``J1 / J`` speed-up.

- ``tail``: seconds between the first and the last worker's last batch end (a straggler);
- ``gaps``: worker-seconds in the pool not spent in a batch (walks, task and result transfer, idle);
- ``cpu``: user+sys seconds of the whole run, every process (``RUSAGE_CHILDREN``). With J workers on J cores the
  end-to-end time is at best the serial start plus what ``--jobs J`` spends after it over J: the speed-up is
  bounded by the start and by the CPU the pool adds (measured on 2 cores: +10-14 % on the monorepo corpus,
  with no batch-CPU rise when two ``--jobs 1`` scans run side by side).

``--rt`` runs each scan at real-time priority (``chrt -r``: the parent at 30, its forked workers at 20): other
processes on a shared machine then cannot take its cores, so wall times approach an idle machine's (the
parent above its workers plays the part of CFS's wake-up preemption). It needs root or CAP_SYS_NICE; each run
is under a 120 s timeout. Without it, compare CPU (``bench/cpu_split.py``) rather than wall on a loaded machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import os, sys, time, atexit
LOG = os.environ["TIMELINE_LOG"]
def ev(name, extra=""):
    with open(LOG, "a") as f:
        f.write(f"{time.monotonic():.6f} {os.getpid()} {name} {time.process_time():.4f} {extra}\n")
st = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
start = time.monotonic() - (time.clock_gettime(time.CLOCK_BOOTTIME) - int(st[19]) / os.sysconf("SC_CLK_TCK"))
with open(LOG, "a") as f:
    f.write(f"{start:.6f} {os.getpid()} proc_start 0\n")
atexit.register(lambda: ev("atexit"))
if os.environ.get("TIMELINE_RT"):
    os.register_at_fork(after_in_child=lambda: os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(20)))
from veritensor_fast import cli, cli_output, cli_scan, engine, executors_local, executors_pool, executors_tasks, worker
ev("imported")
real_emit = cli_output.emit
def emit(*a, **k):
    r = real_emit(*a, **k)
    ev("report")
    return r
cli_scan.emit = emit
real_scan = engine.scan
def scan(*a, **k):
    r = real_scan(*a, **k)
    ev("scan_end")
    return r
engine.scan = scan
real_trees = executors_tasks.expand_trees
def expand_trees(*a, **k):
    t = time.monotonic()
    r = real_trees(*a, **k)
    ev("walk", f"{time.monotonic() - t:.6f}")
    return r
executors_tasks.expand_trees = expand_trees
real_serve = executors_pool._serve
def serve(conn, *a, **k):
    recv, send = conn.recv, conn.send
    acc = {"idle": 0.0, "recv": 0.0, "send": 0.0}
    def timed_recv():
        t = time.monotonic()
        if not conn.poll(0):
            conn.poll(None)
            acc["idle"] += time.monotonic() - t
            t = time.monotonic()
        m = recv()
        acc["recv"] += time.monotonic() - t
        return m
    def timed_send(x):
        t = time.monotonic()
        send(x)
        acc["send"] += time.monotonic() - t
    conn.recv, conn.send = timed_recv, timed_send
    try:
        real_serve(conn, *a, **k)
    finally:
        ev("worker_end", " ".join(f"{v:.6f}" for v in acc.values()))
executors_pool._serve = serve
real_rb = worker.WorkerContext.run_batch
def run_batch(self, batch):
    t = time.monotonic()
    r = real_rb(self, batch)
    ev("batch", f"{t:.6f} {time.monotonic() - t:.6f}")
    return r
worker.WorkerContext.run_batch = run_batch
sys.argv = ["veritensor-fast", *sys.argv[1:]]
cli.main()
"""

COLUMNS = ["imported", "first_batch", "last_batch", "tail", "gaps", "idle", "walks", "transfer", "report",
           "atexit", "exit", "cpu"]


def one_run(code: str, jobs: int, corpus: str, extra: list[str], rt: bool, child: str) -> dict[str, float]:
    fd, log = tempfile.mkstemp(prefix="timeline-", suffix=".log")
    os.close(fd)
    out = log + ".json"
    env = dict(os.environ, PYTHONPATH=code, TIMELINE_LOG=log, TIMELINE_RT="1" if rt else "")
    cmd = [sys.executable, child, "scan", corpus, *extra, "--jobs", str(jobs), "-f", "json", "-o", out]
    if rt:
        cmd = ["chrt", "-r", "30", *cmd]
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["timeout", "120", *cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    t1 = time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows = [ln.split() for ln in open(log)]
    for p in (log, out):
        if os.path.exists(p):
            os.unlink(p)
    parent = rows[0][1]
    first: dict[str, float] = {}
    for r in rows:
        if r[1] == parent and r[2] not in first:
            first[r[2]] = float(r[0]) - t0
    batches = [(r[1], float(r[4]) - t0, float(r[5])) for r in rows if r[2] == "batch"]
    ends: dict[str, float] = collections.defaultdict(float)
    for pid, s, d in batches:
        ends[pid] = max(ends[pid], s + d)
    start = min(s for _, s, _ in batches)
    last = max(ends.values())
    workers = [r for r in rows if r[2] == "worker_end"]
    res = {
        "imported": first["imported"], "first_batch": start, "last_batch": last,
        "tail": last - min(ends.values()),
        "gaps": len(ends) * (last - start) - sum(d for _, _, d in batches) if workers else 0.0,
        "idle": sum(float(r[4]) for r in workers), "walks": sum(float(r[4]) for r in rows if r[2] == "walk"),
        "transfer": sum(float(r[5]) + float(r[6]) for r in workers),
        "report": first.get("report", 0.0), "atexit": first.get("atexit", 0.0), "exit": t1 - t0,
        "cpu": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,
    }
    if not workers:  # --jobs 1: the listing runs between batches in this process
        res["walks"] = 0.0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--code", nargs="+", default=[os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])
    ap.add_argument("--rt", action="store_true", help="real-time priority (see the module docstring)")
    ap.add_argument("--scan-args", default="", help="more scan arguments, one string: '--no-default-excludes'")
    a = ap.parse_args()
    a.extra = shlex.split(a.scan_args)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(CHILD)
    acc: dict[tuple[str, int], dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    try:
        for _ in range(a.rounds):
            for code in a.code:
                for j in a.jobs:
                    for k, v in one_run(code, j, a.corpus, a.extra, a.rt, f.name).items():
                        acc[(code, j)][k].append(v)
    finally:
        os.unlink(f.name)
    print(f"corpus {a.corpus}, {a.rounds} rounds, load {os.getloadavg()[0]:.1f}{', real-time priority' if a.rt else ''}"
          " (seconds from the command's start; gaps, idle, walks, transfer: worker-seconds)\n")
    print("| tree | jobs | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for (code, j), d in acc.items():
        print(f"| {code} | {j} | " + " | ".join(f"{statistics.median(d[c]):.3f}" for c in COLUMNS) + " |")
    for code in a.code:
        base = acc.get((code, 1))
        for j in a.jobs:
            if base and j != 1:
                pairs = [x / y for x, y in zip(base["exit"], acc[(code, j)]["exit"], strict=True)]
                print(f"\n{code}: --jobs 1 / --jobs {j} end to end: median of paired rounds "
                      f"{statistics.median(pairs):.2f}x ({', '.join(f'{p:.2f}' for p in pairs)})")
                c1, cj = statistics.median(base["cpu"]), statistics.median(acc[(code, j)]["cpu"])
                print(f"{code}: CPU of the whole run, --jobs {j} against --jobs 1: {cj:.2f} / {c1:.2f} s "
                      f"({100 * (cj / c1 - 1):+.0f} %: what the pool costs on top of the same scan)")


if __name__ == "__main__":
    main()
