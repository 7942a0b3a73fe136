"""Instructions executed by one scan (``valgrind --tool=cachegrind``), for two trees side by side.

    python3 bench/instructions.py CORPUS --tree /tmp/base_486 --tree /work/wt/perf21 [--jobs 1] [-- SCAN ARGS]

On a shared machine CPU seconds move by 10-15 % between identical runs (other processes' caches and hyperthreads);
the count of instructions hardly moves (the same scan twice: within 0.2 %, measured), so a
change of 1-2 % is visible. Cachegrind runs the scan ~40x slower: use a subtree (``transformers/`` of the real
tree, 129 MB: ~4e9 instructions, ~1 min) or the whole real tree (~2e10, ~5 min). The count covers the whole
process: start-up (~0.7e9: imports, loading the databases) included. With ``--jobs N`` (N > 1) the count is every
process's sum (printed per process too, the parent first): the pool's overhead, ``--jobs 2`` against ``--jobs 1``
of the same tree, without the noise of CPU seconds on a shared machine. A forked child inherits valgrind's counts
of its parent (cachegrind would count the parent's start once per worker again), so these runs use callgrind,
zeroed in each child as it starts (``--zero-before=PyOS_AfterFork_Child``; ~1.5x slower than cachegrind, the same
instruction count). Prints one line per tree, the last one with its ratio to the first.

Write each tree's bytecode first, ``python3 -m compileall -q kernels veritensor_fast`` (``veritensor_fast/kernels`` is
a symlink that ``compileall veritensor_fast`` does not follow): with ``PYTHONDONTWRITEBYTECODE=1`` a module without
a current ``.pyc`` is compiled from source on every start, ~5e6 instructions each, which looks like a regression.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile


def instructions(tree: str, corpus: str, jobs: int, extra: list[str]) -> list[int]:
    """Instructions of each process of one scan (the parent first: its pid is the smallest here)."""
    python = os.path.realpath(sys.executable)  # not a shell shim: valgrind follows no exec here
    env = dict(os.environ, PYTHONPATH=tree)
    with tempfile.TemporaryDirectory() as tmp:
        tool = (["--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={tmp}/cg.%p"] if jobs <= 1 else
                ["--tool=callgrind", "--zero-before=PyOS_AfterFork_Child", f"--callgrind-out-file={tmp}/cg.%p"])
        cmd = ["valgrind", *tool, python,
               "-m", "veritensor_fast", "scan", corpus, "--no-default-excludes", "-f", "json", "-o",
               f"{tmp}/report.json", "--jobs", str(jobs), *extra]
        out = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, check=False)
    found = re.findall(r"==(\d+)== I\s+refs:\s+([\d,]+)", out.stderr)  # one per process (forked workers too)
    if not found:
        raise SystemExit(f"no instruction count from valgrind for {tree}:\n{out.stderr[-2000:]}")
    return [int(n.replace(",", "")) for _pid, n in sorted(found, key=lambda f: int(f[0]))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--tree", action="append", required=True, help="a checkout to put first on PYTHONPATH")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("extra", nargs="*", help="more scan arguments (after --)")
    args = ap.parse_args()
    first = 0
    for tree in args.tree:
        each = instructions(tree, args.corpus, args.jobs, args.extra)
        n = sum(each)
        first = first or n
        split = f" = {' + '.join(f'{p:,}' for p in each)}" if len(each) > 1 else ""
        print(f"{tree}: {n:,} instructions ({n / first:.4f} of the first){split}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
