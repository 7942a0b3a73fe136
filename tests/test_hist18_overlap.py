"""Issue 16 (history, hist18): provenance's ``git log`` starts while ``rev-list --objects`` still walks (a core
idles then), is paused when the listing is done until a blob finding needs it, and is stopped at the end of a
clean sweep. Each test checks behaviour (what runs when, what is reported), never time."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import gitcmd, history
from veritensor_fast.history import scan_history
from veritensor_fast.sources import git_list
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.sources.git_provenance import LOG_ARGS
from veritensor_fast.sources.git_spool import Spool
from veritensor_fast.worker import ScanOptions

from conftest import child_argvs, git_run, hf_token, init_repo


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

        monkeypatch.setattr(gitcmd, "popen", popen)
        monkeypatch.setattr(git_list, "parse_reachable", parse)

    def index(self, what: str) -> int:
        return next(i for i, e in enumerate(self.events) if e[0] == what or (what == "log" and _is_log(e[1])))


def _key(r: Any) -> list[tuple[Any, ...]]:
    return [(f.rule_id, f.path, f.line, f.column, f.fingerprint, tuple(sorted((f.commit or {}).items())))
            for f in r.findings]


def test_paused_spool_resumes_on_wait_with_its_whole_output(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    ref = Spool(str(repo), [*LOG_ARGS, "--all"])
    want = ref.out.read() if ref.wait() == 0 else None
    ref.close()
    sp = Spool(str(repo), [*LOG_ARGS, "--all"])
    try:
        assert sp.proc is not None
        pid = sp.proc.pid
        sp.pause()
        if sp.paused:  # git may already have finished (a tiny history): nothing to stop then
            assert _state(pid, "T") == "T"
        assert sp.wait() == 0  # waiting on a paused pass lets it go on first, never hangs
        assert sp.out.read() == want and want
    finally:
        sp.close()


def test_log_starts_beside_the_walk_and_is_paused_until_a_finding(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=0)
    spy = _Spy(monkeypatch)
    calls: list[tuple[str, tuple[str, ...]]] = []
    for name in ("pause", "background"):
        real = getattr(Spool, name)

        def rec(self: Spool, _real: Any = real, _name: str = name) -> None:
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
    # at the lowest priority, and paused once the walk was read, before any blob was scanned
    assert first_blob == [("background", ("log", "--raw")), ("pause", ("log", "--raw"))]
    assert src._log is not None and (src._log.paused or spy.logs[0].poll() is not None)
    src.close()
    assert spy.logs[0].poll() is not None  # stopped, not left behind in the stopped state
    assert not [a for a in child_argvs().values() if b"log" in a]


def test_paused_low_priority_log_of_a_long_history_is_stopped_and_reaped(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that is still running when paused is in the stopped state at nice 19; closing it reaps it."""
    repo = _repo(tmp_path, secrets=0)
    real = gitcmd.popen
    monkeypatch.setattr(gitcmd, "popen", lambda r, a, **kw: real(r, a, **{**kw, "stdin": subprocess.PIPE}))
    sp = Spool(str(repo), ["cat-file", "--batch"])  # its input stays open: it runs until stopped
    try:
        assert sp.proc is not None
        pid = sp.proc.pid
        sp.background()
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        sp.pause()
        assert sp.paused and _state(pid, "T") == "T"
        sp.resume()
        assert not sp.paused and _state(pid, "!T") != "T"
        sp.pause()
    finally:
        sp.close()
    assert sp.proc is None and not [a for a in child_argvs().values() if b"cat-file" in a]


def test_early_log_same_findings_and_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=3)
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)  # this small history gets the pool (and early log)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert len(r.findings) == 3 and not r.errors
    assert _key(r) == _key(base)
    assert all((f.commit or {}).get("id") for f in r.findings)
    assert sum(1 for e in spy.events if _is_log(e[1])) == 1  # one pass: the early one, resumed
    assert spy.index("log") < spy.index("listed")
    assert not [a for a in child_argvs().values() if b"git" in a[0]]


def test_clean_sweep_stops_the_early_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=0)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert not r.findings and not r.errors
    assert len(spy.logs) == 1 and spy.logs[0].poll() is not None
    assert not [a for a in child_argvs().values() if b"git" in a[0]]


def test_early_log_with_datastore_and_commit_findings_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret only in a commit message needs no ``git log`` pass: the paused one is stopped, not waited on."""
    repo = _repo(tmp_path, secrets=0)
    git_run(repo, "commit", "-q", "--allow-empty", "-m", f"token {hf_token()}")
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, datastore=str(tmp_path / "ds.sqlite"))
    assert len(r.findings) == 1 and r.findings[0].path.startswith("commit:")
    assert _key(r) == _key(base)
    assert spy.logs and spy.logs[0].poll() is not None
    assert not [a for a in child_argvs().values() if b"git" in a[0]]


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
    assert not [a for a in child_argvs().values() if b"git" in a[0]]
