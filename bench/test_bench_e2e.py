"""End-to-end CLI throughput per corpus (wall time incl. start-up), with a same-run plain-read baseline.

``extra_info`` of each benchmark holds: ``bytes``, ``files``, ``mb_per_s`` and ``files_per_s`` (from the mean),
``read_mb_per_s`` (reading the same files once in one process, measured in the same run), ``ratio_vs_read``
(= scan MB/s / read MB/s: the number regression checks use, because it cancels out machine speed and load),
``peak_rss_mb`` and recall on the ground truth (placements whose detectors exist) with unexpected findings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import Corpus, jobs_list, recall, rounds, run_scan, time_read


def _bench_cli(benchmark: Any, corpus: Corpus, target: Path, *args: str) -> None:
    read_s = time_read(corpus.files)
    rss: list[float] = []
    # one checked run first (warms the page cache, checks recall), then the timed rounds
    first = run_scan(target, *args, report=True)
    assert first.report is not None
    rec = recall(corpus.truth, first.report)

    def once() -> None:
        rss.append(run_scan(target, *args).peak_rss_mb)

    benchmark.pedantic(once, rounds=rounds(), iterations=1, warmup_rounds=0)
    mean = benchmark.stats.stats.mean
    mbps = corpus.nbytes / 1e6 / mean
    read_mbps = corpus.nbytes / 1e6 / read_s
    benchmark.extra_info.update({
        "bytes": corpus.nbytes, "files": len(corpus.files), "mb_per_s": round(mbps, 1),
        "files_per_s": round(len(corpus.files) / mean, 1), "read_mb_per_s": round(read_mbps, 1),
        "ratio_vs_read": round(mbps / read_mbps, 4), "peak_rss_mb": round(max(rss), 1), "args": " ".join(args),
        "cpus": len(os.sched_getaffinity(0)), **rec,
    })
    assert rec["recall"] == 1.0 and rec["unexpected"] == 0, rec


@pytest.mark.parametrize("jobs", jobs_list())
def test_monorepo_cli(benchmark: Any, monorepo: Corpus, jobs: int) -> None:
    benchmark.group = "e2e-monorepo"
    _bench_cli(benchmark, monorepo, monorepo.root, "--jobs", str(jobs))


@pytest.mark.parametrize("jobs", [1])
def test_notebook_cli(benchmark: Any, notebook: Corpus, jobs: int) -> None:
    benchmark.group = "e2e-notebook"
    _bench_cli(benchmark, notebook, notebook.root, "--jobs", str(jobs))


def test_model_zoo_cli(benchmark: Any, model_zoo: Corpus) -> None:
    benchmark.group = "e2e-model-zoo"
    read_s = time_read(model_zoo.files)

    def once() -> None:
        run_scan(model_zoo.root, "--jobs", "1")

    benchmark.pedantic(once, rounds=rounds(), iterations=1)
    mean = benchmark.stats.stats.mean
    mbps = model_zoo.nbytes / 1e6 / mean
    benchmark.extra_info.update({"bytes": model_zoo.nbytes, "files": len(model_zoo.files), "mb_per_s": round(mbps, 1),
                                 "read_mb_per_s": round(model_zoo.nbytes / 1e6 / read_s, 1),
                                 "ratio_vs_read": round(mbps / (model_zoo.nbytes / 1e6 / read_s), 4)})


def test_startup_small_file(benchmark: Any, tmp_path: Path) -> None:
    """``veritensor-fast scan small-file``: the start-up cost a pre-commit hook pays (target <= 0.3 s)."""
    benchmark.group = "startup"
    f = tmp_path / "small.py"
    f.write_text("import os\nprint(os.environ.get('HOME'))\n")
    benchmark.pedantic(lambda: run_scan(f, "--jobs", "1"), rounds=max(5, rounds()), iterations=1)
    benchmark.extra_info.update({"bytes": f.stat().st_size, "files": 1, "seconds_mean": benchmark.stats.stats.mean})
