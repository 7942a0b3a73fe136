"""Issue 16 (history, hist18): provenance's ``git log`` starts while ``rev-list --objects`` still walks (a core
idles then), is paused when the listing is done until a blob finding needs it, and is stopped at the end of a
clean sweep. Each test checks behaviour (what runs when, what is reported), never time."""

from __future__ import annotations

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


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


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
            assert _state(pid) == "T"
        assert sp.wait() == 0  # waiting on a paused pass lets it go on first, never hangs
        assert sp.out.read() == want and want
    finally:
        sp.close()


def test_log_starts_beside_the_walk_and_is_paused_until_a_finding(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, secrets=0)
    spy = _Spy(monkeypatch)
    src = GitHistorySource(str(repo), use_datastore=False)
    src.early_log = True
    src.validate()
    src.start()
    items = list(src.items())
    assert items and spy.index("log") < spy.index("listed")  # started before the blob walk was read
    assert src._log is not None and src._log.paused
    assert spy.logs and (spy.logs[0].poll() is not None or _state(spy.logs[0].pid) == "T")
    src.close()
    assert spy.logs[0].poll() is not None  # stopped, not left behind in the stopped state
    assert not [a for a in child_argvs().values() if b"log" in a]


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
