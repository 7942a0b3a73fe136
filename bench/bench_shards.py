"""Client CPU of a sharded sweep (``scan --scheduler ... --shard-output DIR``): planning and merging.

    python bench/bench_shards.py [SHARDS] [SHARD_FILES] [FINDINGS_PER_FILE]

The client's work per shard is one directory entry read by ``shards.plan`` plus one Dask task, and per
finding one JSON line read back by ``shards.read_shard``. This measures the first and the last (process CPU
time, synthetic inputs in a temporary directory; no cluster needed). Dask's own client cost per submitted
task comes on top.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time

from veritensor_fast.findings import Finding, fingerprint
from veritensor_fast.shards import plan, read_shard


def main() -> None:
    n_shards = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    n_files = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    with tempfile.TemporaryDirectory() as d:
        for i in range(n_shards):
            os.mkdir(os.path.join(d, f"s{i}"))
        t = time.process_time()
        shards = plan([d])
        cpu = time.process_time() - t
        print(f"plan: {len(shards)} shards, {cpu / len(shards) * 1e6:.1f} us of client CPU per shard")
    f = Finding("huggingface.user-token", "secret", "critical", "src/app/settings.py", 12, 9,
                "Hugging Face user access token", "hf_Ab…yz", fingerprint("huggingface.user-token", "x" * 37))
    line = json.dumps({"type": "finding", **dataclasses.asdict(f)}) + "\n"
    done = json.dumps({"type": "done", "secrets": False, "stats": {"files": 1}}) + "\n"
    with tempfile.TemporaryDirectory() as out:
        for i in range(n_files):
            with open(os.path.join(out, f"{i}.jsonl"), "w", encoding="utf-8") as fh:
                fh.write(line * per_file + done)
        t = time.process_time()
        n = 0
        for i in range(n_files):
            got = read_shard(os.path.join(out, f"{i}.jsonl"))
            assert got is not None
            n += len(got[0])
        cpu = time.process_time() - t
        print(f"merge: {n} findings in {n_files} shard files, {cpu / n * 1e6:.1f} us of client CPU per finding, "
              f"{cpu / n_files * 1e3:.2f} ms per shard file")


if __name__ == "__main__":
    main()
