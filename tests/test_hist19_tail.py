"""Issue 16 (history, hist19): the serial tail of a sweep. Provenance after the scan no longer indexes every
scanned blob by path; that index is built only for a finding whose blob the engine did not report (an engine
or wrapper without the ``on_batch`` hook). Each test checks what is reported, never time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
