"""Issue 16 (history throughput): the listing's git commands run at once in the background, provenance's
``git log`` runs while the scan goes on (only when there are findings), workers are forked warm, and the blob
datastore is written in few transactions. Each test checks behaviour (what runs
when, what is read), never time."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import gitcmd
from veritensor_fast.findings import Item
from veritensor_fast.history import scan_history
from veritensor_fast.sources.fs import InputError
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.sources.git_read import BlobReader
from veritensor_fast.worker import ScanOptions

from conftest import child_argvs, git_run, hf_token, init_repo


def _repo(tmp_path: Path, secrets: int = 2) -> tuple[Path, list[str]]:
    """A small history: ``secrets`` commits each adding a token, then clean edits."""
    repo = init_repo(tmp_path / "r")
    intro = []
    for i in range(secrets):
        (repo / f"s{i}.py").write_text(f"T = '{hf_token()}'\n")
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"secret {i}")
        intro.append(git_run(repo, "rev-parse", "HEAD").stdout.strip())
    for i in range(3):
        (repo / "n.txt").write_text(f"plain {i}\n" * 50)
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"edit {i}")
    return repo, intro


class _Spy:
    """Records every git command this process starts (``gitcmd.popen``) in order, with a marker list."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, tuple[str, ...]]] = []
        real = gitcmd.popen

        def popen(repo: str, args: Any, **kw: Any) -> Any:
            self.events.append(("git", tuple(args)))
            return real(repo, args, **kw)

        monkeypatch.setattr(gitcmd, "popen", popen)

    def mark(self, what: str) -> None:
        self.events.append((what, ()))

    def index(self, pred: Any) -> int:
        return next(i for i, e in enumerate(self.events) if pred(e))


def _is_log(e: tuple[str, tuple[str, ...]]) -> bool:
    return e[0] == "git" and e[1][:2] == ("log", "--raw")


def test_listing_starts_at_start_before_any_item_is_pulled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GitHistorySource, "one_walk", False)  # the two-walk listing (test_hist22_one_walk.py)
    repo, _ = _repo(tmp_path)
    spy = _Spy(monkeypatch)
    src = GitHistorySource(str(repo), use_datastore=False)
    src.validate()
    src.start()
    started = [e[1][:2] for e in spy.events if e[0] == "git"]
    # the blob walk, the pack-order listing and the commit list all run before the first item is asked for
    assert ("rev-list", "--objects") in started
    assert ("cat-file", "--batch-all-objects") in started
    assert any(a[0] == "rev-list" and a[1] == "--all" for a in started)
    items = list(src.items())
    src.close()
    fresh = GitHistorySource(str(repo), use_datastore=False)
    assert [(getattr(i, "key", None), i.path) for i in items] == [
        (getattr(i, "key", None), i.path) for i in fresh.items()]
    assert {i.kind for i in items if isinstance(i, Item)} == {"blob", "commit"}


def test_provenance_log_starts_with_first_finding_not_after_scan(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    repo, intro = _repo(tmp_path)
    spy = _Spy(monkeypatch)
    real_annotate = GitHistorySource.annotate

    def annotate(self: GitHistorySource, findings: Any) -> Any:
        spy.mark("annotate")
        return real_annotate(self, findings)

    monkeypatch.setattr(GitHistorySource, "annotate", annotate)
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert not r.errors
    assert sorted(f.commit["id"] for f in r.findings if f.commit) == sorted(intro)  # provenance still right
    assert sum(1 for e in spy.events if _is_log(e)) == 1  # one pass, not one per lookup
    assert spy.index(_is_log) < spy.index(lambda e: e[0] == "annotate")


def test_clean_history_never_starts_provenance_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GitHistorySource, "one_walk", False)  # the two-walk listing (test_hist22_one_walk.py)
    repo, _ = _repo(tmp_path, secrets=0)
    spy = _Spy(monkeypatch)
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert not r.findings and not r.errors
    assert not any(_is_log(e) for e in spy.events)


def test_incremental_sweep_with_cache_does_not_prefetch_full_log(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = _repo(tmp_path)
    ds = str(tmp_path / "ds.sqlite")
    first = scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds)
    (repo / "new.py").write_text(f"K = '{hf_token()}'\n")
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "new secret")
    new_commit = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    spy = _Spy(monkeypatch)
    second = scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds)
    assert second.stats["listing"] == "incremental"
    assert len(second.findings) == len(first.findings) + 1
    assert new_commit in {f.commit["id"] for f in second.findings if f.commit}
    logs = [e[1] for e in spy.events if _is_log(e)]
    assert len(logs) == 1 and "--stdin" in logs[0]  # over the new commits only (tips on stdin), not a full pass


def _children(kind: bytes) -> list[int]:
    return [pid for pid, argv in child_argvs().items() if any(kind in a for a in argv)]


def _spool_files() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "vf-git-" in target:
            out.append(target)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_abandoned_listing_leaves_no_git_process_or_file(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path)
    before_files = _spool_files()
    before_git = set(_children(b"git"))  # an earlier test's own leftovers are not this test's business
    src = GitHistorySource(str(repo), use_datastore=False)
    it = src.items()
    next(it)  # the listing is running or done; the consumer gives up (Ctrl-C, an error in the engine)
    it.close()
    src.close()
    assert not _children(b"rev-list") and not _children(b"--batch-all-objects")
    assert _spool_files() == before_files
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert len(r.findings) == 2
    assert _spool_files() == before_files and not set(_children(b"git")) - before_git


def test_failed_walk_is_still_reported(tmp_path: Path) -> None:
    """A corrupt commit stops the background rev-list: its error still reaches the report (kind corrupt) and
    every blob in the database is scanned instead."""
    repo, _ = _repo(tmp_path)
    head = git_run(repo, "rev-parse", "HEAD~1").stdout.strip()
    obj = repo / ".git" / "objects" / head[:2] / head[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"not a zlib stream")
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert any(e.kind == "corrupt" and "history walk failed" in e.reason for e in r.errors)
    assert len({f.fingerprint for f in r.findings}) == 2


def test_reader_reads_blob_larger_than_pipe_exactly(tmp_path: Path) -> None:
    """A blob larger than the pipe is read whole (content, then its newline, without a copy), and a missing
    object between two good ones is reported as such without losing the next."""
    repo = init_repo(tmp_path / "r")
    big = os.urandom(3 << 20) + f"\nT = '{hf_token()}'\n".encode()
    (repo / "big.bin").write_bytes(big)
    (repo / "small.txt").write_text("x\n")
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "b")
    oids = {p: git_run(repo, "rev-parse", f"HEAD:{p}").stdout.strip() for p in ("big.bin", "small.txt")}
    missing = "0123456789abcdef" * 2 + "01234567"
    items = [Item("blob", oids["small.txt"], "small.txt", 2, str(repo)),
             Item("blob", missing, "gone", 1, str(repo)),
             Item("blob", oids["big.bin"], "big.bin", len(big), str(repo))]
    r = BlobReader()
    try:
        r.prefetch(items)
        assert r.open(items[0])[0] == b"x\n"
        with pytest.raises(InputError) as ei:
            r.open(items[1])
        assert ei.value.kind == "corrupt"
        assert r.open(items[2])[0] == big
    finally:
        r.close()


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_history_workers_adopt_the_parents_worker_state(tmp_path: Path) -> None:
    """A ``--history`` pool forks from the one worker state built in the parent (rules, detectors,
    databases): no worker builds its own, and the parent builds one, not two."""
    import subprocess

    repo, intro = _repo(tmp_path, secrets=2)
    for i in range(40):
        (repo / f"f{i}.txt").write_bytes(os.urandom(150_000).hex().encode())
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "bulk")
    log = tmp_path / "ctx.log"
    code = (
        "import os, sys\n"
        "from veritensor_fast import worker\n"
        "from veritensor_fast.history import scan_history\n"
        "real = worker.WorkerContext.__init__\n"
        "def counted(self, *a, **kw):\n"
        "    open(sys.argv[2], 'a').write(f'{os.getpid()}\\n')\n"
        "    real(self, *a, **kw)\n"
        "worker.WorkerContext.__init__ = counted\n"
        "r = scan_history([sys.argv[1]], worker.ScanOptions(), jobs=2, use_datastore=False)\n"
        "print(os.getpid(), r.stats['jobs'], len(r.findings))\n")
    p = subprocess.run([sys.executable, "-c", code, str(repo), str(log)], capture_output=True, text=True,
                       timeout=180, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    pid, jobs, found = p.stdout.split()
    assert jobs == "2" and int(found) >= len(intro)
    assert log.read_text().split() == [pid]


def test_jobs_two_equals_jobs_one(tmp_path: Path) -> None:
    repo, intro = _repo(tmp_path, secrets=3)
    for i in range(40):  # enough content that two workers really run (not the small-scan shortcut)
        (repo / f"f{i}.txt").write_bytes(os.urandom(150_000).hex().encode())
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "bulk")
    before_git = set(_children(b"git"))
    one = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    two = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert two.stats["jobs"] == 2
    key = [(f.fingerprint, f.path, f.commit and f.commit["id"]) for f in one.findings]
    assert key == [(f.fingerprint, f.path, f.commit and f.commit["id"]) for f in two.findings]
    assert sorted(f.commit["id"] for f in one.findings if f.commit) == sorted(intro)
    assert not set(_children(b"git")) - before_git


def _generated(tmp_path: Path) -> Path:
    from corpora.gen_git_repo import generate

    generate(tmp_path / "g", commits=90, files=60, avg_size=400, changes=9, secrets=6, decoys=2, seed=5)
    return tmp_path / "g"


def test_datastore_written_in_few_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from veritensor_fast.datastore import DataStore

    repo = _generated(tmp_path)
    calls: list[int] = []
    real = DataStore.record

    def record(self: DataStore, memo: str, results: Any) -> None:
        calls.append(len(results))
        real(self, memo, results)

    monkeypatch.setattr(DataStore, "record", record)
    ds = str(tmp_path / "ds.sqlite")
    r = scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds)
    n = r.stats["blobs_scanned"] + r.stats["commits_scanned"]
    assert n > 3 * 256  # several engine batches...
    assert len(calls) == 2 and sum(calls) == n  # ...written as the first batch and then one transaction
    again = scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds)
    assert again.stats["blobs_scanned"] == 0 and len(again.findings) == len(r.findings)


def test_interrupted_sweep_keeps_what_it_scanned(tmp_path: Path) -> None:
    repo = _generated(tmp_path)
    ds = str(tmp_path / "ds.sqlite")
    done: list[int] = []

    class Stop(Exception):
        pass

    def progress(res: Any) -> None:
        done.append(len(res.scanned))
        if len(done) == 3:
            raise Stop

    with pytest.raises(Stop):
        scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds, on_progress=progress)
    r = scan_history([str(repo)], ScanOptions(), jobs=1, datastore=ds)
    commits = len(git_run(repo, "rev-list", "--all").stdout.split())  # listed first: in these batches
    assert r.stats["blobs_from_datastore"] == sum(done) - commits  # all three batches, not only the first
