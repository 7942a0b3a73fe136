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
from veritensor_fast.sources.git_overlap import ALL_DEPTHS
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
    for c in range(8):
        for f in range(3):
            (repo / f"f{f}.txt").write_text(f"file {f}\n" + body * (c + 1) + f"edit {c}\n")
        (repo / "cfg.py").write_text(f"T = '{hf_token()}'\n" if c < 3 else "T = None\n")
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"c{c}")
    git_run(repo, "mv", "f0.txt", "moved.txt")
    (repo / "copy.py").write_text((repo / "f1.txt").read_text())
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "rename and copy")
    git_run(repo, "repack", "-adq", "--window=50", "--depth=50")
    return repo


def _chain_depths(repo: Path) -> dict[str, int]:
    """Blob id -> links of its delta chain down to a whole object, from git's own listing."""
    base: dict[str, str] = {}
    for ln in git_run(repo, "cat-file", "--batch-all-objects",
                      "--batch-check=%(objectname) %(objecttype) %(deltabase)").stdout.splitlines():
        oid, otype, delta = ln.split()
        if otype == "blob":
            base[oid] = delta if delta.strip("0") else ""
    depths: dict[str, int] = {}
    for oid in base:
        n, o = 0, oid
        while base[o]:
            n, o = n + 1, base[o]
        depths[oid] = n
    return depths


@pytest.mark.parametrize("depth", [1, 2, ALL_DEPTHS])
def test_early_depth_hands_out_short_chains_during_the_walk_with_the_same_findings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int) -> None:
    """``early_depth``: the blobs whose delta chain has at most that many links (every blob: ``ALL_DEPTHS``) are
    handed out as ``rev-list`` names them, at the same path as without it: the listing and the findings,
    provenance included, are identical."""
    repo = _history(tmp_path)
    depths = _chain_depths(repo)
    assert max(depths.values()) >= 3  # chains of several links: each depth hands out a different set

    def listing(d: int) -> tuple[list[tuple[str, str, str, int]], int]:
        src = GitHistorySource(str(repo), use_datastore=False, early_depth=d)
        src.early_log = True  # as with a pool beside the walk
        try:
            got = [(it.kind, it.key, it.path, it.size) for it in src.items() if isinstance(it, Item)]
        finally:
            src.close()
        return got, src.stats["blobs_listed_early"]

    plain, early_plain = listing(0)
    got, early = listing(depth)
    assert sorted(plain) == sorted(got) and len(set(got)) == len(got)
    assert early_plain == sum(1 for v in depths.values() if v == 0)
    assert early == sum(1 for v in depths.values() if v <= depth) > early_plain
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)  # a pool scans beside the walk, as for a large one

    def findings(d: int) -> list[tuple[Any, ...]]:
        r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False, early_depth=d)
        assert not r.errors and r.stats["blobs_listed_early"] == (early if d else early_plain)
        return sorted((f.rule_id, f.path, f.line, f.column, f.fingerprint, str(f.commit)) for f in r.findings)

    assert findings(depth) == findings(0) and len(findings(0)) == 3
