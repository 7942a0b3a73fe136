"""Review of hist17's batch gate (``batch_gate.open_batch``): a batch of git objects is read up front, and that
read must stay bounded. Batches of listed objects hold a few MiB, but ``GitHistorySource._head_fingerprints``
hands ``run_batch`` every HEAD blob at a finding path that the sweep did not cover, of unknown size (-1), in one
batch: read whole up front, memory grew with their sum (the worker reads and scans one item at a time)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import git_run, hf_token, init_repo

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the gate needs the Hyperscan database")

N, SIZE = 24, 2 << 20  # 48 MiB of blobs in one batch


def test_a_batch_of_unknown_sizes_is_not_read_whole_up_front(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    line = b"value = 'abcdefghijklmnopqrstuvwxyz0123456789'\n"
    for i in range(N):
        body = f"# file {i}\n".encode() + line * (SIZE // len(line))
        if i in (0, 5, N - 1):  # findings before, inside and after what is read up front
            body += f"TOKEN = '{tok}'\n".encode()
        (repo / f"f{i}.py").write_bytes(body)
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "big")
    listed = git_run(repo, "ls-tree", "HEAD").stdout.split("\n")
    oids = {ln.split("\t")[1]: ln.split()[2] for ln in listed if ln.endswith(".py")}
    items = [Item("blob", oids[f"f{i}.py"], f"f{i}.py", -1, str(repo)) for i in range(N)]
    ctx = WorkerContext(ScanOptions())
    try:
        tracemalloc.start()
        try:
            res = ctx.run_batch(items)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        ctx.close()
    assert not res.errors
    assert res.items == N
    assert {f.path for f in res.findings} == {"f0.py", "f5.py", f"f{N - 1}.py"}
    assert peak < N * SIZE // 2, f"peak {peak >> 20} MiB for {N} blobs of {SIZE >> 20} MiB"
