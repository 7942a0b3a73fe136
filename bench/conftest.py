"""Shared fixtures for the pytest-benchmark suites in ``bench/``.

Benchmarks run only when asked: ``pytest bench/ --benchmark-enable`` (the project's default ``addopts`` carry
``--benchmark-disable`` and ``testpaths = ["tests"]``, so ``python3 -m pytest -q`` never runs them). Without
``--benchmark-enable`` every test here is skipped.

Corpora are generated once into ``corpora/out/bench-*`` (git-ignored) and reused while their parameters match.
Sizes come from the environment:

- ``VF_BENCH_MONOREPO_MB`` (default 500) and ``VF_BENCH_FILES`` (default 20000);
- ``VF_BENCH_NOTEBOOK_MB`` (default 200);
- ``VF_BENCH_MODEL_PAD_MB`` (default 200: one large benign torch-style checkpoint in the model zoo);
- ``VF_BENCH_JOBS`` (default ``1,2``): the ``--jobs`` values of the end-to-end runs;
- ``VF_BENCH_ROUNDS`` (default 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "corpora" / "out"
VF = [sys.executable, "-m", "veritensor_fast.cli"]


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def rounds() -> int:
    return int(os.environ.get("VF_BENCH_ROUNDS", "3"))


def jobs_list() -> list[int]:
    return [int(x) for x in os.environ.get("VF_BENCH_JOBS", "1,2").split(",") if x.strip()]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("benchmark_enable", False):
        return
    skip = pytest.mark.skip(reason="benchmarks run only with --benchmark-enable")
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@dataclass
class Corpus:
    root: Path
    truth: dict[str, Any]
    files: list[Path]
    nbytes: int

    @property
    def scan_target(self) -> Path:
        return self.root


def _load_or_generate(name: str, params: dict[str, Any], gen: Callable[[Path], Any]) -> Corpus:
    root = OUT / name
    gt = root / "ground_truth.json"
    truth = json.loads(gt.read_text()) if gt.exists() else None
    if truth is None or truth.get("params") != params:
        gen(root)
        truth = json.loads(gt.read_text())
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "ground_truth.json")
    return Corpus(root, truth, files, sum(p.stat().st_size for p in files))


@pytest.fixture(scope="session")
def monorepo() -> Corpus:
    from corpora import gen_monorepo

    mb, n = env_float("VF_BENCH_MONOREPO_MB", 500.0), int(env_float("VF_BENCH_FILES", 20000))
    return _load_or_generate("bench-monorepo", {"size_mb": mb, "files": n},
                             lambda r: gen_monorepo.generate(r, size_mb=mb, files=n))


@pytest.fixture(scope="session")
def notebook() -> Corpus:
    from corpora import gen_notebook

    mb = env_float("VF_BENCH_NOTEBOOK_MB", 200.0)
    return _load_or_generate("bench-notebook", {"size_mb": mb, "minify": False},
                             lambda r: gen_notebook.generate(r, size_mb=mb))


@pytest.fixture(scope="session")
def model_zoo() -> Corpus:
    from corpora import gen_model_zoo

    mb = env_float("VF_BENCH_MODEL_PAD_MB", 200.0)
    return _load_or_generate("bench-model-zoo", {"pad_mb": mb}, lambda r: gen_model_zoo.generate(r, pad_mb=mb))


def read_all(files: list[Path]) -> int:
    """The baseline: read every file once in one process (what ``cat`` would cost). Returns bytes read."""
    n = 0
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                n += len(b)
        finally:
            os.close(fd)
    return n


def time_read(files: list[Path], repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds for :func:`read_all` (page cache warm)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        read_all(files)
        best = min(best, time.perf_counter() - t)
    return best


@dataclass
class RunResult:
    seconds: float
    peak_rss_mb: float
    returncode: int
    report: dict[str, Any] | None


def run_scan(target: Path, *args: str, report: bool = False) -> RunResult:
    """Run the real CLI once; wall time and the peak RSS of the largest process it waited for."""
    out = target.parent / f".bench-report-{os.getpid()}.json" if report else Path(os.devnull)
    cmd = [*VF, "scan", str(target), "--format", "json", "--no-progress", "-o", str(out),
           "--exclude", "ground_truth.json", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rc = proc.returncode
    if rc not in (0, 1, 3):
        raise RuntimeError(f"scan failed ({rc}): {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    data = None
    if report:
        data = json.loads(out.read_text())
        out.unlink()
    return RunResult(secs, ru.ru_maxrss / 1024, rc, data)


def recall(truth: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Recall over the placements whose detectors exist, and the number of unexpected findings."""
    import importlib.util

    found = {(f["path"], f["fingerprint"]) for f in report["findings"]}
    planted = [s for s in truth["secrets"] if all(importlib.util.find_spec(m) for m in s["requires"])]
    hit = sum((s["path"], s["fingerprint"]) in found for s in planted)
    known = {(s["path"], s["fingerprint"]) for s in truth["secrets"]}
    extra = sum(1 for f in report["findings"] if f["kind"] == "secret" and (f["path"], f["fingerprint"]) not in known)
    return {"planted": len(planted), "found": hit, "recall": round(hit / max(1, len(planted)), 4),
            "unexpected": extra}

