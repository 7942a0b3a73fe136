"""scale24: on a Dask cluster, a run of files that each kill the worker scanning them costs those files only.

The local pool's version is ``test_review23_poison_run.py``. Dask gives up on a task whose worker died
(``KilledWorker``; here after the first death), the batch runs again item by item and each item it gives up on
again runs alone: one worker death each. A run of such files, one after the other in listing order, reached the
executor's budget of give-ups in a row (``failures_in_a_row``, memory starvation) and stopped the scan: every
file after them was reported ``not scanned`` and their findings were lost. Now, as in the local pool, work runs
alone once the budget is reached (a batch never tried, else a suspect drawn at random): it finishes, and the scan
goes on. Real ``dask scheduler`` and ``dask worker`` processes (``faulty_worker.py`` kills the worker that opens
a file named ``*poison.txt``, as a native crash or the OOM killer would).
"""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from pathlib import Path  # noqa: E402

from dask_procs import Cluster  # noqa: E402
from test_dask_cluster import cluster, scan, secrets, token_tree  # noqa: E402, F401

#: Files that kill their worker, named one after the other before every other file: with one worker thread (4
#: tasks in flight, the budget ``failures_in_a_row(4)`` = 16 give-ups) they cost about 17 give-ups in a row.
POISONED = 10


def test_a_run_of_worker_killing_files_loses_no_other_finding(cluster: Cluster, tmp_path: Path) -> None:  # noqa: F811
    cluster.stop()  # a scheduler that gives up after the first death (default: the fourth): fewer restarts
    cluster.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    cluster.start_worker("w1", nthreads=1, env={"FAULT": "SIGKILL"})
    root = tmp_path / "t"
    toks = token_tree(root, files=120, every=6)
    for i in range(POISONED):
        (root / f"e{i:02}_poison.txt").write_text("harmless bytes\n")
    cluster.wait_workers(1)
    code, rep, err = scan(root, "--scheduler", cluster.address, timeout=400)
    assert secrets(rep) == sorted(toks), err[-3000:]  # every token, once
    poisoned = sorted(f"e{i:02}_poison.txt" for i in range(POISONED))
    assert sorted(e["path"] for e in rep["errors"]) == poisoned  # those files, and nothing else, not scanned
    assert {e["kind"] for e in rep["errors"]} == {"crash"}
    assert not any("in a row" in e["reason"] for e in rep["errors"])
    assert rep["stats"]["files"] == 120 and code == 1
    from veritensor_fast.executors_base import failures_in_a_row

    assert failures_in_a_row(4) == 16


def test_probes_in_process_cluster_keep_every_file_after_a_run_of_give_ups(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The same on an in-process cluster, deterministic: a task that holds a ``kill`` file raises ``KilledWorker``
    (what ``fut.result()`` raises when Dask gives up), one task in flight (the budget: ``failures_in_a_row(1)``,
    10 give-ups), and the probe drawn last among the suspects (a file with no fault). At 378526f the scan stopped
    after five of them and reported the 60 files after them as not scanned (their findings lost)."""
    import types

    import distributed
    from distributed import KilledWorker

    from veritensor_fast import executors_dask
    from veritensor_fast.engine import scan as engine_scan
    from veritensor_fast.executors_dask import DaskExecutor
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    from conftest import hf_token

    root = tmp_path / "t"
    root.mkdir()
    kills = [f"a{i:02}_kill.txt" for i in range(8)]  # listed first: a run of them
    for n in kills:
        (root / n).write_text("harmless\n")
    toks = []
    for i in range(60):
        toks.append(hf_token())
        (root / f"g{i:02}.py").write_text(f"T = '{toks[-1]}'\n")
    real = executors_dask.run_remote

    def run_remote(options: object, digest: str, expect: tuple[str, str], batch: list) -> object:
        if any(it.path.endswith("_kill.txt") for it in batch):
            raise KilledWorker(batch[0].path, _Gone(), 0)
        return real(options, digest, expect, batch)

    class _Gone:  # the worker Dask names in the exception's message
        address = "inproc://gone"

    monkeypatch.setattr(executors_dask, "run_remote", run_remote)
    last = types.SimpleNamespace(randrange=lambda n: n - 1)  # the probe: the last suspect, a file listed late
    monkeypatch.setattr(executors_dask, "random", last, raising=False)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                                  protocol="inproc://") as cl, distributed.Client(cl, set_as_default=False) as client:
        r = engine_scan(FileSource([str(root)]), ScanOptions(),
                        make_executor=lambda o, db: DaskExecutor(client, o, db, max_in_flight=1))
    assert sorted(f.secret for f in r.findings) == sorted(toks), r.errors[:3]
    assert sorted((e.path, e.kind) for e in r.errors) == [(n, "crash") for n in kills]
    assert not any("in a row" in e.reason for e in r.errors)
