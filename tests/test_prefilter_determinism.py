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


def test_a_second_run_with_another_hash_seed_compiles_nothing_new(tmp_path: Path) -> None:
    """End to end: every compiled database (rules + base64 needles, the AST prefilter, ...) is found in the
    on-disk cache by a run with another hash seed, so the cache does not grow and nothing is recompiled."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.py").write_text("import os\nTOKEN = os.environ.get('HF_TOKEN', 'x')\n")
    (tree / "b.txt").write_text("nothing here\n")
    cache = tmp_path / "cache"
    listings = []
    for seed in ("11", "12"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT), "VERITENSOR_FAST_CACHE": str(cache)}
        p = subprocess.run([sys.executable, "-m", "veritensor_fast", "scan", str(tree), "--no-config", "-q",
                            "--jobs", "1"], capture_output=True, text=True, env=env, timeout=300, check=False)
        assert p.returncode == 0, p.stderr[-2000:]
        listings.append(sorted(str(q.relative_to(cache)) for q in cache.rglob("*") if q.is_file()))
    assert listings[0] and listings[1] == listings[0]
