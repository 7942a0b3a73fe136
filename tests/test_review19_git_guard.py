"""review19: ways past ``git_guard`` that the integration branch let through, each making ``git`` block on a
FIFO (or read another file than the check looked at). On integ each repository below passed the check and
``scan --history`` hung until killed; now each is refused (exit 2) before any git command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_trust19_git_guard import _refused, _repo

from veritensor_fast import git_guard

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _fifo_repo(tmp_path: Path, config_tail: str) -> tuple[Path, Path]:
    repo = _repo(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with open(repo / ".git" / "config", "a") as fh:
        fh.write(config_tail.replace("FIFO", str(fifo)))
    return repo, fifo


def test_an_include_past_the_first_mib_of_config(tmp_path: Path) -> None:
    """git reads the whole config; the check read its first MiB only."""
    repo, fifo = _fifo_repo(tmp_path, "#" + "x" * (1 << 20) + "\n[include]\n\tpath = FIFO\n")
    _refused(repo, fifo)


def test_an_include_after_a_subsection_holding_a_bracket(tmp_path: Path) -> None:
    """A quoted subsection may hold ``]``; the check took the first ``]`` for the header's end and skipped the
    ``path`` on the same line. ``hasconfig`` makes the condition true from the repository's own config."""
    repo, fifo = _fifo_repo(tmp_path, '[remote "o"]\n\turl = a]b\n[includeIf "hasconfig:remote.*.url:*]*"] path = FIFO\n')
    _refused(repo, fifo)


def test_an_include_under_gits_prefix(tmp_path: Path) -> None:
    """``%(prefix)/`` is git's install prefix; ``..`` from it reaches any file. The check joined it to the
    config's directory, where nothing exists."""
    repo, fifo = _fifo_repo(tmp_path, "[include]\n\tpath = %(prefix)/" + "../" * 40 + "FIFO\n")
    _refused(repo, fifo)


def test_an_alternate_past_the_first_mib(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    alt = tmp_path / "alt"
    (alt / "pack").mkdir(parents=True)
    fifo = alt / "pack" / "x.pack"
    os.mkfifo(fifo)
    (repo / ".git" / "objects" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "objects" / "info" / "alternates").write_text("#" + "x" * (1 << 20) + f"\n{alt}\n")
    _refused(repo, fifo)


CHECK = "import sys; from veritensor_fast import git_guard as g\ntry:\n g.check(sys.argv[1])\nexcept g.UnsafeRepository as e:\n print(e.args[0])"


@pytest.mark.parametrize("target", ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "LINK"])
def test_an_include_of_standard_input(tmp_path: Path, target: str) -> None:
    """``/dev/stdin`` is this process's standard input when the check stats it (``/dev/null`` here: fine) but
    git's own when git opens it: ``cat-file --batch`` would read its request pipe as config and hang."""
    repo = _repo(tmp_path)
    if target == "LINK":
        (repo / ".git" / "inc").symlink_to("/dev/stdin")
        target = "inc"
    with open(repo / ".git" / "config", "a") as fh:
        fh.write(f"[include]\n\tpath = {target}\n")
    p = subprocess.run([sys.executable, "-c", CHECK, str(repo)], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30, check=True, env=dict(os.environ))
    assert p.stdout.strip(), "not refused"


def test_a_config_too_large_to_check_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    with open(repo / ".git" / "config", "a") as fh:
        fh.write("#" * 5000 + "\n")
    monkeypatch.setattr(git_guard, "MAX_LIST_FILE", 4096, raising=False)
    git_guard._DONE.clear()
    with pytest.raises(git_guard.UnsafeRepository) as exc:
        git_guard.check(str(repo))
    assert exc.value.args[0].endswith("config") and "over" in exc.value.args[1]


def test_a_submodule_and_a_linked_worktree_are_not_refused(tmp_path: Path) -> None:
    """No false refusal: a ``.git`` file (``gitdir:``), ``commondir``, a relative include and ``/dev/null``."""
    repo = _repo(tmp_path)
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(tmp_path / "wt")], check=True,
                   capture_output=True)
    (repo / ".git" / "inc.cfg").write_text("[core]\n\tabbrev = 12\n")
    with open(repo / ".git" / "config", "a") as fh:
        fh.write("[include]\n\tpath = inc.cfg\n\tpath = /dev/null\n\tpath = %(prefix)/share/none\n")
    git_guard._DONE.clear()
    git_guard.check(str(tmp_path / "wt"))
    git_guard.check(str(repo))


@pytest.mark.parametrize("where", ["reftable/tables.list", "objects/pack/multi-pack-index.d/multi-pack-index-chain",
                                   "objects/info/commit-graphs/commit-graph-chain"])
def test_newer_gits_ref_and_index_chains(tmp_path: Path, where: str) -> None:
    """git 2.45+ reads ``reftable/`` (``extensions.refStorage=reftable``), 2.47+ an incremental
    multi-pack-index chain; the check looked at neither (git 2.39 here cannot show the hang)."""
    repo = _repo(tmp_path)
    fifo = repo / ".git" / where
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    git_guard._DONE.clear()
    with pytest.raises(git_guard.UnsafeRepository):
        git_guard.check(str(repo))


def _hostile_parent(tmp_path: Path) -> tuple[Path, Path]:
    repo, fifo = _fifo_repo(tmp_path, "[include]\n\tpath = FIFO\n")
    return repo, fifo


def test_an_empty_git_directory_does_not_hide_the_repository_above(tmp_path: Path) -> None:
    """git's discovery passes over a ``.git`` directory that is not a repository and goes on upward; the check
    stopped at the first ``.git`` it saw."""
    repo, fifo = _hostile_parent(tmp_path)
    sub = repo / "sub"
    (sub / ".git").mkdir(parents=True)
    (sub / ".git" / "HEAD").write_text("not a ref\n")
    _refused(sub, fifo)


def test_discovery_starts_from_the_physical_directory(tmp_path: Path) -> None:
    """git runs in ``-C path`` and discovers upward from ``getcwd()``: a linked directory's real parents, not
    its lexical ones."""
    repo, fifo = _hostile_parent(tmp_path)
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    outside = tmp_path / "shipped"
    outside.mkdir()
    (outside / "sub").symlink_to(deep)
    _refused(outside / "sub", fifo)


def test_a_git_directory_with_its_objects_elsewhere_is_checked_once(tmp_path: Path) -> None:
    """No false refusal and no walk upward past a valid repository (a worktree's ``commondir``)."""
    repo = _repo(tmp_path)
    git_guard._DONE.clear()
    assert git_guard._gitdirs(str(repo / "k.txt")) == [str(repo / ".git")]


def test_a_commondir_fifo_does_not_block_the_check(tmp_path: Path) -> None:
    """The check opened ``commondir`` without looking at its type first: a FIFO there blocked the check."""
    repo = _repo(tmp_path)
    os.mkfifo(repo / ".git" / "commondir")
    p = subprocess.run(["timeout", "-s", "KILL", "20", sys.executable, "-c", CHECK, str(repo)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
                       env=dict(os.environ))
    assert p.returncode == 0 and p.stdout.strip().endswith("commondir"), (p.returncode, p.stderr[-500:])
