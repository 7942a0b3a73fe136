"""The Dask executor (``scan --scheduler``) gives exactly what the local engine gives, on an in-process cluster.

The cluster runs in this process over Dask's ``inproc://`` transport: no network, no ports. The worker code is
the same ``run_batch``; these tests compare whole results with ``jobs=1`` and check the failure semantics.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from typer.testing import CliRunner  # noqa: E402

from veritensor_fast import executors_dask  # noqa: E402
from veritensor_fast.cli import app  # noqa: E402
from veritensor_fast.engine import scan  # noqa: E402
from veritensor_fast.executors_dask import DaskExecutor, DaskExecutorError, _portable  # noqa: E402
from veritensor_fast.findings import Item  # noqa: E402
from veritensor_fast.sources.fs import FileReader, FileSource  # noqa: E402
from veritensor_fast.sources.git import scan_history  # noqa: E402
from veritensor_fast.worker import ScanOptions  # noqa: E402

from conftest import hf_token, rand  # noqa: E402

GIT_ENV = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada",
           "GIT_COMMITTER_EMAIL": "ada@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # the scheduler always starts an HTTP server: keep it on loopback, on a free port (never contacted)
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=2, dashboard_address="127.0.0.1:0",
                                  protocol="inproc://") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:  # as the CLI's client: not the default
        yield c


def as_json(result: Any, secrets: bool = True) -> tuple[list[str], list[str]]:
    """Findings (full secret included unless ``secrets=False``) and errors as sorted JSON strings."""
    return (sorted(json.dumps({**dataclasses.asdict(f), **({} if secrets else {"secret": None})}, sort_keys=True)
                   for f in result.findings),
            sorted(json.dumps(dataclasses.asdict(e), sort_keys=True) for e in result.errors))


def dask_scan(client: Any, source: Any, options: ScanOptions, **kw: Any) -> Any:
    return scan(source, options, make_executor=lambda o, db: DaskExecutor(client, o, db, **kw))


@pytest.fixture
def big_tree(tmp_path: Path) -> tuple[Path, list[str]]:
    """600 small files (three batches), tokens in some, a broken notebook and a pickle that runs os.system."""
    root = tmp_path / "t"
    tokens = []
    for i in range(600):
        d = root / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        if i % 50 == 0:
            tok = hf_token()
            tokens.append(tok)
            (d / f"f{i}.py").write_text(f"x = 1\nHF_TOKEN = '{tok}'\n")
        else:
            (d / f"f{i}.txt").write_text(rand(80) + "\n")
    (root / "broken.ipynb").write_text('{"cells": [ {"cell_type": "code", "source": ')
    (root / "evil.pkl").write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    return root, tokens


def test_same_findings_and_errors_as_jobs_1(client: Any, big_tree: tuple[Path, list[str]]) -> None:
    root, tokens = big_tree
    opts = ScanOptions()
    local = scan(FileSource([str(root)]), opts, jobs=1)
    assert {f.secret for f in local.findings if f.kind == "secret"} == set(tokens)
    assert any(f.kind == "model" and f.path == "evil.pkl" for f in local.findings)
    assert local.errors  # the broken notebook: the comparison covers errors too
    for in_flight in (None, 1):  # the default window, and one batch at a time
        remote = dask_scan(client, FileSource([str(root)]), opts, max_in_flight=in_flight)
        assert as_json(remote) == as_json(local)
        assert remote.stats["files"] == local.stats["files"] == 602
        assert remote.stats["jobs"] == 4  # the cluster's threads


def test_item_that_raises_becomes_internal_error_and_batch_goes_on(client: Any, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    toks = [hf_token() for _ in range(3)]
    for i, t in enumerate(toks):
        (tmp_path / f"ok{i}.py").write_text(f"T = '{t}'\n")
    secret = hf_token()
    (tmp_path / "bad.py").write_text(f"T = '{secret}'\n")
    real_open = FileReader.open

    def flaky_open(self: FileReader, item: Item) -> Any:
        if item.path == "bad.py":
            raise RuntimeError(f"reader bug near {secret}")  # the message must not reach the report
        return real_open(self, item)

    monkeypatch.setattr(FileReader, "open", flaky_open)
    r = dask_scan(client, FileSource([str(tmp_path)]), ScanOptions())
    assert sorted(f.secret for f in r.findings) == sorted(toks)  # same batch, still scanned
    assert [(e.path, e.kind) for e in r.errors] == [("bad.py", "internal")]
    assert r.errors[0].reason == "distributed worker failed: RuntimeError"


def test_task_dask_gives_up_on_becomes_internal_errors(client: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        (tmp_path / f"f{i}.py").write_text(f"T = '{hf_token()}'\n")

    def dies(*_: Any) -> Any:
        raise SystemError("worker lost")

    monkeypatch.setattr(executors_dask, "run_remote", dies)
    r = dask_scan(client, FileSource([str(tmp_path)]), ScanOptions())
    assert not r.findings
    assert sorted((e.path, e.kind, e.reason) for e in r.errors) == [
        (f"f{i}.py", "internal", "distributed task failed: SystemError") for i in range(3)]


def test_items_are_made_portable() -> None:
    out = _portable([Item("file", "rel/a.py", "a.py", 3), Item("blob", "0" * 40, "b.py", 3, "repo")])
    assert out[0].key == os.path.abspath("rel/a.py") and out[0].path == "a.py"
    assert out[1].origin == os.path.abspath("repo") and out[1].key == "0" * 40
    with pytest.raises(DaskExecutorError, match="memory items"):
        _portable([Item("memory", "memory:0", "stdin", 3)])


def test_connect_refuses_a_scheduler_without_workers() -> None:
    with distributed.LocalCluster(processes=False, n_workers=0, dashboard_address="127.0.0.1:0",
                                  protocol="inproc://") as cluster:
        with pytest.raises(DaskExecutorError, match="has no workers"):
            executors_dask.connect(cluster.scheduler_address, timeout=0.2)
    with pytest.raises(DaskExecutorError, match="unknown address scheme"):
        executors_dask.connect("nonsense://x")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def test_git_history_same_as_jobs_1_and_datastore_records(client: Any, tmp_path: Path) -> None:
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env={**os.environ, **GIT_ENV})
    gone, kept = hf_token(), hf_token()
    (repo / "a.py").write_text(f"A = '{gone}'\n")
    (repo / "b.txt").write_text(f"token: {kept}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "a.py").write_text("A = os.environ['HF_TOKEN']\n")
    git(repo, "commit", "-q", "-am", "two")
    local = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert sorted(f.secret for f in local.findings) == sorted([gone, kept])
    ds = str(tmp_path / "ds.sqlite")
    remote = scan_history([str(repo)], ScanOptions(), datastore=ds,
                          make_executor=lambda o, db: DaskExecutor(client, o, db))
    assert as_json(remote) == as_json(local)  # provenance (commit) included
    assert remote.stats["blobs_scanned"] == 3
    again = scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds)  # per-item results came back
    assert again.stats["blobs_scanned"] == 0  # the datastore keeps findings redacted: no full secret
    assert as_json(again, secrets=False) == as_json(local, secrets=False)


def test_cli_scheduler_option(client: Any, big_tree: tuple[Path, list[str]]) -> None:
    root, _ = big_tree
    runner = CliRunner()
    args = ["scan", str(root), "--format", "json", "--no-progress"]
    local = runner.invoke(app, [*args, "--jobs", "1"])
    remote = runner.invoke(app, [*args, "--scheduler", client.scheduler.address])
    assert local.exit_code == remote.exit_code == 1, remote.output
    lj, rj = json.loads(local.stdout), json.loads(remote.stdout)
    assert rj["findings"] == lj["findings"] and rj["errors"] == lj["errors"]
    assert rj["stats"]["jobs"] == 4


def test_cli_without_dask_exits_2(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['distributed'] = None; from veritensor_fast.cli import main; "
            "sys.argv = ['veritensor-fast', *sys.argv[1:]]; main()")
    p = subprocess.run([sys.executable, "-c", code, "scan", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 2
    assert "pip install distributed (the distributed extra: pip install '.[distributed]' in a checkout)" in p.stderr


def test_library_api_takes_a_client(client: Any, big_tree: tuple[Path, list[str]]) -> None:
    import veritensor_fast

    root, tokens = big_tree
    r = veritensor_fast.scan_paths([str(root)], client=client)
    assert {f.secret for f in r.findings if f.kind == "secret"} == set(tokens)
    assert r.stats["jobs"] == 4  # the cluster's threads: it ran there
    assert client.status == "running"  # a client it was given is not closed
