"""Where the serial start of a ``--jobs N`` scan goes, before the first batch reaches a worker.

    python3 bench/start_phases.py CORPUS [--jobs 2] [--rounds 5] [--code DIR ...] [--rt]

Each round runs ``veritensor-fast scan CORPUS --jobs N`` in a fresh process per code tree (interleaved), with
hooks that note, on the process's own clock from its start (``/proc/self/stat``): ``main`` (the interpreter and
``site`` done, this script running), ``imported`` (the CLI and the scan's modules), ``db`` (the rules loaded,
the database compiled or loaded), ``pool`` (``PoolExecutor`` entered: the first batches listed), ``prebuild``
(the parent's ``WorkerContext`` built; then ``PREFORK_IMPORTS``), ``forked`` (``PoolExecutor`` returned: workers
forked), ``result1`` (the first result back) and ``exit``. Prints the median of each per tree. ``--rt`` runs at
real-time priority (``chrt -r 30``; root), as ``bench/timeline.py`` does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import os, sys, time
st = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
start = time.monotonic() - (time.clock_gettime(time.CLOCK_BOOTTIME) - int(st[19]) / os.sysconf("SC_CLK_TCK"))
ev = {}
def mark(n):
    ev.setdefault(n, time.monotonic() - start)
mark("main")
from veritensor_fast import cli, engine, executors_local
mark("imported")
real_db = engine.compile_ruleset
def db(*a, **k):
    r = real_db(*a, **k); mark("db"); return r
engine.compile_ruleset = db
real_pre = executors_local.prebuild
def pre(*a, **k):
    mark("prebuild"); return real_pre(*a, **k)
executors_local.prebuild = pre
real_init = executors_local.PoolExecutor.__init__
def init(self, *a, **k):
    mark("pool"); real_init(self, *a, **k); mark("forked")
executors_local.PoolExecutor.__init__ = init
real_map = executors_local.PoolExecutor.map
def map_(self, b):
    for r in real_map(self, b):
        mark("result1"); yield r
executors_local.PoolExecutor.map = map_
import atexit
atexit.register(lambda: (mark("exit"), print(" ".join(f"{k}={v:.4f}" for k, v in ev.items()), file=sys.stderr)))
sys.argv = ["veritensor-fast", *sys.argv[1:]]
cli.main()
"""

PHASES = ["main", "imported", "db", "pool", "prebuild", "forked", "result1", "exit"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--code", nargs="+", default=[os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])
    ap.add_argument("--rt", action="store_true")
    args = ap.parse_args()
    rows: dict[str, list[dict[str, float]]] = {c: [] for c in args.code}
    with tempfile.TemporaryDirectory() as tmp:
        child = os.path.join(tmp, "child.py")
        with open(child, "w") as f:
            f.write(CHILD)
        for _ in range(args.rounds):
            for code in args.code:
                cmd = [sys.executable, child, "scan", args.corpus, "--jobs", str(args.jobs), "-f", "json", "-o",
                       os.path.join(tmp, "r.json"), "--no-progress"]
                if args.rt:
                    cmd = ["chrt", "-r", "30", *cmd]
                p = subprocess.run(["timeout", "120", *cmd], env=dict(os.environ, PYTHONPATH=code),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
                last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
                rows[code].append({k: float(v) for k, v in (kv.split("=") for kv in last.split())})
    print(f"corpus {args.corpus}, --jobs {args.jobs}, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}"
          f"{', real-time priority' if args.rt else ''} (medians, seconds from the process's start)\n")
    print("| tree | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for code, rs in rows.items():
        cells = [f"{statistics.median(r[k] for r in rs if k in r):.3f}" if any(k in r for r in rs) else "-"
                 for k in PHASES]
        print(f"| {code} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
