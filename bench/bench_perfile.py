"""Per-file costs of the file path, each measured alone over the same files in one process (µs per file).

    python3 bench/bench_perfile.py corpora/out/monorepo [--repeat 5] [--limit 20000]

Steps: the walk (``FileSource.items``: scandir, stat, ``Item``), ``_excluded`` with one and with twelve globs,
``FileReader.open`` (safe open + fstat identity check + read + close), a plain ``open().read()`` of the same
files for reference, file-name scanning (``secrets_in_paths`` per 256-file batch), ``ItemScan`` + ``finish``
(dedup + post-processors, including the redaction seam), ``run_batch`` end to end, and each detector's
``scan`` in pipeline order. Best of ``--repeat`` per step (the machine is shared: the minimum is the least disturbed run). The
load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from veritensor_fast.engine import BATCH_ITEMS, make_batches  # noqa: E402
from veritensor_fast.findings import Item  # noqa: E402
from veritensor_fast.matcher import compile_ruleset  # noqa: E402
from veritensor_fast.sources.fs import FileReader, FileSource, _excluded  # noqa: E402
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext  # noqa: E402

GLOBS12 = ("*.min.js", "vendor/", "third_party", "*.lock", "node_modules", "dist/", "build", "*.egg-info",
           "__pycache__", ".tox", "*.pyc", "docs/_build")


def best(fn: Callable[[], object], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int, default=20000)
    a = ap.parse_args(argv)
    root = str(a.root)
    items = [it for it in FileSource([root]).items() if isinstance(it, Item)][: a.limit]
    n = len(items)
    opts = ScanOptions()
    ruleset = opts.ruleset()
    ctx = WorkerContext(opts, compile_ruleset(ruleset), ruleset)
    reader = FileReader()
    bufs = []
    for it in items:
        b, close = reader.open(it)
        bufs.append(b if isinstance(b, bytes) else b"")
        close()
    rels = [(it.path, it.path.rsplit("/", 1)[-1]) for it in items]
    batches = [items[i:i + BATCH_ITEMS] for i in range(0, n, BATCH_ITEMS)]

    def walk() -> None:
        list(make_batches(FileSource([root]).items(), []))

    def excl(globs: tuple[str, ...]) -> Callable[[], None]:
        def f() -> None:
            for rel, name in rels:
                _excluded(rel, name, globs)
        return f

    def fs_open() -> None:
        for it in items:
            _b, close = reader.open(it)
            close()

    def plain_read() -> None:
        for it in items:
            with open(it.key, "rb") as f:
                f.read()

    def names() -> None:
        for b in batches:
            ctx.path_secrets(b)

    def finish() -> None:
        for it, buf in zip(items, bufs, strict=True):
            ItemScan(ctx, it).finish(buf)

    def detectors() -> dict[str, float]:
        """Each detector's time, in pipeline order with one ``ItemScan`` per file (as ``scan_buffer`` runs them:
        a detector may skip work an earlier one did)."""
        acc = {d.name: 0.0 for d in ctx.detectors}
        clock = time.perf_counter
        for it, buf in zip(items, bufs, strict=True):
            head = buf[:4096]
            sc = ItemScan(ctx, it)
            for d in ctx.detectors:
                t = clock()
                d.scan(buf, it, head, sc)
                acc[d.name] += clock() - t
        return acc

    def run_batch() -> None:
        for b in batches:
            ctx.run_batch(b)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("walk (scandir+stat+Item, batching)", walk), ("_excluded, 1 glob", excl(("ground_truth.json",))),
        ("_excluded, 12 globs", excl(GLOBS12)), ("FileReader.open (safe open+fstat+read+close)", fs_open),
        ("plain open().read() (reference)", plain_read), ("file names (secrets_in_paths per batch)", names),
        ("ItemScan + finish (dedup, post-processors)", finish),
    ]
    steps.append(("run_batch end to end", run_batch))
    print(f"{n} files, {sum(map(len, bufs)) / 1e6:.1f} MB, load average {os.getloadavg()[0]:.2f}, best of "
          f"{a.repeat}")
    print("| step | µs per file | s total |\n|---|---|---|")
    for name, fn in steps:
        s = best(fn, a.repeat)
        print(f"| {name} | {s / n * 1e6:.2f} | {s:.3f} |", flush=True)
    per_det: dict[str, float] = {}
    for _ in range(a.repeat):
        for k, v in detectors().items():
            per_det[k] = min(per_det.get(k, v), v)
    for k, v in per_det.items():
        print(f"| detector {k} (in pipeline order) | {v / n * 1e6:.2f} | {v:.3f} |")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
