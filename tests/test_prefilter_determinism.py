"""The Python-AST prefilter's Hyperscan database is cached on disk, keyed by its patterns: the plan must not
depend on the interpreter's hash seed, or every run (and every worker) recompiles it and the cache grows a
file per run. Found with the parent/worker CPU split of issue 16 (0.6-1.4 CPU-s per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODE = """
import hashlib
from veritensor_fast.rules import load_rules
from veritensor_fast.detectors.pyast_prefilter import prefilter_plan
rs = load_rules()
p = prefilter_plan(list(getattr(rs, "rules", rs)))
print(hashlib.sha256(repr((p.patterns, sorted(p.alone), [(sorted(a), sorted(b)) for a, b in p.pairs],
                           p.shapes)).encode()).hexdigest())
"""


def test_prefilter_plan_does_not_follow_the_hash_seed() -> None:
    outs = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        p = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120,
                           check=True)
        outs.add(p.stdout.strip())
    assert len(outs) == 1, outs
