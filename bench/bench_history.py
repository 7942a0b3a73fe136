"""History-mode benchmarks (pytest-benchmark) on a generated repository (``corpora/gen_git_repo.py``).

    pytest bench/bench_history.py --benchmark-enable [-k scan]
    python bench/bench_history.py ceiling REPO [READERS]   # read-only ceiling, one JSON line
    python bench/bench_history.py scan REPO [JOBS] [DEPTH] # one history sweep, one JSON line (DEPTH: early_depth, or all)
    VF_BENCH_TWO_WALKS=1 python bench/bench_history.py scan REPO 2  # the same with two walks (rev-list, then log)
    python bench/bench_history.py parts REPO               # T_list and T_read (1, 2, 4 readers) timed apart
    python bench/bench_history.py stages REPO              # CPU of the listing and of the workers' batches
    python bench/bench_history.py listing REPO [EARLY]     # the parent's listing alone, git done first (EARLY=1:
                                                           # the overlapped listing a pool beside the walk gets)
    python bench/bench_history.py timeline REPO [JOBS] [DEPTH] # CPU per 100 ms of the sweep's processes, by kind
    python bench/bench_history.py split REPO [ROUNDS]      # median CPU by process kind: read ceiling vs sweep
    python bench/bench_history.py scaling REPO [1,2,4,8,16] [0,1,all] [ROUNDS]  # sweep vs k-reader ceiling per k

The two command-line modes are what ``bench/README.md`` ("Git history") pairs: run them interleaved, baseline
(``PYTHONPATH=<other checkout>``) and candidate in the same minute, and compare ``wall_s`` and ``cpu_s``.

The repository is generated once into ``corpora/out/bench-git-<params>`` (git-ignored), or taken from
``VF_BENCH_GIT_REPO`` (a repository made by ``corpora/gen_git_repo.py``, with ``<repo>.truth.json`` beside it).
Sizes: ``VF_BENCH_GIT_COMMITS`` (default 20000), ``VF_BENCH_GIT_CHANGES`` (files edited per commit, 10),
``VF_BENCH_GIT_FILES`` (5000), ``VF_BENCH_GIT_AVG_SIZE`` (6000 bytes): about 20.8k commits, 201k blob
versions and 1.5 GB of blob content with the defaults. ``VF_BENCH_JOBS`` (default ``1,2``) and
``VF_BENCH_ROUNDS`` (default 3, history runs use at most 2) as in ``bench/conftest.py``.

What is measured (``extra_info`` holds ``blobs``, ``bytes``, ``blobs_per_s``, ``mb_per_s``):
- ``read-*``: blob content delivered to Python only (no scanning): one ``git cat-file --batch`` fed in pack
  order (the design), in ``rev-list --objects`` order, and the whole object list in hash order;
- ``scan``: the full history scan (listing, reading in the workers, detectors, provenance), no datastore, with
  the listing streamed from ``rev-list`` (default) or done first and then read in pack order;
- ``parent-reader``: the alternative design: one ``cat-file`` in the parent shipping blob bytes to the pool;
- ``incremental``: a second sweep with a warm datastore (nothing to rescan; stored findings + provenance).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ``PYTHONPATH=<checkout>`` picks the code measured (the pairing below); without it, this script's checkout.
# (Inserting this checkout first whatever PYTHONPATH said made every "baseline" run measure this checkout.)
if not os.environ.get("PYTHONPATH") and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from veritensor_fast.history import scan_history  # noqa: E402
from veritensor_fast.sources import git_list  # noqa: E402
from veritensor_fast.worker import ScanOptions  # noqa: E402


def _rounds() -> int:
    return max(1, min(2, int(os.environ.get("VF_BENCH_ROUNDS", "3"))))


def _jobs() -> list[int]:
    return [int(x) for x in os.environ.get("VF_BENCH_JOBS", "1,2").split(",") if x.strip()]


@pytest.fixture(scope="session")
def git_repo() -> tuple[Path, dict[str, Any]]:
    given = os.environ.get("VF_BENCH_GIT_REPO")
    if given:
        repo = Path(given)
    else:
        from corpora.gen_git_repo import generate

        p = {k: int(os.environ.get(f"VF_BENCH_GIT_{k.upper()}", d))
             for k, d in (("commits", 20000), ("changes", 10), ("files", 5000), ("avg_size", 6000))}
        repo = ROOT / "corpora" / "out" / "bench-git-{commits}-{changes}-{files}-{avg_size}".format(**p)
        if not (repo.with_name(repo.name + ".truth.json")).exists():
            repo.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["rm", "-rf", str(repo)], check=True)
            generate(repo, commits=p["commits"], files=p["files"], avg_size=p["avg_size"], changes=p["changes"],
                     secrets=200, decoys=100)
    truth = json.loads(repo.with_name(repo.name + ".truth.json").read_text())
    return repo, truth


def _reachable_pack_order(repo: Path) -> list[str]:
    return [oid for oid, _ in reachable_blobs(str(repo))]


def reachable_blobs(repo: str) -> list[tuple[str, int]]:
    """(oid, size) of every blob reachable from every ref, in pack order (the sweep's listing)."""
    reach, _ = git_list.reachable(repo, ["--all"], None)
    return [(oid, size) for oid, t, size in git_list.pack_order(repo) if t == "blob" and oid in reach]


def read_range(repo: str, blobs: list[tuple[str, int]]) -> tuple[int, int]:
    """Read ``blobs`` as a worker does (``BlobReader``: hardened ``cat-file``, batches of 256 prefetched, each
    blob hashed against its id) and drop the bytes. Returns (blobs, bytes)."""
    from veritensor_fast.findings import Item
    from veritensor_fast.sources.git_read import BlobReader

    reader = BlobReader()
    n = total = 0
    try:
        for i in range(0, len(blobs), 256):
            items = [Item("blob", oid, oid, size, repo) for oid, size in blobs[i:i + 256]]
            reader.prefetch(items)
            for it in items:
                data, _ = reader.open(it)
                n += 1
                total += len(data)
    finally:
        reader.close()
    return n, total


def _read_range_star(args: tuple[str, list[tuple[str, int]]]) -> tuple[int, int]:
    return read_range(*args)


def ceiling(repo: str, readers: int = 1) -> dict[str, Any]:
    """The read-only ceiling of a history sweep: the listing, then every reachable blob read in pack order and
    hashed, by ``readers`` processes over contiguous pack ranges (1 = one ``cat-file`` in pack order)."""
    import multiprocessing as mp
    import resource

    t0 = time.perf_counter()
    blobs = reachable_blobs(repo)
    t_list = time.perf_counter() - t0
    if readers <= 1:
        n, total = read_range(repo, blobs)
    else:
        k = -(-len(blobs) // readers)
        with mp.get_context("fork").Pool(readers) as pool:
            parts = pool.map(_read_range_star, [(repo, blobs[i:i + k]) for i in range(0, len(blobs), k)])
        n, total = sum(p[0] for p in parts), sum(p[1] for p in parts)
    wall = time.perf_counter() - t0
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"mode": "ceiling", "readers": readers, "blobs": n, "bytes": total, "listing_s": round(t_list, 3),
            "wall_s": round(wall, 3), "cpu_s": round(me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime, 2),
            "mb_per_s": round(total / 1e6 / wall, 1), "load": round(os.getloadavg()[0], 2)}


def parts(repo: str, readers: tuple[int, ...] = (1, 2, 4)) -> dict[str, Any]:
    """The ceiling's two parts, each timed alone (the multi-core estimate ``T_list + T_read / k``):
    ``T_list``, the blob listing (``rev-list --objects``, single-threaded in git, plus the pack-order listing),
    and ``T_read``, every listed blob read and hashed by k readers over contiguous pack ranges."""
    import multiprocessing as mp
    import resource

    def cpu() -> float:
        me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    blobs = reachable_blobs(repo)
    out: dict[str, Any] = {"mode": "parts", "blobs": len(blobs), "list_s": round(time.perf_counter() - t0, 3),
                           "list_cpu_s": round(cpu() - c0, 2)}
    for k in readers:
        c0, t0 = cpu(), time.perf_counter()
        size = -(-len(blobs) // k)
        with mp.get_context("fork").Pool(k) as pool:
            pool.map(_read_range_star, [(repo, blobs[i:i + size]) for i in range(0, len(blobs), size)])
        out[f"read{k}_s"] = round(time.perf_counter() - t0, 3)
        out[f"read{k}_cpu_s"] = round(cpu() - c0, 2)
    out["load"] = round(os.getloadavg()[0], 2)
    return out


def sweep(repo: str, jobs: int, datastore: str | None = None, **kw: Any) -> dict[str, Any]:
    """One ``scan --history`` of ``repo`` (no datastore unless given), as the CLI runs it; ``kw`` go to the
    source (``early_depth=N``: ``scan REPO JOBS N``; ``all``: every blob)."""
    import resource

    if os.environ.get("VF_BENCH_TWO_WALKS"):  # A/B in one checkout: ``rev-list --objects``, then ``git log``
        from veritensor_fast.sources.git import GitHistorySource

        GitHistorySource.one_walk = False
    t0 = time.perf_counter()
    r = scan_history([repo], ScanOptions(), jobs=jobs, **kw, **({"datastore": datastore} if datastore
                                                                else {"use_datastore": False}))
    wall = time.perf_counter() - t0
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"mode": "scan", "jobs": jobs, "blobs": r.stats.get("blobs_scanned"), "bytes": r.stats.get("bytes"),
            "findings": len(r.findings), "errors": len(r.errors), "early": r.stats.get("blobs_listed_early"),
            "wall_s": round(wall, 3),
            "cpu_s": round(me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime, 2),
            "provenance_s": r.stats.get("provenance_seconds"), "parent_rss_mb": me.ru_maxrss // 1024,
            "child_rss_mb": ch.ru_maxrss // 1024, "load": round(os.getloadavg()[0], 2)}


def stages(repo: str, rounds: int = 2) -> dict[str, Any]:
    """CPU seconds (``time.process_time``, this process only) of the parent's listing (``items()`` after git has
    listed, batched as the engine does) and of every batch run through the worker code in this process (best of
    ``rounds``; the batch's ``git cat-file`` runs in its own process and is not counted). ``quiet``: objects that
    skipped the detectors (``batch_gate``; absent in a checkout without it)."""
    from veritensor_fast.engine import make_batches
    from veritensor_fast.sources.git import GitHistorySource
    from veritensor_fast.worker import WorkerContext

    src = GitHistorySource(repo, ScanOptions(), use_datastore=False)
    src.start()
    for sp in list(src._spools.values()):
        if sp is not None:
            sp.wait()
    c0 = time.process_time()
    batches = list(make_batches(src.items(), []))
    listing = time.process_time() - c0
    src.close()
    quiet = [0]
    try:
        from veritensor_fast import batch_gate

        real = batch_gate.Gate.quiet

        def counting(self: Any, batch: Any, got: Any) -> set[int]:
            q: set[int] = real(self, batch, got)
            quiet[0] += len(q)
            return q

        batch_gate.Gate.quiet = counting  # type: ignore[method-assign]
    except ImportError:
        quiet = []
    ctx = WorkerContext(ScanOptions())
    best, found = float("inf"), 0
    for _ in range(rounds):
        if quiet:
            quiet[0] = 0
        c0 = time.process_time()
        found = sum(len(ctx.run_batch(b).findings) for b in batches)
        best = min(best, time.process_time() - c0)
    ctx.close()
    items = sum(len(b) for b in batches)
    return {"mode": "stages", "items": items, "listing_cpu_s": round(listing, 3), "batches_cpu_s": round(best, 3),
            "us_per_item": round(best / items * 1e6, 1), "quiet": quiet[0] if quiet else None,
            "findings_before_grouping": found, "load": round(os.getloadavg()[0], 2)}


def listing(repo: str, early: bool = True) -> dict[str, Any]:
    """CPU seconds (``time.process_time``: this process only) of the parent's listing of a full sweep, batched as
    the engine does, once every git command it started has finished: what the parent itself spends per blob
    (parsing the log and the pack-order listing, building items). ``early``: the overlapped listing a pool beside
    the walk gets (``GitHistorySource.early_log``); else the sequential one (one job). Under ``valgrind
    --tool=cachegrind`` its instruction count is exact (start-up included: run with ``VF_BENCH_LISTING_SKIP=1``
    for that part alone)."""
    from veritensor_fast.engine import make_batches
    from veritensor_fast.sources.git import GitHistorySource

    src = GitHistorySource(repo, ScanOptions(), use_datastore=False)
    src.start()
    src.early_log = early
    for sp in [*src._spools.values(), src._log]:
        if sp is not None:
            sp.wait()
    if os.environ.get("VF_BENCH_LISTING_SKIP"):
        src.close()
        return {"mode": "listing", "skipped": True}
    c0 = time.process_time()
    n = sum(len(b) for b in make_batches(src.items(), []))
    cpu = time.process_time() - c0
    src.close()
    return {"mode": "listing", "early": early, "items": n, "cpu_s": round(cpu, 3), "load": round(os.getloadavg()[0], 2)}


def _read_all(repo: Path, oids: list[str]) -> tuple[int, int]:
    """Feed ``oids`` to one ``git cat-file --batch`` from a writer thread; read every blob into Python."""
    proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=1 << 16)
    assert proc.stdin is not None and proc.stdout is not None
    stdin = proc.stdin

    def feed() -> None:
        for i in range(0, len(oids), 4096):
            stdin.write(("\n".join(oids[i:i + 4096]) + "\n").encode())
        stdin.close()

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    n = total = 0
    out = proc.stdout
    for _ in oids:
        header = out.readline().split()
        size = int(header[2])
        total += len(out.read(size + 1)) - 1
        n += 1
    t.join()
    proc.wait()
    return n, total


def _record(benchmark: Any, blobs: int, nbytes: int, **extra: Any) -> None:
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update({"blobs": blobs, "bytes": nbytes, "blobs_per_s": round(blobs / mean),
                                 "mb_per_s": round(nbytes / 1e6 / mean, 1), **extra})


@pytest.mark.parametrize("order", ["pack", "rev-list", "hash"])
def test_read(benchmark: Any, git_repo: tuple[Path, dict[str, Any]], order: str) -> None:
    benchmark.group = "history-read"
    repo, _ = git_repo
    res: dict[str, int] = {}

    def once() -> None:
        if order == "pack":
            oids = _reachable_pack_order(repo)
        elif order == "rev-list":
            out = subprocess.run(["git", "-C", str(repo), "rev-list", "--objects", "--all",
                                  "--filter=object:type=blob"], capture_output=True, check=True).stdout
            oids = [ln.split(b" ", 1)[0].decode() for ln in out.splitlines() if b" " in ln]
        else:
            oids = sorted(_reachable_pack_order(repo))
        res["blobs"], res["bytes"] = _read_all(repo, oids)

    benchmark.pedantic(once, rounds=_rounds(), iterations=1)
    _record(benchmark, res["blobs"], res["bytes"])


@pytest.mark.parametrize("order", ["stream", "pack"])
@pytest.mark.parametrize("jobs", _jobs())
def test_scan(benchmark: Any, git_repo: tuple[Path, dict[str, Any]], jobs: int, order: str) -> None:
    benchmark.group = "history-scan"
    repo, truth = git_repo
    out: dict[str, Any] = {}

    def once() -> None:
        r = scan_history([str(repo)], ScanOptions(), jobs=jobs, use_datastore=False, order=order)
        out["r"] = r

    benchmark.pedantic(once, rounds=_rounds(), iterations=1)
    r = out["r"]
    planted = {s["fingerprint"] for s in truth["secrets"]}
    assert {f.fingerprint for f in r.findings} == planted and not r.errors
    intro = {(f.fingerprint, f.commit["blob"]): f for f in r.findings if f.commit}
    for s in truth["secrets"]:  # introducing commit, path and at_head as planted
        f = intro[(s["fingerprint"], s["blob"])]
        assert f.commit is not None
        assert (f.path, f.commit["id"], f.commit["at_head"]) == (s["path"], s["commit"], s["at_head"])
    _record(benchmark, r.stats["blobs_scanned"], r.stats["bytes"], jobs=jobs,
            provenance_seconds=r.stats["provenance_seconds"], findings=len(r.findings))


def test_parent_reader(benchmark: Any, git_repo: tuple[Path, dict[str, Any]]) -> None:
    """The alternative: the parent reads every blob and ships its bytes to 2 workers (``mem`` items)."""
    from veritensor_fast import worker
    from veritensor_fast.engine import scan
    from veritensor_fast.findings import Finding, Item, ScanError

    benchmark.group = "history-scan"
    repo, _ = git_repo
    worker.READERS["mem"] = (__name__, "MemReader")

    class ParentRead:
        def items(self) -> Iterator[Item | ScanError]:
            oids = _reachable_pack_order(repo)
            proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, bufsize=1 << 16)
            assert proc.stdin is not None and proc.stdout is not None
            stdin = proc.stdin

            def feed() -> None:
                stdin.write(("\n".join(oids) + "\n").encode())
                stdin.close()

            threading.Thread(target=feed, daemon=True).start()
            for oid in oids:
                size = int(proc.stdout.readline().split()[2])
                data = proc.stdout.read(size + 1)[:-1]
                yield Item("mem", data.decode("latin-1"), oid, size)
            proc.stdout.close()  # no wait(): git exits on EOF; waiting from the pool's task thread hung once

        def annotate(self, findings: Any) -> list[Finding]:
            return list(findings)

    out: dict[str, Any] = {}

    def once() -> None:
        out["r"] = scan(ParentRead(), ScanOptions(), jobs=2)

    benchmark.pedantic(once, rounds=_rounds(), iterations=1)
    r = out["r"]
    _record(benchmark, r.stats["files"], r.stats["bytes"], jobs=2)


class MemReader:
    """Benchmark-only reader for ``mem`` items: the bytes travel inside the item (latin-1 text)."""

    def open(self, item: Any) -> tuple[bytes, Any]:
        return item.key.encode("latin-1"), lambda: None


def test_incremental(benchmark: Any, git_repo: tuple[Path, dict[str, Any]], tmp_path_factory: Any) -> None:
    benchmark.group = "history-incremental"
    repo, truth = git_repo
    ds = str(tmp_path_factory.mktemp("ds") / "ds.sqlite")
    t0 = time.perf_counter()
    first = scan_history([str(repo)], ScanOptions(), jobs=_jobs()[-1], datastore=ds)
    first_s = time.perf_counter() - t0
    out: dict[str, Any] = {}

    def once() -> None:
        out["r"] = scan_history([str(repo)], ScanOptions(), jobs=_jobs()[-1], datastore=ds)

    benchmark.pedantic(once, rounds=_rounds(), iterations=1)
    r = out["r"]
    assert r.stats["blobs_scanned"] == 0 and len(r.findings) == len(first.findings)
    benchmark.extra_info.update({"first_sweep_seconds": round(first_s, 2), "blobs": r.stats["blobs_total"],
                                 "findings": len(r.findings), "provenance_seconds": r.stats["provenance_seconds"]})


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds so far) of every process (``/proc``, Linux)."""
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat", encoding="ascii", errors="replace") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(p)] = (int(f[1]), (int(f[11]) + int(f[12])) / hz)
    return out


def timeline(repo: str, jobs: int = 2, step: float = 0.02, depth: str = "", mode: str = "scan") -> dict[str, Any]:
    """One ``scan`` sweep (or, ``mode="ceiling"``, the read ceiling with ``jobs`` readers) in a child process, its
    process tree sampled every ``step`` s: CPU seconds used in each 100 ms by the parent, the workers and each git
    command (by its subcommand). Shows where a core idles (a sum under 0.2 per 100 ms on 2 cores): e.g.
    ``rev-list`` alone while the workers wait for the listing."""
    child = subprocess.Popen([sys.executable, __file__, mode, repo, str(jobs), *([depth] if depth else [])],
                             stdout=subprocess.PIPE, text=True)
    names: dict[int, str] = {}
    samples: list[tuple[float, dict[int, float]]] = []
    t0 = time.perf_counter()
    while child.poll() is None:
        table = _proc_table()
        tree, grew = {child.pid}, True
        while grew:
            grew = False
            for pid, (ppid, _) in table.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        for pid in tree - names.keys():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
            except OSError:
                argv = []
            sub = [a for a in argv[1:] if not a.startswith("-") and "=" not in a and not a.startswith("/")]
            names[pid] = ("parent" if pid == child.pid else "worker" if argv and "python" in argv[0]
                          else "git " + (sub[0] if sub else "?"))
        samples.append((time.perf_counter() - t0, {pid: table[pid][1] for pid in tree if pid in table}))
        time.sleep(step)
    assert child.stdout is not None
    result = json.loads(child.stdout.read().strip().splitlines()[-1])
    last: dict[int, float] = {}
    rows: dict[int, dict[str, float]] = {}
    for t, cpu in samples:
        row = rows.setdefault(int(t * 10), {})
        for pid, c in cpu.items():
            row[names[pid]] = row.get(names[pid], 0.0) + c - last.get(pid, 0.0)
            last[pid] = c
    kinds = sorted({k for r in rows.values() for k in r})
    return {"mode": "timeline", "scan": result, "kinds": kinds,
            "per_100ms": [[b / 10, *(round(rows[b].get(k, 0.0), 3) for k in kinds)] for b in sorted(rows)]}


def split(repo: str, rounds: int = 3, jobs: int = 2) -> list[tuple[str, float, float]]:
    """Where the sweep's CPU goes beyond the read ceiling's: ``timeline`` of the ceiling (1 reader) and of the
    sweep (``jobs`` workers), interleaved, ``rounds`` times; the median CPU seconds of each process kind (parent,
    workers, each git subcommand) in each, as (kind, ceiling, sweep) rows, then the totals. CPU time, unlike
    wall time, is little distorted by other jobs on a loaded machine; on 2 cores a sweep's wall time is at
    least its CPU / 2."""
    import statistics

    per: dict[str, dict[str, list[float]]] = {"ceiling": {}, "scan": {}}
    for _ in range(rounds):
        for mode in ("ceiling", "scan"):
            tl = timeline(repo, 1 if mode == "ceiling" else jobs, mode=mode)
            totals = {k: sum(r[i + 1] for r in tl["per_100ms"]) for i, k in enumerate(tl["kinds"])}
            totals["(total)"] = sum(totals.values())
            for k, v in totals.items():
                per[mode].setdefault(k, []).append(v)
    kinds = sorted(per["ceiling"].keys() | per["scan"].keys(), key=lambda k: (k == "(total)", k))
    med = {m: {k: statistics.median(v + [0.0] * (rounds - len(v))) for k, v in d.items()} for m, d in per.items()}
    return [(k, round(med["ceiling"].get(k, 0.0), 2), round(med["scan"].get(k, 0.0), 2)) for k in kinds]


def scaling(repo: str, jobs: list[int], depths: list[str], rounds: int = 3) -> list[dict[str, Any]]:
    """The issue's "ceiling with more cores": for each k in ``jobs``, the read ceiling with k readers and the
    sweep with ``--jobs k`` at each ``early_depth`` in ``depths`` ("0": whole blobs early, the default; "1",
    "all"...), each a fresh process, interleaved round by round; medians of ``rounds``. Run it on a machine
    nothing else uses (the load average is kept with each row)."""
    import statistics

    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for k in jobs:
            for what in ("ceiling", *depths):
                argv = (["ceiling", repo, str(k)] if what == "ceiling"
                        else ["scan", repo, str(k), *([what] if what != "0" else [])])
                out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True)
                runs.setdefault((k, what), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = []
    for k in jobs:
        ceil = statistics.median(r["wall_s"] for r in runs[(k, "ceiling")])
        for what in depths:
            rs = runs[(k, what)]
            wall = statistics.median(r["wall_s"] for r in rs)
            rows.append({"jobs": k, "early_depth": what, "wall_s": wall, "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                         "ceiling_s": ceil, "of_ceiling": round(ceil / wall, 3), "early": rs[0].get("early"),
                         "findings": sorted({r["findings"] for r in rs}), "load": max(r["load"] for r in rs)})
    return rows


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "scaling":  # scaling REPO [JOBS,...] [DEPTH,...] [ROUNDS]
        ks = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "1,2,4,8,16").split(",")
              if int(x) <= (os.cpu_count() or 1)]
        ds = (sys.argv[4] if len(sys.argv) > 4 else "0,1,all").split(",")
        print("| jobs | early_depth | sweep s | CPU s | ceiling s (k readers) | of ceiling | early blobs | load |")
        print("|---|---|---|---|---|---|---|---|")
        for row in scaling(target, ks, ds, int(sys.argv[5]) if len(sys.argv) > 5 else 3):
            print("| {jobs} | {early_depth} | {wall_s} | {cpu_s} | {ceiling_s} | {of_ceiling} | {early} | {load} |"
                  .format(**row), flush=True)
        sys.exit(0)
    if mode == "split":  # split REPO [ROUNDS]
        print("| process | ceiling CPU s | sweep CPU s | sweep - ceiling |")
        print("|---|---|---|---|")
        for kind, c, w in split(target, int(sys.argv[3]) if len(sys.argv) > 3 else 3):
            print(f"| {kind} | {c} | {w} | {round(w - c, 2)} |", flush=True)
        print(f"load {os.getloadavg()[0]:.2f}")
        sys.exit(0)
    n = int(sys.argv[3]) if len(sys.argv) > 3 else (1 if mode == "ceiling" else 2)
    if mode == "parts":
        print(json.dumps(parts(target)))
    elif mode == "stages":
        print(json.dumps(stages(target)))
    elif mode == "listing":
        print(json.dumps(listing(target, sys.argv[3] != "0" if len(sys.argv) > 3 else True)))
    elif mode == "timeline":
        tl = timeline(target, n, depth=sys.argv[4] if len(sys.argv) > 4 else "")
        print(json.dumps(tl["scan"]))
        print("t_s   " + " ".join(f"{k[:12]:>12}" for k in tl["kinds"]) + "    sum")
        for row in tl["per_100ms"]:
            print(f"{row[0]:4.1f}  " + " ".join(f"{v:12.2f}" for v in row[1:]) + f"  {sum(row[1:]):5.2f}")
        totals = [sum(r[i] for r in tl["per_100ms"]) for i in range(1, len(tl["kinds"]) + 1)]
        print("total " + " ".join(f"{v:12.2f}" for v in totals) + f"  {sum(totals):5.2f}")
    else:
        from veritensor_fast.sources.git_overlap import ALL_DEPTHS

        depth = sys.argv[4] if len(sys.argv) > 4 else ""
        extra: dict[str, Any] = {"early_depth": ALL_DEPTHS if depth == "all" else int(depth)} if depth else {}
        print(json.dumps(ceiling(target, n) if mode == "ceiling" else {**sweep(target, n, **extra), **extra}))
