"""Giant-notebook benchmark: peak memory and throughput of the notebook detector on a generated notebook.

Usage (not collected by pytest; run by hand)::

    python bench/bench_notebook_memory.py [--mb 300] [--kind mixed|images|text] [--dir /tmp]

It writes a notebook of about ``--mb`` MB cell by cell (random base64 PNG outputs of 1.5 MB, long stream
outputs, HTML tables, ANSI tracebacks, one 8 MB single-line output, a token split across ``source`` items, a
token behind a ``\\u`` escape, one in widget state), then scans it in a fresh child process and prints JSON:
peak RSS growth during the scan (``VmHWM`` after resetting it through ``/proc/self/clear_refs``), the scan's
throughput, the throughput of a plain Hyperscan pass over the same bytes, and whether the planted tokens
were found exactly. The bound stated in the README is 32 MiB + 6 x the largest cell.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ALNUM = string.ascii_letters + string.digits


def token(rng: random.Random) -> str:
    return "hf_" + "".join(rng.choice(ALNUM) for _ in range(34))


def write_notebook(path: Path, mb: int, kind: str, seed: int = 1) -> tuple[list[str], int]:
    """Write the notebook; return the planted tokens and the largest cell's size in bytes."""
    rng = random.Random(seed)
    toks = [token(rng) for _ in range(4)]
    target = mb << 20
    largest = 0
    with path.open("w", encoding="utf-8") as f:
        f.write('{\n "cells": [\n')
        size, i = 0, 0
        while size < target:
            outs: list[Any] = []
            if kind in ("mixed", "text"):
                outs.append({"name": "stdout", "output_type": "stream",
                             "text": [f"epoch {k} loss {rng.random():.6f}\n" for k in range(400)]})
            if kind in ("mixed", "images") and i % 2 == 0:
                outs.append({"data": {"image/png": base64.b64encode(rng.randbytes(1_500_000)).decode(),
                                      "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
                             "metadata": {}, "output_type": "display_data"})
            if kind in ("mixed", "text") and i % 5 == 0:
                outs.append({"data": {"text/html": [f"<tr><td>{k}</td><td>{rng.random()}</td></tr>\n"
                                                    for k in range(500)]},
                             "execution_count": i, "metadata": {}, "output_type": "execute_result"})
            if i % 7 == 0:
                outs.append({"ename": "ValueError", "evalue": "bad", "output_type": "error",
                             "traceback": ["\x1b[0;31m---------\x1b[0m", f"\x1b[0;32mFile x{i}.py\x1b[0m line 3"]})
            if i == 3:
                outs.append({"name": "stdout", "output_type": "stream",
                             "text": "[" + ", ".join(f"{rng.random():.6f}" for _ in range(1 << 20)) + "]"})  # 8 MB line
            src = [f"x{i} = train(step={i})\n", "print(x)\n"]
            if i == 1:
                src += [f"T = '{toks[0][:9]}", f"{toks[0][9:]}'\n"]
            cell = {"cell_type": "code", "execution_count": i, "id": f"cell-{i}", "metadata": {},
                    "outputs": outs, "source": src}
            text = json.dumps(cell, indent=1, ensure_ascii=False)
            if i == 2:
                outs.append({"name": "stdout", "output_type": "stream", "text": f"Token is valid: {toks[1]}\n"})
                text = json.dumps(cell, indent=1, ensure_ascii=False).replace(toks[1], "\\u0068" + toks[1][1:])
            if i == 200:
                outs.append({"name": "stdout", "output_type": "stream", "text": f"{toks[3]}\n"})
                text = json.dumps(cell, indent=1, ensure_ascii=False)
            f.write(("" if i == 0 else ",\n") + text)
            size += len(text)
            largest = max(largest, len(text))
            i += 1
        meta = {"kernelspec": {"name": "python3"},
                "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"w": {"value": toks[2]}}}}}
        f.write('\n ],\n "metadata": ' + json.dumps(meta) + ',\n "nbformat": 4,\n "nbformat_minor": 5\n}\n')
    return toks if i > 200 else toks[:3], largest


CHILD = """
import json, mmap, os, re, sys, time
from veritensor_fast.findings import Item
from veritensor_fast.worker import ScanOptions, WorkerContext
def status(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
path, ignores = sys.argv[1], sys.argv[2] == "1"
ctx = WorkerContext(ScanOptions(inline_ignores=ignores))
size = os.path.getsize(path)
with open(path, "rb") as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    t0 = time.perf_counter(); ctx.matcher.find(mm); plain = size / (time.perf_counter() - t0) / 1e6
    mm.madvise(mmap.MADV_DONTNEED)
    mm.close()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
t0 = time.perf_counter()
res = ctx.run_batch([Item("file", path, "big.ipynb", size)])
dt = time.perf_counter() - t0
print(json.dumps({"peak_growth_mib": round((status("VmHWM") - before) / 1024, 1), "scan_mb_s": round(size / dt / 1e6),
                  "plain_hyperscan_mb_s": round(plain), "secrets": sorted(f.secret for f in res.findings),
                  "errors": [e.reason for e in res.errors]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--kind", choices=["mixed", "images", "text"], default="mixed")
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the generated notebook")
    a = ap.parse_args()
    path = Path(a.dir) / f"vf-bench-{a.kind}-{a.mb}.ipynb"
    t0 = time.perf_counter()
    toks, largest = write_notebook(path, a.mb, a.kind)
    gen_s = time.perf_counter() - t0
    try:
        report: dict[str, Any] = {"file_mb": round(path.stat().st_size / 1e6, 1), "kind": a.kind,
                                  "largest_cell_mib": round(largest / 2**20, 2), "generate_s": round(gen_s, 1)}
        bound = 32 + 6 * largest / 2**20
        report["bound_mib"] = round(bound, 1)
        for ignores in ("0", "1"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), ignores], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout)
            r["exact"] = r.pop("secrets") == sorted(toks)
            r["within_bound"] = r["peak_growth_mib"] < bound
            report["with_inline_ignores" if ignores == "1" else "notebook_only"] = r
        print(json.dumps(report, indent=1))
    finally:
        if not a.keep:
            os.unlink(path)


if __name__ == "__main__":
    main()
