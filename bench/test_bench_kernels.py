"""Hot kernels in isolation, each with ``extra_info`` = bytes (or items) and throughput.

- ``hyperscan``: the raw Hyperscan pass of every rule over 64 MB of monorepo content (one buffer);
- ``matcher``: ``SecretMatcher.find`` (Hyperscan + confirmation + entropy) over the same buffer;
- ``entropy``: ``shannon_many`` over 4,096 candidate tokens;
- ``file-read``: ``FileReader.open`` over every monorepo file (the per-file read cost);
- ``run-batch``: ``WorkerContext.run_batch`` over the monorepo's small files in engine-sized batches (all
  detectors, per-file overhead included);
- ``notebook-decode``: every detector (notebook parsing) on a 32 MB notebook buffer;
- ``pickle-walk``: the static pickle walker over a 2 MB plain-dict pickle;
- ``blob-read``: ``BlobReader`` over the blobs of a small git repository.
Kernels whose modules do not exist are skipped. ``ratio_vs_read`` relates each throughput to the plain read of
the same run, for noisy machines.
"""

from __future__ import annotations

import importlib.util
import pickle
import random
import subprocess
from typing import Any

import pytest

from veritensor_fast.findings import Item

from conftest import Corpus, time_read

BUF_BYTES = 64 << 20


@pytest.fixture(scope="module")
def content(monorepo: Corpus) -> bytes:
    parts, n = [], 0
    for p in monorepo.files:
        b = p.read_bytes()
        parts.append(b)
        n += len(b)
        if n >= BUF_BYTES:
            break
    return b"\n".join(parts)[:BUF_BYTES]


@pytest.fixture(scope="module")
def read_mbps(monorepo: Corpus) -> float:
    return monorepo.nbytes / 1e6 / time_read(monorepo.files)


@pytest.fixture(scope="module")
def ctx() -> Any:
    from veritensor_fast.worker import ScanOptions, WorkerContext

    return WorkerContext(ScanOptions())


def _info(benchmark: Any, nbytes: int, read_mbps: float | None = None, **extra: Any) -> None:
    mbps = nbytes / 1e6 / benchmark.stats.stats.mean
    benchmark.extra_info.update({"bytes": nbytes, "mb_per_s": round(mbps, 1), **extra})
    if read_mbps:
        benchmark.extra_info["ratio_vs_read"] = round(mbps / read_mbps, 4)


def test_hyperscan(benchmark: Any, ctx: Any, content: bytes, read_mbps: float) -> None:
    benchmark.group = "kernel"
    scanner = ctx.matcher._scanner
    benchmark.pedantic(scanner.scan, args=(content,), rounds=5, iterations=1, warmup_rounds=1)
    _info(benchmark, len(content), read_mbps)


def test_matcher(benchmark: Any, ctx: Any, content: bytes, read_mbps: float) -> None:
    benchmark.group = "kernel"
    benchmark.pedantic(ctx.matcher.find, args=(content,), rounds=5, iterations=1, warmup_rounds=1)
    _info(benchmark, len(content), read_mbps)


def test_entropy(benchmark: Any) -> None:
    from veritensor_fast.kernels import entropy

    benchmark.group = "kernel"
    rng = random.Random(1)
    toks = [bytes(rng.choices(range(48, 123), k=rng.randint(20, 120))) for _ in range(4096)]
    benchmark.pedantic(entropy.shannon_many, args=(toks,), rounds=10, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({"items": len(toks),
                                 "tokens_per_s": round(len(toks) / benchmark.stats.stats.mean)})


def test_file_read(benchmark: Any, monorepo: Corpus, read_mbps: float) -> None:
    from veritensor_fast.sources.fs import FileReader

    benchmark.group = "kernel"
    items = [Item("file", str(p), p.name, p.stat().st_size) for p in monorepo.files]
    r = FileReader()

    def run() -> None:
        for it in items:
            _buf, close = r.open(it)
            close()

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _info(benchmark, monorepo.nbytes, read_mbps, files=len(items),
          files_per_s=round(len(items) / benchmark.stats.stats.mean))


def test_run_batch_small_files(benchmark: Any, ctx: Any, monorepo: Corpus, read_mbps: float) -> None:
    from veritensor_fast.engine import make_batches

    benchmark.group = "kernel"
    small = [p for p in monorepo.files if p.stat().st_size < 64 << 10][:4000]
    items = [Item("file", str(p), p.relative_to(monorepo.root).as_posix(), p.stat().st_size) for p in small]
    batches = list(make_batches(items, []))

    def run() -> None:
        for b in batches:
            ctx.run_batch(b)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    nbytes = sum(it.size for it in items)
    _info(benchmark, nbytes, read_mbps, files=len(items),
          files_per_s=round(len(items) / benchmark.stats.stats.mean),
          us_per_file=round(benchmark.stats.stats.mean / len(items) * 1e6, 1))


@pytest.mark.skipif(importlib.util.find_spec("veritensor_fast.detectors.notebook") is None,
                    reason="notebook detector not present")
def test_notebook_decode(benchmark: Any, ctx: Any, tmp_path_factory: pytest.TempPathFactory,
                         read_mbps: float) -> None:
    from corpora import gen_notebook
    from veritensor_fast.worker import ItemScan

    benchmark.group = "kernel"
    root = tmp_path_factory.mktemp("nb")
    gen_notebook.generate(root, size_mb=32)
    buf = (root / "giant.ipynb").read_bytes()
    item = Item("file", str(root / "giant.ipynb"), "giant.ipynb", len(buf))

    def run() -> None:
        s = ItemScan(ctx, item)
        ctx.scan_buffer(buf, item, s)
        assert s.text_done

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _info(benchmark, len(buf), read_mbps)


@pytest.mark.skipif(importlib.util.find_spec("veritensor_fast.models.pickle_scan") is None,
                    reason="pickle walker not present")
def test_pickle_walk(benchmark: Any) -> None:
    from veritensor_fast.models.pickle_scan import PickleWalker

    benchmark.group = "kernel"
    rng = random.Random(2)
    data = pickle.dumps({f"layer{i}.weight": [rng.random() for _ in range(20)] for i in range(10000)}, protocol=4)
    w = PickleWalker()
    benchmark.pedantic(w.analyze, args=(data,), rounds=3, iterations=1, warmup_rounds=1)
    _info(benchmark, len(data))


@pytest.mark.skipif(importlib.util.find_spec("veritensor_fast.sources.git") is None, reason="git source not present")
def test_blob_read(benchmark: Any, monorepo: Corpus, tmp_path_factory: pytest.TempPathFactory) -> None:
    from veritensor_fast.sources.git import BlobReader

    benchmark.group = "kernel"
    repo = tmp_path_factory.mktemp("repo")
    src = [p for p in monorepo.files if p.suffix in (".py", ".yaml", ".md")][:2000]
    for i, p in enumerate(src):
        dst = repo / f"f{i // 100}" / p.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(p.read_bytes())
    git = ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    tree = subprocess.run([*git, "ls-tree", "-r", "-l", "HEAD"], check=True, capture_output=True, text=True).stdout
    items = []
    for line in tree.splitlines():
        meta, path = line.split("\t", 1)
        _mode, _typ, oid, size = meta.split()
        items.append(Item("blob", oid, path, int(size), origin=str(repo)))
    nbytes = sum(it.size for it in items)

    def run() -> None:
        r = BlobReader()
        r.prefetch(items)
        for it in items:
            _b, close = r.open(it)
            close()
        r.close()

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _info(benchmark, nbytes, None, files=len(items))
