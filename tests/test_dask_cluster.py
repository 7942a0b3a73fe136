"""``scan --scheduler`` on a real Dask cluster: a ``dask scheduler`` and ``dask worker`` processes on loopback.

What the in-process cluster of ``test_distributed.py`` cannot show: worker processes that die, restart or
differ from the client, a scheduler that goes away, threads inside one worker process. Each test starts its
own processes (``dask_procs.Cluster``: bounded lifetime, killed at the end).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from conftest import git_run, hf_token, init_repo, run_cli  # noqa: E402
from dask_procs import Cluster  # noqa: E402


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    d = tmp_path / "cluster"
    d.mkdir()
    c = Cluster(d)
    c.start_scheduler()
    try:
        yield c
    finally:
        c.stop()


def token_tree(root: Path, files: int = 700, every: int = 100) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    toks = []
    for i in range(files):
        if i % every == 0:
            toks.append(hf_token())
            (root / f"f{i:03}.py").write_text(f"T = '{toks[-1]}'\n")
        else:
            (root / f"f{i:03}.txt").write_text("nothing here\n")
    return toks


def scan(*args: str | os.PathLike[str], timeout: float = 180) -> tuple[int, dict[str, Any], str]:
    p = run_cli("scan", "--format", "json", "--no-progress", "--show-secrets", *args, timeout=timeout)
    return p.returncode, (json.loads(p.stdout) if p.stdout else {}), p.stderr


def secrets(rep: dict[str, Any]) -> list[str]:
    return sorted(f["secret"] for f in rep["findings"])


def test_multi_threaded_workers_on_real_python_equal_jobs_1(cluster: Cluster, tmp_path: Path) -> None:
    """Two workers with four threads each, real-size Python files (the standard library's, each with a token
    planted): the same findings and no errors, as with --jobs 1."""
    cluster.start_worker("w1", nthreads=4)
    cluster.start_worker("w2", nthreads=4)
    root = tmp_path / "src"
    root.mkdir()
    lib = sorted(Path(threading.__file__).parent.glob("*.py"))
    toks = []
    for i in range(600):  # ~15 MB: several batches, run by several threads at once
        toks.append(hf_token())
        src = lib[i % len(lib)].read_text(encoding="utf-8")
        (root / f"m{i:03}.py").write_text(src + f"\nHF_TOKEN = '{toks[-1]}'\n")
    cluster.wait_workers(2)
    local = scan(root, "--jobs", "1")
    remote = scan(root, "--scheduler", cluster.address)
    assert remote[1]["errors"] == [] and remote[0] == 1, remote[2]
    assert remote[1]["findings"] == local[1]["findings"]
    assert set(toks) <= set(secrets(remote[1]))
    assert remote[1]["stats"]["jobs"] == 8
