"""veritensor_fast: find leaked ML credentials and poisoned model files, fast.

Library API (the CLI is a thin layer over it)::

    from veritensor_fast import scan_paths, ScanOptions
    result = scan_paths(["./repo"], ScanOptions(strict_secrets=True), jobs=4)
    for f in result.findings: print(f.path, f.line, f.rule_id, f.redacted)

Modules: ``rules`` (rule data), ``matcher`` (Hyperscan + regex confirm), ``findings`` (seam types),
``sources`` (what to scan), ``detectors`` (how to look at bytes), ``worker`` (per-process scan of a batch),
``engine`` (processes), ``report`` (output formats), ``cli`` (Typer front end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from veritensor_fast.findings import ScanResult
    from veritensor_fast.worker import ScanOptions


def scan_paths(paths: list[str], options: ScanOptions | None = None, jobs: int | None = None,
               excludes: tuple[str, ...] = (), client: Any = None, **source_kw: Any) -> ScanResult:
    """Scan files and directories; see ``veritensor_fast.engine.scan``. ``client``: a ``distributed.Client``
    (any: TLS, Gateway, Kubernetes; not closed here) to run the workers on a Dask cluster instead."""
    from veritensor_fast.engine import scan
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    make_executor = None
    if client is not None:
        import functools

        from veritensor_fast.executors_dask import DaskExecutor

        make_executor = functools.partial(DaskExecutor, client, roots=paths)
    return scan(FileSource(paths, excludes, **source_kw), options or ScanOptions(), jobs=jobs,
                make_executor=make_executor)


def __getattr__(name: str) -> Any:
    if name == "ScanOptions":
        from veritensor_fast.worker import ScanOptions

        return ScanOptions
    raise AttributeError(name)
