"""Issue 16 (history, hist18): provenance's ``git log`` starts while ``rev-list --objects`` still walks (a core
idles then), and is ended when the listing is done unless a blob finding has shown it is needed. Each test checks behaviour (what runs when, what is reported), never time."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import gitcmd, history
from veritensor_fast.findings import Item
from veritensor_fast.history import scan_history
from veritensor_fast.sources import git_list
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.sources.git_overlap import OverlappedListing
from veritensor_fast.sources.git_spool import Spool
from veritensor_fast.worker import ScanOptions

from conftest import child_argvs, git_run, hf_token, init_repo


@pytest.fixture(autouse=True)
def _two_walks(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the two-walk listing (``rev-list --objects``, then ``git log``), which ``--branch``
    sweeps still use; a full sweep lists from the log itself (``git_walk``, ``tests/test_hist22_one_walk.py``)."""
    monkeypatch.setattr(GitHistorySource, "one_walk", False)


def _repo(tmp_path: Path, secrets: int = 2) -> Path:
    repo = init_repo(tmp_path / "r")
    for i in range(secrets):
        (repo / f"s{i}.py").write_text(f"T = '{hf_token()}'\n")
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"secret {i}")
    for i in range(4):
        (repo / f"n{i % 2}.txt").write_text(f"plain {i}\n" * 40)
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"edit {i}")
    return repo


def _state(pid: int, want: str = "", tries: int = 200) -> str:
    """The process state letter (``/proc``); with ``want``, polled until it is that (a signal lands async)."""
    for _ in range(tries):
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            st = fh.read().rsplit(")", 1)[1].split()[0]
        if not want or st == want or (want.startswith("!") and st != want[1:]):
            break
        time.sleep(0.01)
    return st


def _git_children(repo: Path) -> list[list[bytes]]:
    """This process's live git children working on ``repo`` (other tests' leftovers are not ours to judge)."""
    return [a for a in child_argvs().values() if b"git" in a[0] and str(repo).encode() in a]


def _is_log(args: tuple[str, ...]) -> bool:
    return args[:2] == ("log", "--raw")


class _Spy:
    """Records git commands started (``gitcmd.popen``) and when the blob listing is parsed, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, tuple[str, ...]]] = []
        self.logs: list[Any] = []
        real_popen, real_parse = gitcmd.popen, git_list.parse_reachable

        def popen(repo: str, args: Any, **kw: Any) -> Any:
            self.events.append(("git", tuple(args)))
            proc = real_popen(repo, args, **kw)
            if _is_log(tuple(args)):
                self.logs.append(proc)
            return proc

        def parse(spool: Any) -> Any:
            self.events.append(("listed", ()))
            return real_parse(spool)

        real_iter = OverlappedListing.__iter__

        def overlapped(listing: Any) -> Any:
            self.events.append(("listed", ()))
            return real_iter(listing)

        monkeypatch.setattr(gitcmd, "popen", popen)
        monkeypatch.setattr(git_list, "parse_reachable", parse)
        monkeypatch.setattr(OverlappedListing, "__iter__", overlapped)

    def index(self, what: str) -> int:
        return next(i for i, e in enumerate(self.events) if e[0] == what or (what == "log" and _is_log(e[1])))


def _key(r: Any) -> list[tuple[Any, ...]]:
    return [(f.rule_id, f.path, f.line, f.column, f.fingerprint, tuple(sorted((f.commit or {}).items())))
            for f in r.findings]


def test_log_starts_beside_the_walk_and_is_ended_with_it_without_a_finding(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=0)
    spy = _Spy(monkeypatch)
    calls: list[tuple[str, tuple[str, ...]]] = []
    for name in ("close", "background"):
        real = getattr(Spool, name)

        def rec(self: Spool, _real: Any = real, _name: str = name) -> None:
            if _is_log(tuple(self.args[:2])):  # the listing's own spools are closed too
                calls.append((_name, tuple(self.args[:2])))
            _real(self)

        monkeypatch.setattr(Spool, name, rec)
    src = GitHistorySource(str(repo), use_datastore=False)
    src.early_log = True
    src.validate()
    src.start()
    first_blob = None
    for it in src.items():
        if getattr(it, "kind", "") == "blob" and first_blob is None:
            first_blob = list(calls)  # what had happened when the first blob was handed out
    assert spy.index("log") < spy.index("listed")  # started before the blob walk was read
    # at the lowest priority, and ended once the walk was done (blobs it named were handed out meanwhile)
    assert first_blob == [("background", ("log", "--raw"))]
    assert calls == [("background", ("log", "--raw")), ("close", ("log", "--raw"))]
    assert src._log is None and spy.logs[0].poll() is not None  # ended and reaped, never left stopped
    assert not _git_children(repo)
    src.close()


def test_low_priority_log_of_a_long_history_is_never_stopped_and_is_reaped(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass still running at nice 19 is ended by ``close`` and reaped; the Spool has no way to stop (SIGSTOP)
    a git: a stopped child outlives a scanner killed with SIGKILL."""
    repo = _repo(tmp_path, secrets=0)
    real = gitcmd.popen
    monkeypatch.setattr(gitcmd, "popen", lambda r, a, **kw: real(r, a, **{**kw, "stdin": subprocess.PIPE}))
    sp = Spool(str(repo), ["cat-file", "--batch"])  # its input stays open: it runs until ended
    try:
        assert sp.proc is not None
        pid = sp.proc.pid
        sp.background()
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        assert not hasattr(sp, "pause")
    finally:
        sp.close()
    assert sp.proc is None and not _git_children(repo)


def test_early_log_same_findings_and_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=3)
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)  # this small history gets the pool (and early log)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert len(r.findings) == 3 and not r.errors
    assert _key(r) == _key(base)
    assert all((f.commit or {}).get("id") for f in r.findings)
    assert sum(1 for e in spy.events if _is_log(e[1])) <= 2  # the early pass, and a fresh one if it was ended
    assert spy.index("log") < spy.index("listed")
    assert not _git_children(repo)


def test_clean_sweep_stops_the_early_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=0)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert not r.findings and not r.errors
    assert len(spy.logs) == 1 and spy.logs[0].poll() is not None
    assert not _git_children(repo)


def test_early_log_with_datastore_and_commit_findings_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret only in a commit message needs no ``git log`` pass: the early one is ended, not waited on."""
    repo = _repo(tmp_path, secrets=0)
    git_run(repo, "commit", "-q", "--allow-empty", "-m", f"token {hf_token()}")
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, datastore=str(tmp_path / "ds.sqlite"))
    assert len(r.findings) == 1 and r.findings[0].path.startswith("commit:")
    assert _key(r) == _key(base)
    assert spy.logs and spy.logs[0].poll() is not None
    assert not _git_children(repo)


def test_unprivileged_early_log_is_replaced_by_a_fresh_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raising a nice-19 pass back needs privilege: without it the early pass is dropped and a fresh one started
    at the first finding (what happens without the early pass); provenance is the same."""
    repo = _repo(tmp_path, secrets=2)
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(Spool, "foreground", lambda self: False)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert _key(r) == _key(base) and len(r.findings) == 2
    assert len(spy.logs) == 2 and all(p.poll() is not None for p in spy.logs)
    assert not _git_children(repo)


def _tricky(tmp_path: Path) -> Path:
    """Secrets, a path with a newline, a blob at two paths, a deleted file, a side branch, a tag on a blob."""
    repo = _repo(tmp_path, secrets=2)
    (repo / "a\nb.txt").write_text(f"K = '{hf_token()}'\n")
    (repo / "copy.py").write_text((repo / "s0.py").read_text())
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "newline path and copy")
    git_run(repo, "checkout", "-q", "-b", "side")
    (repo / "side.py").write_text(f"S = '{hf_token()}'\n")
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "side")
    git_run(repo, "checkout", "-q", "main")
    git_run(repo, "rm", "-q", "n0.txt")
    git_run(repo, "commit", "-q", "-m", "delete")
    (tmp_path / "loose.txt").write_text(f"L = '{hf_token()}'\n")
    blob = git_run(repo, "hash-object", "-w", str(tmp_path / "loose.txt")).stdout.strip()
    git_run(repo, "tag", "blobtag", blob)
    git_run(repo, "repack", "-adq")
    return repo


def _listing(repo: Path, early: bool) -> tuple[list[tuple[str, str, str, int]], list[tuple[str, str, str]], Any]:
    src = GitHistorySource(str(repo), use_datastore=False)
    src.early_log = early
    src.validate()
    src.start()
    items, errors = [], []
    for it in src.items():
        if isinstance(it, Item):
            items.append((it.kind, it.key, it.path, it.size))
        else:
            errors.append((it.path, it.kind, it.reason))
    src.close()
    return sorted(items), sorted(errors), {k: v for k, v in src.stats.items() if k != "listing_seconds"}


def test_overlapped_listing_lists_exactly_what_the_sequential_one_does(tmp_path: Path) -> None:
    repo = _tricky(tmp_path)
    old, new = _listing(repo, False), _listing(repo, True)
    assert new[0] == old[0] and new[1] == old[1]
    assert {k: v for k, v in new[2].items() if k != "blobs_listed_early"} == old[2]
    paths = {p for _, _, p, _ in new[0]}
    assert "a" in paths and "copy.py" in paths  # "a\nb.txt" as rev-list names it (cut at the newline), as before
    assert new[2]["blobs_listed_early"] > 0 and "blobs_listed_early" not in old[2]


def test_overlapped_sweep_same_findings_as_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _tricky(tmp_path)
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert len(base.findings) >= 5 and _key(r) == _key(base)
    assert [(e.path, e.kind, e.reason) for e in r.errors] == [(e.path, e.kind, e.reason) for e in base.errors]
    assert not _git_children(repo)


def test_broken_walk_overlapped_same_errors_and_fallback(tmp_path: Path) -> None:
    """A tree missing from the database stops ``rev-list``: reported, then every blob in the database is
    scanned, the same with the listing overlapped as without."""
    repo = init_repo(tmp_path / "r")
    (repo / "d").mkdir()
    (repo / "d" / "x.txt").write_text(f"T = '{hf_token()}'\n")
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "sub")
    tree = git_run(repo, "rev-parse", "HEAD:d").stdout.strip()
    os.remove(repo / ".git" / "objects" / tree[:2] / tree[2:])
    old, new = _listing(repo, False), _listing(repo, True)
    assert new[1] == old[1] and any(k == "corrupt" for _, k, _ in new[1])
    assert new[0] == old[0]


def test_blobs_are_handed_out_while_the_walk_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk's output is read as git writes it: the first blob comes out while the walk has not ended."""
    repo = _repo(tmp_path, secrets=1)
    lines = git_run(repo, "rev-list", "--objects", "--all", "--filter=object:type=blob").stdout.splitlines()
    blobs = [ln for ln in lines if " " in ln]
    real = gitcmd.popen
    monkeypatch.setattr(gitcmd, "popen", lambda r, a, **kw: real(r, a, **{**kw, "stdin": subprocess.PIPE}))
    # stands in for ``rev-list --objects``: echoes "<oid> <path>" for each line it is given, until its input ends
    walk = Spool(str(repo), ["cat-file", "--batch-check=%(objectname) %(rest)"])
    monkeypatch.setattr(gitcmd, "popen", real)
    pack = Spool(str(repo), git_list.PACK_ORDER)
    assert walk.proc is not None and walk.proc.stdin is not None
    walk.proc.stdin.write((blobs[0] + "\n").encode())
    walk.proc.stdin.flush()
    listing = OverlappedListing(walk, pack)
    it = iter(listing)
    first = next(it)
    assert walk.proc.poll() is None  # handed out before the walk ended
    assert (first[0], first[1], first[3]) == (blobs[0].split(" ", 1)[0], "blob", blobs[0].split(" ", 1)[1])
    walk.proc.stdin.write(("\n".join(blobs[1:]) + "\n").encode())
    walk.proc.stdin.close()
    rest = list(it)
    assert sorted([first[0], *(r[0] for r in rest)]) == sorted(b.split(" ", 1)[0] for b in blobs)
    assert listing.early >= 1 and listing.failure is None
    walk.close()
    pack.close()
