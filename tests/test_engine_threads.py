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
