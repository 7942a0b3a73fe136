"""Bounded-memory check: analyse a 2 GiB PyTorch-style zip checkpoint (stored tensor member) and report peak RSS.

The tensor member is a sparse hole (no disk or page cache cost to create); the checkpoint is opened the way the
scanner opens big files (read-only mmap). Only ``archive/data.pkl`` should be read, so peak RSS must stay near
the interpreter's baseline instead of growing by 2 GiB.

    python bench/bench_model_memory.py [SIZE_GIB]
"""

from __future__ import annotations

import mmap
import os
import resource
import struct
import sys
import tempfile
import time
import zlib

from veritensor_fast.models import analyze

PKL = (b"\x80\x02ccollections\nOrderedDict\n)Rq\x00(\x8c\x06weightctorch._utils\n_rebuild_tensor_v2\n"
       b"((\x8c\x07storagectorch\nFloatStorage\n\x8c\x010\x8c\x03cpuK\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89"
       b"ccollections\nOrderedDict\n)RtRu.")


def build(path: str, size: int) -> None:
    entries = []
    with open(path, "wb") as f:
        for name, data, n in [(b"archive/data.pkl", PKL, len(PKL)), (b"archive/data/0", None, size)]:
            off = f.tell()
            crc = zlib.crc32(data) if data is not None else 0
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, n, n, len(name), 0) + name)
            if data is not None:
                f.write(data)
            else:
                f.seek(n, os.SEEK_CUR)  # sparse hole: zeros without writing them
            entries.append((name, crc, n, off))
        cd = f.tell()
        for name, crc, n, off in entries:
            f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, n, n, len(name), 0, 0, 0,
                                0, 0, off) + name)
        end = f.tell()
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), end - cd, cd, 0))


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    size = int(gib * (1 << 30))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "pytorch_model.bin")
        build(path, size)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            issues = analyze(mm, "pytorch_model.bin")
        dt = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"file {os.path.getsize(path) / (1 << 30):.2f} GiB  issues {len(issues)}  time {dt * 1000:.1f} ms  "
              f"peak RSS {peak / 1024:.1f} MiB (baseline {base / 1024:.1f} MiB, +{(peak - base) / 1024:.1f} MiB)")
        assert not issues, issues


if __name__ == "__main__":
    main()
