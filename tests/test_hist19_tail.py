"""Issue 16 (history, hist19): the serial tail of a sweep. Provenance after the scan no longer indexes every
scanned blob by path; that index is built only for a finding whose blob the engine did not report (an engine
or wrapper without the ``on_batch`` hook). Each test checks what is reported, never time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import history
from veritensor_fast.findings import Finding, Item, ScanError
from veritensor_fast.history import scan_history
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, init_repo


def _repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Two files with a secret each, one of them edited later (two blob versions at one path)."""
    repo = init_repo(tmp_path / "r")
    intro: dict[str, str] = {}
    for name in ("a.py", "b.py"):
        (repo / name).write_text(f"T = '{hf_token()}'\n")
        git_run(repo, "add", name)
        git_run(repo, "commit", "-q", "-m", f"add {name}")
        intro[name] = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    (repo / "b.py").write_text(f"T = '{hf_token()}'\n")
    git_run(repo, "commit", "-q", "-am", "edit b")
    intro["b.py@2"] = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    return repo, intro


class _NoHook:
    """A source wrapper without ``on_batch``: the engine cannot tell the source which blob a finding is in."""

    def __init__(self, src: GitHistorySource) -> None:
        self.src = src

    def items(self) -> Iterator[Item | ScanError]:
        return self.src.items()

    def annotate(self, findings: Any) -> list[Finding]:
        return self.src.annotate(findings)


@pytest.mark.parametrize("hook", [True, False])
def test_provenance_without_the_batch_hook(tmp_path: Path, hook: bool) -> None:
    """With the hook every finding gets its blob and introducing commit. Without it, a path that names one
    blob still resolves to it (a.py); a path with two versions (b.py) cannot be told apart and gets none."""
    repo, intro = _repo(tmp_path)
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False, group=False,
                     wrap_source=None if hook else _NoHook)
    assert not r.errors
    got = sorted((f.path, (f.commit or {}).get("id")) for f in r.findings)
    if hook:
        assert got == sorted([("a.py", intro["a.py"]), ("b.py", intro["b.py"]), ("b.py", intro["b.py@2"])])
    else:
        assert got == sorted([("a.py", intro["a.py"]), ("b.py", None), ("b.py", None)])
    assert all(f.commit is not None and (f.commit["blob"] is None) == (not hook and f.path == "b.py")
               for f in r.findings)


def _history(tmp_path: Path) -> Path:
    """Files edited over several commits (older versions become deltas after a repack), one renamed, one
    blob at two paths, and an old secret version that HEAD no longer holds."""
    repo = init_repo(tmp_path / "h")
    body = "".join(f"line {i} of a long enough file to delta well\n" for i in range(200))
    for c in range(6):
        for f in range(3):
            (repo / f"f{f}.txt").write_text(body + f"edit {c}\n")
        (repo / "cfg.py").write_text(f"T = '{hf_token()}'\n" if c < 3 else "T = None\n")
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"c{c}")
    git_run(repo, "mv", "f0.txt", "moved.txt")
    (repo / "copy.py").write_text((repo / "f1.txt").read_text())
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "rename and copy")
    git_run(repo, "repack", "-adq", "--window=50", "--depth=50")
    return repo


def test_early_deltas_hand_out_every_named_blob_during_the_walk_with_the_same_findings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``early_deltas``: each blob is handed out as ``rev-list`` names it, deltas included, at the same path as
    without it (the listing and the findings, provenance included, are identical)."""
    repo = _history(tmp_path)
    deltas = sum(1 for ln in git_run(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) "
                                     "%(deltabase)").stdout.splitlines()
                 if ln.startswith("blob ") and ln.split()[1].strip("0"))
    assert deltas >= 5  # the repository holds deltas: the option changes what goes early

    def listing(early: bool) -> tuple[list[tuple[str, str, str, int]], int]:
        src = GitHistorySource(str(repo), use_datastore=False, early_deltas=early)
        src.early_log = True  # as with a pool beside the walk
        try:
            got = [(it.kind, it.key, it.path, it.size) for it in src.items() if isinstance(it, Item)]
        finally:
            src.close()
        return got, src.stats["blobs_listed_early"]

    plain, early_plain = listing(False)
    both, early_both = listing(True)
    assert sorted(plain) == sorted(both) and len(set(plain)) == len(plain)
    blobs = sum(1 for k, *_ in both if k == "blob")
    assert early_plain <= blobs - deltas and early_both == blobs

    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)  # a pool scans beside the walk, as for a large one

    def findings(early: bool) -> list[tuple[Any, ...]]:
        r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False, early_deltas=early)
        assert not r.errors and r.stats["blobs_listed_early"] == (blobs if early else early_plain)
        return sorted((f.rule_id, f.path, f.line, f.column, f.fingerprint, str(f.commit)) for f in r.findings)

    assert findings(True) == findings(False) and len(findings(False)) == 3
