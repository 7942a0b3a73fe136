"""trust23: a worker near its memory cap cannot build the Python-AST prefilter (``MemoryError``). It tried again
on every Python file, seconds each (a 8,600-file tree under ``prlimit --as=50M``: over 5 minutes); now it parses
every file instead, once the build failed: slower per file, nothing missed, the build not retried."""

from __future__ import annotations

from typing import Any

import pytest
from test_ast16_admit import scan  # a whole .py file through the worker's detectors

from veritensor_fast.detectors import pyast
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token


def test_a_failed_prefilter_build_parses_every_file_and_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def no_memory(*_: Any) -> Any:
        calls.append(1)
        raise MemoryError

    monkeypatch.setattr(pyast, "build_prefilter", no_memory)
    ctx = WorkerContext(ScanOptions())
    for _ in range(3):
        tok = hf_token()
        src = f'T = "{tok[:5]}" + "{tok[5:]}"\n'  # only the AST view joins it
        got = [f for f in scan(ctx, src) if f.secret == tok and f.decoded == "python-ast"]
        assert got, src
    assert len(calls) == 1
