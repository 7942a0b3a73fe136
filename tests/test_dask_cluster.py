"""``scan --scheduler`` on a real Dask cluster: a ``dask scheduler`` and ``dask worker`` processes on loopback.

What the in-process cluster of ``test_distributed.py`` cannot show: worker processes that die, restart or
differ from the client, a scheduler that goes away, threads inside one worker process. Each test starts its
own processes (``dask_procs.Cluster``: bounded lifetime, killed at the end).
"""

from __future__ import annotations

import json
import os
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

from dask_procs import Cluster  # noqa: E402

from conftest import git_run, hf_token, init_repo, run_cli  # noqa: E402


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


def scan(*args: str | os.PathLike[str], timeout: float = 180, show: bool = True) -> tuple[int, dict[str, Any], str]:
    p = run_cli("scan", "--format", "json", "--no-progress", *(["--show-secrets"] if show else []), *args,
                timeout=timeout)
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


def slow_scan_in_background(root: Path, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "veritensor_fast.cli", "scan", str(root), "--scheduler", address,
                             "--format", "json", "--no-progress", "--show-secrets"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_busy(cluster: Cluster, timeout: float = 60) -> None:
    """Until some worker is running a task."""
    with cluster.client() as c:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(c.processing().values()):
                time.sleep(0.5)
                return
            time.sleep(0.05)
    raise AssertionError("the scan never started")


@pytest.mark.parametrize("kill", ["one", "all"])
def test_workers_killed_mid_scan_lose_nothing(cluster: Cluster, tmp_path: Path, kill: str) -> None:
    """A worker SIGKILLed mid-scan, or every worker at once (their nannies restart them within a second): the
    tasks they held run again, the rules database reaches the restarted workers, nothing is lost."""
    slow = {"SLOW": "0.01"}  # every read takes 10 ms on the workers: the scan is still running when they die
    cluster.start_worker("w1", nthreads=2, env=slow)
    cluster.start_worker("w2", nthreads=2, env=slow)
    toks = token_tree(tmp_path / "t", files=1500)
    killed = sorted(cluster.wait_workers(2).values())[: 1 if kill == "one" else 2]
    p = slow_scan_in_background(tmp_path / "t", cluster.address)
    try:
        wait_until_busy(cluster)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=180)
    finally:
        p.kill()
    rep = json.loads(out)
    assert rep["errors"] == [], err[-2000:]
    assert secrets(rep) == sorted(toks)
    assert rep["stats"]["files"] == 1500
    assert p.returncode == 1
    assert set(cluster.wait_workers(2).values()).isdisjoint(killed)  # they died, and were restarted


def test_scheduler_killed_mid_scan_exits_2_with_one_line(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1", nthreads=2, env={"SLOW": "0.01"})
    token_tree(tmp_path / "t", files=1500)
    cluster.wait_workers(1)
    p = slow_scan_in_background(tmp_path / "t", cluster.address)
    try:
        wait_until_busy(cluster)
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 2
    assert out == ""  # no partial report that could pass for a complete one
    assert err.count("\n") == 1 and err.startswith("veritensor-fast: error: lost the Dask scheduler at "), err


@pytest.mark.parametrize("env,why", [({"FAKE_VERSION": "0.0.1"}, "runs veritensor-fast 0.0.1, this client"),
                                     ({"FAKE_DISABLE_RULE": "huggingface.user-token"}, "has rules ")])
def test_worker_of_another_version_or_rule_set_is_refused_by_name(cluster: Cluster, tmp_path: Path,
                                                                  env: dict[str, str], why: str) -> None:
    cluster.start_worker("good", nthreads=1)
    cluster.start_worker("other", nthreads=1, env=env)
    token_tree(tmp_path / "t", files=10, every=2)
    pids = cluster.wait_workers(2)
    with cluster.client() as c:
        other = next(a for a, n in c.run(lambda dask_worker: dask_worker.name).items() if n == "other")
    code, rep, err = scan(tmp_path / "t", "--scheduler", cluster.address)
    assert code == 2 and rep == {}
    assert err.startswith(f"veritensor-fast: error: refusing the Dask cluster: worker {other} {why}"), err
    assert err.count("\n") == 1 and len(pids) == 2


def test_worker_that_cannot_see_the_scanned_path_is_refused_by_name(cluster: Cluster, tmp_path: Path) -> None:
    """A worker in its own mount namespace, with an empty file system mounted over the scanned tree's parent."""
    shared = tmp_path / "shared"
    token_tree(shared / "t", files=10, every=2)
    if subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("needs unshare -m (root or user namespaces)")
    cluster.start_worker("sees", nthreads=1)
    cluster.start_worker("blind", nthreads=1,
                         wrap=("unshare", "-m", "--propagation", "private", "sh", "-c",
                               f"mount -t tmpfs none {shared} && exec \"$@\"", "sh"))
    cluster.wait_workers(2)
    with cluster.client() as c:
        blind = next(a for a, n in c.run(lambda dask_worker: dask_worker.name).items() if n == "blind")
    code, rep, err = scan(shared / "t", "--scheduler", cluster.address)
    assert code == 2 and rep == {}
    assert err == (f"veritensor-fast: error: refusing the Dask cluster: worker {blind} cannot see "
                   f"{shared / 't'}\n")


def test_address_that_accepts_but_never_answers_is_bounded(tmp_path: Path) -> None:
    """A port that accepts connections and never speaks: exit 2 after the 10 s handshake limit, not a hang."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        p = run_cli("scan", str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{port}", "--no-progress", timeout=60)
    finally:
        stop.set()
        t.join()
        for s in held:
            s.close()
        srv.close()
    assert p.returncode == 2
    assert p.stderr == (f"veritensor-fast: error: cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}: "
                        "no answer\n")


def test_history_of_several_repositories_equals_jobs_1(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1", nthreads=2)
    cluster.start_worker("w2", nthreads=2)
    repos = []
    for name in ("alpha", "beta", "gamma"):
        r = init_repo(tmp_path / name)
        for i in range(3):
            (r / f"s{i}.py").write_text(f"HF_TOKEN = '{hf_token()}'\n")
            git_run(r, "add", ".")
            git_run(r, "commit", "-q", "-m", f"c{i}")
            (r / f"s{i}.py").write_text("HF_TOKEN = os.environ['HF_TOKEN']\n")
            git_run(r, "commit", "-q", "-am", f"fix {i}")
        repos.append(r)
    cluster.wait_workers(2)
    local = scan("--history", "--no-datastore", "--jobs", "1", *repos)
    remote = scan("--history", "--no-datastore", "--scheduler", cluster.address, *repos)
    assert remote[0] == local[0] == 1, remote[2]
    assert remote[1]["findings"] == local[1]["findings"] and remote[1]["errors"] == []
    assert sorted({f["repo"] for f in remote[1]["findings"]}) == sorted(map(str, repos))
    assert len(remote[1]["findings"]) == 9


def test_item_that_kills_every_worker_is_a_crash_error_and_nothing_else_is_lost(cluster: Cluster,
                                                                                 tmp_path: Path) -> None:
    """Dask retries a task whose worker died, then gives up (KilledWorker): its batch runs again item by item,
    and the item that kills workers is reported as a crash."""
    cluster.stop()  # a scheduler that gives up after the first death (default: the fourth): fewer restarts
    cluster.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    cluster.start_worker("w1", nthreads=1, env={"FAULT": "SIGKILL"})
    toks = token_tree(tmp_path / "t", files=40, every=4)
    (tmp_path / "t" / "poison.txt").write_text("harmless\n")
    cluster.wait_workers(1)
    code, rep, err = scan(tmp_path / "t", "--scheduler", cluster.address)
    assert secrets(rep) == sorted(toks), err[-2000:]
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("poison.txt", "crash")]
    assert code == 1


def test_workers_gone_for_good_stop_the_scan_instead_of_hanging(cluster: Cluster, tmp_path: Path) -> None:
    from veritensor_fast.engine import scan as engine_scan
    from veritensor_fast.executors_dask import DaskExecutor, DaskExecutorError
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    cluster.start_worker("only", nthreads=1, nanny=False, env={"SLOW": "0.01"})
    token_tree(tmp_path / "t", files=1500)
    (pid,) = cluster.wait_workers(1).values()
    with cluster.client() as client:
        killer = threading.Timer(2.0, os.kill, (pid, signal.SIGKILL))
        killer.start()
        try:
            with pytest.raises(DaskExecutorError, match="has had no workers for 3 s mid-scan"):
                engine_scan(FileSource([str(tmp_path / "t")]), ScanOptions(),
                            make_executor=lambda o, db: DaskExecutor(client, o, db, no_workers_timeout=3))
        finally:
            killer.cancel()


def test_shards_scanned_on_workers_equal_jobs_1_and_a_rerun_skips_them(cluster: Cluster, tmp_path: Path) -> None:
    """--shard-output: workers list and scan whole subtrees and write JSONL; the merged report equals --jobs 1
    (one PATH and two PATHs), the shard files hold no full secret, and a rerun scans nothing again."""
    cluster.start_worker("w1", nthreads=2)
    cluster.start_worker("w2", nthreads=2)
    a, b = tmp_path / "a", tmp_path / "b"
    toks = token_tree(a / "src", files=30, every=5) + token_tree(a / "docs" / "deep", files=10, every=5)
    (a / "top.py").write_text(f"T = '{hf_token()}'\n")
    (a / "broken.ipynb").write_text('{"cells": [')
    (a / "skipme").mkdir()
    (a / "skipme" / "x.py").write_text(f"T = '{hf_token()}'\n")
    toks += token_tree(b, files=10, every=5)
    cluster.wait_workers(2)
    for roots in ([a], [a, b]):
        out = tmp_path / f"shards{len(roots)}"
        args = ["--exclude", "skipme", *roots]
        local = scan(*args, "--jobs", "1", show=False)
        first = scan(*args, "--scheduler", cluster.address, "--shard-output", out, show=False)
        assert first[0] == local[0] == 1, first[2]
        assert first[1]["findings"] == local[1]["findings"] and first[1]["errors"] == local[1]["errors"]
        assert first[1]["stats"]["files"] == local[1]["stats"]["files"]
        assert first[1]["stats"]["shards_skipped"] == 0
        stored = "".join(p.read_text() for p in out.glob("*.jsonl"))
        assert stored and not any(t in stored for t in toks)  # no --show-secrets: no full secret stored
        again = scan(*args, "--scheduler", cluster.address, "--shard-output", out, show=False)
        assert again[1]["findings"] == local[1]["findings"]
        assert again[1]["stats"]["shards_skipped"] == again[1]["stats"]["shards"] >= 3
        shown = scan(*args, "--scheduler", cluster.address, "--shard-output", out)  # needs the secrets: rescans
        assert secrets(shown[1]) == secrets(scan(*args, "--jobs", "1")[1])
        assert shown[1]["stats"]["shards_skipped"] == 0
    assert set(toks) <= set(secrets(shown[1]))


def test_history_shards_one_per_repository_and_the_nightly_rerun_scans_only_new_blobs(
        cluster: Cluster, tmp_path: Path) -> None:
    """Five repositories, one shard each (run concurrently on the workers); findings carry ``repo`` and equal
    --jobs 1. Next night, after one new commit per repository, a new sweep scans only the new blobs (each
    repository's datastore is written by the one worker that scans its shard)."""
    cluster.start_worker("w1", nthreads=2)
    cluster.start_worker("w2", nthreads=2)
    repos = []
    for i in range(5):
        r = init_repo(tmp_path / f"r{i}")
        (r / "a.py").write_text(f"HF_TOKEN = '{hf_token()}'\n")
        git_run(r, "add", ".")
        git_run(r, "commit", "-q", "-m", "a")
        repos.append(r)
    cluster.wait_workers(2)
    local = scan("--history", "--no-datastore", "--jobs", "1", *repos, show=False)
    night1 = scan("--history", "--scheduler", cluster.address, "--shard-output", tmp_path / "n1", *repos, show=False)
    assert night1[0] == 1 and night1[1]["findings"] == local[1]["findings"], night1[2]
    assert night1[1]["stats"]["shards"] == 5 and night1[1]["stats"]["blobs_scanned"] == 10  # README + a.py each
    for r in repos:
        (r / "b.py").write_text(f"HF_TOKEN = '{hf_token()}'\n")
        git_run(r, "add", ".")
        git_run(r, "commit", "-q", "-m", "b")
    night2 = scan("--history", "--scheduler", cluster.address, "--shard-output", tmp_path / "n2", *repos, show=False)
    assert night2[1]["stats"]["blobs_scanned"] == 5  # only b.py in each repository
    assert len(night2[1]["findings"]) == 10 and {f["repo"] for f in night2[1]["findings"]} == set(map(str, repos))


def test_workers_that_die_on_every_item_stop_after_the_budget(cluster: Cluster, tmp_path: Path) -> None:
    """trust23: memory starvation on a cluster: every worker dies on every item. Dask gave up on each batch, then
    each item, then each item alone (one worker death and restart each, minutes for a few hundred files); after
    ``failures_in_a_row`` give-ups in a row the scan stops and names every file not scanned."""
    cluster.stop()
    cluster.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    cluster.start_worker("w1", nthreads=1, env={"FAULT": "SIGKILL", "FAULT_NAME": ""})  # every file kills it
    token_tree(tmp_path / "t", files=300, every=1000)
    cluster.wait_workers(1)
    code, rep, err = scan(tmp_path / "t", "--scheduler", cluster.address, timeout=170)
    assert code == 3, err[-2000:]
    assert sorted(e["path"] for e in rep["errors"]) == sorted(os.listdir(tmp_path / "t"))
    assert {e["kind"] for e in rep["errors"]} == {"crash"}
    assert sum("in a row" in e["reason"] for e in rep["errors"]) >= 300 - 16  # failures_in_a_row(4 in flight)
    from veritensor_fast.executors_base import failures_in_a_row

    assert failures_in_a_row(4) == 16
