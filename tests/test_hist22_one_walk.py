"""Issue 16 (history, hist22): a full sweep walks the history once. Provenance's ``git log --raw`` pass is also
the blob listing (``sources/git_walk.py``): no ``rev-list --objects``, and the same findings, whole records
included (rule, path, line, column, fingerprint, commit, provenance, location), errors and counts as the two-walk
listing, on real git repositories built with the real ``git`` CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import gitcmd, history
from veritensor_fast.history import scan_history
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, init_repo, scan_json


def _commit(repo: Path, files: dict[str, str], msg: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-q", "-m", msg)


def _tricky(tmp_path: Path) -> Path:
    """Everything that reaches a blob: edits, a rename, copies in one commit, a path with a newline, a symlink,
    a mode change, a delete, a merged side branch, an unmerged one, an orphan root, a gitlink, a stash, a ref and
    a lightweight tag naming a blob, an annotated tag of a tree, a nested tag, a tag with a token in its message."""
    repo = init_repo(tmp_path / "r")
    tok = [hf_token() for _ in range(12)]
    _commit(repo, {"s0.py": f"T = '{tok[0]}'\n", "n.txt": "plain\n" * 30}, "first")
    _commit(repo, {"s0.py": f"T = '{tok[0]}'\nU = '{tok[1]}'\n"}, "edit")
    (repo / "moved").mkdir()
    git_run(repo, "mv", "s0.py", "moved/s0.py")
    git_run(repo, "commit", "-q", "-m", "rename")
    _commit(repo, {"c/one.env": f"K={tok[2]}\n", "c/two.env": f"K={tok[2]}\n", "a\nb.txt": f"N = '{tok[3]}'\n"},
            "copies in one commit, newline path")
    os.symlink(f"K={tok[4]}", repo / "link")
    _commit(repo, {}, "symlink")
    os.chmod(repo / "n.txt", 0o755)
    _commit(repo, {}, "mode")
    git_run(repo, "checkout", "-q", "-b", "side")
    _commit(repo, {"side.py": f"S = '{tok[5]}'\n"}, "side")
    git_run(repo, "checkout", "-q", "main")
    _commit(repo, {"main2.py": "x = 1\n"}, "main moves on")
    git_run(repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    git_run(repo, "checkout", "-q", "-b", "unmerged")
    _commit(repo, {"wip.py": f"W = '{tok[6]}'\n"}, "wip")
    git_run(repo, "checkout", "-q", "--orphan", "orphan")
    git_run(repo, "rm", "-rq", "--cached", ".")
    _commit(repo, {"orphan.cfg": f"O={tok[7]}\n"}, "orphan root")
    git_run(repo, "checkout", "-q", "-f", "main")
    git_run(repo, "rm", "-q", "n.txt")
    git_run(repo, "commit", "-q", "-m", "delete")
    head = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    git_run(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},vendor/sub")
    git_run(repo, "commit", "-q", "-m", "gitlink")
    (repo / "moved" / "s0.py").write_text(f"STASHED = '{tok[8]}'\n")
    git_run(repo, "stash", "-q")
    (tmp_path / "b.txt").write_text(f"B = '{tok[9]}'\n")
    blob = git_run(repo, "hash-object", "-w", str(tmp_path / "b.txt")).stdout.strip()
    git_run(repo, "update-ref", "refs/blobref", blob)
    git_run(repo, "tag", "blobtag", blob)
    (tmp_path / "t.txt").write_text(f"TT = '{tok[10]}'\n")
    tblob = git_run(repo, "hash-object", "-w", str(tmp_path / "t.txt")).stdout.strip()
    tree = subprocess.run(["git", "-C", str(repo), "mktree"], input=f"100644 blob {tblob}\tin_tree.txt\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    git_run(repo, "tag", "-a", "treetag", "-m", "a tree", tree)
    git_run(repo, "tag", "-a", "v1", "-m", f"release {tok[11]}", "HEAD~2")
    git_run(repo, "tag", "-a", "nested", "-m", "nested", "v1")
    git_run(repo, "repack", "-adq")
    return repo


def _key(r: Any) -> list[tuple[Any, ...]]:
    return sorted((f.rule_id, f.path, f.line, f.column, f.fingerprint, repr(f.location),
                   tuple(sorted((f.commit or {}).items()))) for f in r.findings)


def _errors(r: Any) -> list[tuple[str, str, str]]:
    return [(e.path, e.kind, e.reason) for e in r.errors]


_COUNTS = ("blobs_total", "blobs_scanned", "blobs_listed", "commits_listed", "tags_listed", "commits_scanned",
           "tags_scanned", "later_versions_folded")


class _Spy:
    """The git commands started, in order (``gitcmd.popen``: the background listings)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.args: list[tuple[str, ...]] = []
        real = gitcmd.popen

        def popen(repo: str, args: Any, **kw: Any) -> Any:
            self.args.append(tuple(args))
            return real(repo, args, **kw)

        monkeypatch.setattr(gitcmd, "popen", popen)

    def walks(self) -> list[tuple[str, ...]]:
        """Every history walk that lists trees: ``rev-list --objects`` without ``--no-walk``, ``log --raw``."""
        return [a for a in self.args if (a[:2] == ("rev-list", "--objects") and not any(
            x.startswith("--no-walk") for x in a)) or a[:2] == ("log", "--raw")]


def _sweep(repo: Path, monkeypatch: pytest.MonkeyPatch, one: bool, jobs: int, **kw: Any) -> Any:
    monkeypatch.setattr(GitHistorySource, "one_walk", one, raising=False)
    return scan_history([str(repo)], ScanOptions(), jobs=jobs, **kw)


@pytest.mark.parametrize("jobs", [1, 2])
def test_full_sweep_walks_once_same_records_as_two_walks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         jobs: int) -> None:
    repo = _tricky(tmp_path)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)  # jobs=2: the pool beside the walk, blobs handed out early
    two = _sweep(repo, monkeypatch, False, jobs, use_datastore=False)
    spy = _Spy(monkeypatch)
    one = _sweep(repo, monkeypatch, True, jobs, use_datastore=False)
    assert len(one.findings) >= 12 and _key(one) == _key(two)
    assert _errors(one) == _errors(two)
    assert {k: one.stats.get(k) for k in _COUNTS} == {k: two.stats.get(k) for k in _COUNTS}
    # one history walk: the log pass (listing and provenance), no ``rev-list --objects`` over the commits
    walks = spy.walks()
    assert len(walks) == 1 and walks[0][:2] == ("log", "--raw"), walks
    paths = {f.path for f in one.findings}
    assert {"moved/s0.py", "c/one.env", "a\nb.txt", "link", "side.py", "wip.py", "orphan.cfg",
            "in_tree.txt"} <= paths, paths


def test_first_sweep_with_a_datastore_then_incremental(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first sweep with a datastore lists from the log too; the next (incremental) sweep still finds only what is
    new, and both report what the two-walk sweeps report."""
    repo = _tricky(tmp_path)
    ds1, ds2 = str(tmp_path / "one.sqlite"), str(tmp_path / "two.sqlite")
    runs: dict[bool, list[Any]] = {}
    for one, ds in ((False, ds2), (True, ds1)):
        runs[one] = [_sweep(repo, monkeypatch, one, 1, datastore=ds)]
    _commit(repo, {"late.py": f"L = '{hf_token()}'\n"}, "late secret")
    for one, ds in ((False, ds2), (True, ds1)):
        runs[one].append(_sweep(repo, monkeypatch, one, 1, datastore=ds))
    for a, b in zip(runs[True], runs[False], strict=True):
        assert _key(a) == _key(b) and _errors(a) == _errors(b)
    assert runs[True][1].stats["listing"] == "incremental"
    assert len(runs[True][1].findings) == len(runs[True][0].findings) + 1


def test_clean_history_runs_one_walk_and_ends_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No finding: the log pass was the listing; it ran once and nothing is left running."""
    repo = init_repo(tmp_path / "r")
    for i in range(5):
        _commit(repo, {f"f{i % 2}.txt": f"plain {i}\n"}, f"c{i}")
    spy = _Spy(monkeypatch)
    r = _sweep(repo, monkeypatch, True, 1, use_datastore=False)
    assert not r.findings and not r.errors and r.stats["blobs_total"] == 6
    assert [a[:2] for a in spy.walks()] == [("log", "--raw")]


def test_branch_sweep_keeps_rev_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--branch`` (like ``--since``, ``--range`` and incremental sweeps) keeps ``rev-list --objects``."""
    repo = _tricky(tmp_path)
    spy = _Spy(monkeypatch)
    r = _sweep(repo, monkeypatch, True, 1, use_datastore=False, branches=["side"])
    assert r.findings and any(a[:2] == ("rev-list", "--objects") for a in spy.walks())


def test_corrupt_tree_same_errors_and_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree missing from the database stops the log as it stopped ``rev-list``: the same error, then every blob
    in the database is scanned."""
    repo = init_repo(tmp_path / "r")
    _commit(repo, {"d/x.txt": f"T = '{hf_token()}'\n"}, "sub")
    tree = git_run(repo, "rev-parse", "HEAD:d").stdout.strip()
    os.remove(repo / ".git" / "objects" / tree[:2] / tree[2:])
    two = _sweep(repo, monkeypatch, False, 1, use_datastore=False)
    one = _sweep(repo, monkeypatch, True, 1, use_datastore=False)
    assert [k for _, k, _ in _errors(one)] == [k for _, k, _ in _errors(two)] and "corrupt" in {
        k for _, k, _ in _errors(one)}
    assert _key(one) == _key(two) and one.findings


def _fifo_repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "r")
    _commit(repo, {"s.py": f"T = '{hf_token()}'\n"}, "secret")
    os.mkfifo(tmp_path / "fifo")
    with open(repo / ".git" / "config", "a", encoding="utf-8") as fh:
        fh.write(f"[diff]\n\torderFile = {tmp_path / 'fifo'}\n[mailmap]\n\tfile = {tmp_path / 'fifo'}\n")
    return repo


def test_fifo_order_file_or_mailmap_does_not_hang_history(tmp_path: Path) -> None:
    """``diff.orderFile`` and ``mailmap.file`` in a shipped repository's config are files ``git log`` opened with a
    blocking ``open``: a FIFO there hung ``scan --history`` forever once it had a finding."""
    repo = _fifo_repo(tmp_path)
    rc, rep = scan_json("--history", str(repo), "--no-datastore", timeout=60)
    assert rc == 1 and [f["path"] for f in rep["findings"]] == ["s.py"]
    assert rep["findings"][0]["commit"]["id"] == git_run(repo, "rev-parse", "HEAD").stdout.strip()


def test_fifo_order_file_does_not_hang_staged(tmp_path: Path) -> None:
    repo = _fifo_repo(tmp_path)
    (repo / "new.py").write_text(f"N = '{hf_token()}'\n")
    git_run(repo, "add", "new.py")
    rc, rep = scan_json("--staged", cwd=repo, timeout=60)
    assert rc == 1 and [f["path"] for f in rep["findings"]] == ["new.py"]


def test_missing_blob_is_named_at_its_path_and_the_rest_keep_theirs(tmp_path: Path) -> None:
    """``rev-list --objects`` died on a blob missing from the database, and the sweep fell back to every blob in
    the database without paths or provenance (the secret's later version came out again at ``unreachable/<oid>``).
    The log never reads blobs: the missing one is reported at its path, the others keep path and provenance."""
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    for when, files in (("2020-01-01T00:00:00", {"s.py": f"T = '{tok}'\n", "y.txt": "plain\n"}),
                        ("2021-01-01T00:00:00", {"s.py": f"T = '{tok}'\nU = 1\n"})):
        for name, text in files.items():
            (repo / name).write_text(text)
        git_run(repo, "add", "-A")
        git_run(repo, "commit", "-q", "-m", when, "--date", when)
    blob = git_run(repo, "rev-parse", "HEAD:y.txt").stdout.strip()
    os.remove(repo / ".git" / "objects" / blob[:2] / blob[2:])
    first = git_run(repo, "rev-parse", "HEAD~1").stdout.strip()
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert [(f.path, (f.commit or {}).get("id")) for f in r.findings] == [("s.py", first)]
    assert [(e.path, e.kind) for e in r.errors] == [("y.txt", "corrupt")] and blob in r.errors[0].reason


def test_diff_relative_in_the_repository_config_hides_nothing(tmp_path: Path) -> None:
    """``diff.relative=true`` (the repository's own config) makes ``git log --raw`` run from a subdirectory show only
    the paths under it: a sweep of ``repo/sub`` lost every other finding's provenance (and a listing from the log
    would lose the findings). ``--no-relative`` on every log and diff."""
    repo = init_repo(tmp_path / "r")
    _commit(repo, {"top.py": f"T = '{hf_token()}'\n", "sub/a.txt": "plain\n"}, "a")
    git_run(repo, "config", "diff.relative", "true")
    rc, rep = scan_json("--history", str(repo / "sub"), "--no-datastore", timeout=60)
    assert rc == 1 and [(f["path"], f["commit"]["id"]) for f in rep["findings"]] == [
        ("top.py", git_run(repo, "rev-parse", "HEAD").stdout.strip())]
