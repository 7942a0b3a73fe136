"""History sweeps: scan the full history of one or more git repositories (``scan --history``).

Orchestration above the sources: for each repository a ``GitHistorySource`` lists the blobs (and commits),
``engine.scan`` scans them, and the results are merged. The executor of each repository is closed when it is
done (with it the ``git cat-file`` readers of local workers); long-lived remote workers bound and close theirs
(``BlobReader.MAX_OPEN`` / ``IDLE_CLOSE_S``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from veritensor_fast.engine import EngineError, ExecutorFactory, ScanResult, default_jobs, scan
from veritensor_fast.findings import Finding, ScanError
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.worker import BatchResult, ScanOptions

#: A repository with at least this many objects (``git count-objects``) gets its process pool at once, while
#: git lists: its listing would not fit the engine's small-scan shortcut anyway.
EARLY_POOL_OBJECTS = 4096


def _early_pool(src: GitHistorySource, options: ScanOptions, jobs: int | None, make_executor: Any) -> Any:
    """The local process pool, started now so that its start (worker state, fork) runs beside the listing's
    git commands instead of after them; None to let ``engine.scan`` decide (one job, a custom executor, a
    sweep that may list only a few blobs: incremental, ``--since``/``--range``, or a small repository)."""
    jobs = jobs or default_jobs()
    if jobs <= 1 or make_executor is not None or src.since or src.rev_range or not src.is_full_listing():
        return None
    if src.object_count() < EARLY_POOL_OBJECTS:
        return None
    from veritensor_fast.executors_local import PoolExecutor
    from veritensor_fast.rules import RuleError

    try:
        ruleset = options.ruleset()
        return PoolExecutor(options, compile_ruleset(ruleset), jobs, ruleset)
    except (RuleError, EngineError):  # engine.scan reports it
        return None


def _scan_one(src: GitHistorySource, options: ScanOptions, jobs: int | None, on_progress: Any,
              make_executor: Any, wrap_source: Any, label_repo: bool, findings: list[Finding],
              errors: list[ScanError], stats: dict[str, Any]) -> None:
    try:
        pool = _early_pool(src, options, jobs, make_executor)
        # a pool scans beside the listing: provenance's ``git log`` may use the core ``rev-list`` leaves idle
        src.early_log = pool is not None
        r = scan(wrap_source(src) if wrap_source else src, options, jobs=jobs, on_progress=on_progress,
                 make_executor=make_executor, executor=pool)
    finally:
        src.close()
    if label_repo:  # say which repository each finding came from
        label = os.path.normpath(src.repo)
        r.findings = [replace(f, repo=label) for f in r.findings]
    findings.extend(r.findings)
    errors.extend(r.errors)
    for k, v in {**r.stats, **src.stats}.items():
        if k in _SUMMED and k in stats:
            stats[k] += v
        else:
            stats[k] = v


_SUMMED = ("files", "bytes", "seconds", "findings", "errors", "blobs_total", "blobs_scanned",
           "blobs_from_datastore", "listing_seconds", "provenance_seconds", "blobs_listed", "provenance_lookups",
           "provenance_cached")


def scan_history(repos: Sequence[str], options: ScanOptions, jobs: int | None = None,
                 on_progress: Callable[[BatchResult], None] | None = None,
                 make_executor: ExecutorFactory | None = None,
                 wrap_source: Callable[[Any], Any] | None = None, **kw: Any) -> ScanResult:
    """Scan the history of each repository (one ``GitHistorySource`` each) and merge the results.
    ``make_executor`` is passed to ``engine.scan`` (a distributed executor, one per repository);
    ``wrap_source`` (the CLI's progress counter) wraps each repository's source."""
    findings: list[Finding] = []
    errors: list[ScanError] = []
    stats: dict[str, Any] = {}
    for repo in repos:
        src = GitHistorySource(repo, options, **kw)
        src.validate()
        # the listing runs in the background while the pool starts (``_early_pool``; its workers fork from the
        # state the pool builds once in this process: ``worker.prebuild``)
        src.start()
        _scan_one(src, options, jobs, on_progress, make_executor, wrap_source, len(repos) > 1, findings,
                  errors, stats)
    findings.sort(key=Finding.sort_key)
    errors.sort(key=lambda e: (e.path, e.kind, e.reason))
    if stats.get("seconds"):
        stats["mb_per_s"] = round(stats["bytes"] / 1e6 / stats["seconds"], 2)
    stats["repos"] = len(repos)
    return ScanResult(findings, errors, stats)
