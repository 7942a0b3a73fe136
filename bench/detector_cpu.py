"""CPU seconds (``time.process_time``) per detector over every file of a tree, streamed file by file.

    PYTHONPATH=/path/to/tree python3 bench/detector_cpu.py /tmp/vf-realtree-tree

CPU time, not wall time: on a shared, loaded machine it is the measure load distorts least. Run it for two
trees alternately (``PYTHONPATH=/work/main`` and a branch) for a paired comparison. Files over 16 MiB (read in
windows by the worker) are skipped; default excludes are off.
"""

from __future__ import annotations

import os
import sys
import time

from veritensor_fast.findings import Item
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources.fs import FileReader, FileSource
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext


def main(root: str) -> int:
    items = [it for it in FileSource([root], default_excludes=False).items() if isinstance(it, Item)]
    opts = ScanOptions()
    rs = opts.ruleset()
    ctx = WorkerContext(opts, compile_ruleset(rs), rs)
    reader = FileReader()
    acc = {d.name: 0.0 for d in ctx.detectors}
    clock = time.process_time
    nbytes = nfiles = found = 0
    for it in items:
        buf, close = reader.open(it)
        try:
            if not isinstance(buf, bytes):
                continue
            nfiles += 1
            nbytes += len(buf)
            head = buf[:4096]
            sc = ItemScan(ctx, it)
            for d in ctx.detectors:
                t = clock()
                d.scan(buf, it, head, sc)
                acc[d.name] += clock() - t
            found += len(sc.finish(buf))
        finally:
            close()
    per = " ".join(f"{k}={v:.2f}" for k, v in acc.items())
    print(f"{nfiles} files {nbytes / 1e6:.0f} MB findings {found} load {os.getloadavg()[0]:.1f} | {per} | "
          f"text+encoded={acc['text'] + acc['encoded']:.2f} all={sum(acc.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
