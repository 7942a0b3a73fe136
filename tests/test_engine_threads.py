"""The worker code is safe to run in several threads of one process (as a Dask worker runs it)."""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path

from veritensor_fast.detectors.pyast import parse_python


def real_python_sources(n: int = 40) -> list[str]:
    """Real-size Python: the standard library's own modules."""
    lib = Path(threading.__file__).parent
    return [p.read_text(encoding="utf-8") for p in sorted(lib.glob("*.py"))[:n]]


def test_parse_python_is_thread_safe_under_gc_callbacks() -> None:
    """Dask installs gc callbacks (Python code run inside a collection): the GIL can switch in the middle of
    CPython's AST conversion. Four threads parsing real modules must all succeed."""
    srcs = real_python_sources()
    failures: list[str] = []

    def work() -> None:
        for _ in range(2):
            for s in srcs:
                try:
                    if parse_python(s) is None:
                        failures.append("did not parse")
                except Exception as exc:  # SystemError: AST constructor recursion depth mismatch
                    failures.append(repr(exc))

    def cb(phase: str, info: dict[str, int]) -> None:
        time.sleep(0)  # give up the GIL inside the collection, as a profiler or Dask's gc monitor may

    gc.callbacks.append(cb)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gc.callbacks.remove(cb)
        sys.setswitchinterval(old)
    assert failures == []


def test_worker_contexts_in_several_threads_scan_without_errors(tmp_path: Path) -> None:
    """As a Dask worker runs them: one ``WorkerContext`` per thread, four threads at once, real-size Python
    files with tokens (so every detector and the inline-ignore pass run). Same findings as one thread, no
    error (shared Hyperscan scratch: ScratchInUseError; shared AST state: SystemError)."""
    from veritensor_fast.findings import Item
    from veritensor_fast.worker import ScanOptions, WorkerContext

    from conftest import hf_token

    srcs = real_python_sources(30)
    items = []
    for i in range(120):
        p = tmp_path / f"m{i:03}.py"
        notes = "# see the allowlist\n" * 300  # words the inline-ignore pass looks for (not a marker)
        p.write_text(srcs[i % len(srcs)] + notes + f"\nHF_TOKEN = '{hf_token()}'\n")
        items.append(Item("file", str(p), p.name, p.stat().st_size))
    expected = WorkerContext(ScanOptions()).run_batch(items)
    assert not expected.errors and len(expected.findings) == 120
    results: list[object] = []

    def work(batch: list[Item]) -> None:
        ctx = WorkerContext(ScanOptions())
        for _ in range(3):
            results.append(ctx.run_batch(batch))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work, args=(items[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    errors = [e for r in results for e in r.errors]  # type: ignore[attr-defined]
    assert errors == []
    found = sorted((f.path, f.fingerprint) for r in results for f in r.findings)  # type: ignore[attr-defined]
    assert found == sorted((f.path, f.fingerprint) for f in expected.findings for _ in range(3))
