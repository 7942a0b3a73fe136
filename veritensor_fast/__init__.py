"""veritensor_fast: find leaked ML credentials and poisoned model files, fast.

Library API (the CLI is a thin layer over it)::

    from veritensor_fast import ScanOptions, render_report, scan_bytes, scan_paths, write_report

    result = scan_paths("./repo", ScanOptions(strict_secrets=True), jobs=4)   # a str, a Path, or a list
    for f in result.findings:
        print(f.path, f.line, f.rule_id, f.redacted)                         # never the full secret
    write_report(result, "report.sarif", "sarif")                            # or "json", "jsonl", "text"
    scan_bytes(b"token = 'hf_...'", name="config.py").findings               # bytes or str held in memory

Modules: ``rules`` (rule data), ``matcher`` (Hyperscan + regex confirm), ``findings`` (seam types),
``sources`` (what to scan), ``detectors`` (how to look at bytes), ``worker`` (per-process scan of a batch),
``engine`` (processes), ``report`` (output formats), ``cli`` (Typer front end).

The heavy modules are imported on first use, so ``import veritensor_fast`` stays cheap for the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

__version__ = "0.1.0"

if TYPE_CHECKING:
    from veritensor_fast.engine import EngineError
    from veritensor_fast.findings import Finding, ScanError, ScanResult
    from veritensor_fast.worker import ScanOptions

__all__ = [
    "EngineError",
    "Finding",
    "ScanError",
    "ScanOptions",
    "ScanResult",
    "StrPath",
    "__version__",
    "render_report",
    "scan_bytes",
    "scan_paths",
    "write_report",
]

#: A filesystem path: ``str`` or ``os.PathLike[str]`` (``pathlib.Path``).
StrPath: TypeAlias = str | os.PathLike[str]


def _path_list(paths: object) -> list[str]:
    """One path or a sequence of paths as a list of ``str``; anything else is a ``TypeError`` (a bare ``str``
    is one path, never a sequence of one-character paths)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    elif isinstance(paths, (bytes, bytearray)) or not isinstance(paths, Sequence):
        raise TypeError(f"paths must be a str, an os.PathLike or a sequence of them, not {type(paths).__name__}")
    out: list[str] = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"each path must be a str or an os.PathLike, not {type(p).__name__}")
        s = os.fspath(p)
        if not isinstance(s, str):
            raise TypeError("bytes paths are not supported; decode them with os.fsdecode()")
        out.append(s)
    if not out:
        raise ValueError("give at least one path to scan")
    return out


def scan_paths(paths: StrPath | Sequence[StrPath], options: ScanOptions | None = None, jobs: int | None = None,
               excludes: Sequence[str] = (), *, follow_symlinks: bool = False, max_file_size: int = 0,
               default_excludes: bool = True, client: Any = None) -> ScanResult:
    """Scan files and directories, like ``veritensor-fast scan PATH...``.

    ``paths`` is one path (``str`` or ``pathlib.Path``) or a sequence of them; ``jobs`` worker processes
    (``None``: all cores, ``1``: in this process); ``excludes`` globs as for ``--exclude``; ``default_excludes``
    skips virtualenvs, ``node_modules``, build output and caches. Returns findings, errors (inputs that were
    not, or not fully, scanned) and stats. Raises ``TypeError`` for anything that is not a path or paths,
    ``EngineError`` when the scan cannot run at all (e.g. a bad rules file). ``client``: a
    ``distributed.Client`` (any: TLS, Gateway, Kubernetes; not closed here) to run the workers on a Dask
    cluster instead of local processes."""
    from veritensor_fast.engine import scan
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    if options is not None and not isinstance(options, ScanOptions):
        raise TypeError(f"options must be a ScanOptions, not {type(options).__name__}")
    if isinstance(excludes, str):
        excludes = (excludes,)
    roots = _path_list(paths)
    source = FileSource(roots, tuple(excludes), follow_symlinks, max_file_size, default_excludes=default_excludes)
    make_executor = None
    if client is not None:
        import functools

        from veritensor_fast.executors_dask import DaskExecutor

        make_executor = functools.partial(DaskExecutor, client, roots=roots)
    return scan(source, options or ScanOptions(), jobs=jobs, make_executor=make_executor)


def scan_bytes(data: bytes | str, name: str = "stdin", options: ScanOptions | None = None) -> ScanResult:
    """Scan a buffer held in memory (never written to disk), like ``veritensor-fast scan - --stdin-name NAME``.

    ``name`` is the path reported; its extension picks the detectors (``.ipynb``, ``.py``, ``.yaml``). A ``str``
    is encoded as UTF-8."""
    from veritensor_fast.engine import scan
    from veritensor_fast.sources.memory import MemorySource
    from veritensor_fast.worker import ScanOptions

    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
    with MemorySource(data, name) as source:
        return scan(source, options or ScanOptions(), jobs=1)


def render_report(result: ScanResult, fmt: str = "json", *, show_secrets: bool = False) -> str:
    """The report for ``result`` in ``fmt`` (``text``, ``json``, ``jsonl`` or ``sarif``), as the CLI writes it.
    Full secrets are included only with ``show_secrets=True``."""
    from veritensor_fast.report import get_reporter

    return get_reporter(fmt)(result, show_secrets=show_secrets, color=False)


def write_report(result: ScanResult, path: StrPath, fmt: str = "json", *, show_secrets: bool = False) -> None:
    """Write ``render_report(result, fmt)`` to ``path`` (UTF-8), atomically: a reader never sees half a file."""
    from veritensor_fast.safeio import write_text_replacing

    write_text_replacing(path, render_report(result, fmt, show_secrets=show_secrets))


_LAZY = {
    "ScanOptions": "veritensor_fast.worker",
    "ScanResult": "veritensor_fast.findings",
    "EngineError": "veritensor_fast.engine",
    "Finding": "veritensor_fast.findings",
    "ScanError": "veritensor_fast.findings",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'veritensor_fast' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
