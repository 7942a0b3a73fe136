"""trust19: a repository shipped as files cannot make git block forever (``git_guard``).

On main, ``scan --history`` of a repository whose ``.git/config`` includes a FIFO (or whose ``HEAD``, a loose
object or an alternate's pack is one) hung forever: git opens each with a blocking ``open``, even for
``rev-parse``. Now the scan refuses the repository with a clear error (exit 2) and starts no git command.
Each CLI run has a hard timeout; a test's FIFOs are opened for writing afterwards so a git left blocked on main
ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from veritensor_fast import git_guard

from conftest import CLI, git_run, token_repo

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _scan(repo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["timeout", "-s", "KILL", "40", *CLI, "scan", "--history", "--no-datastore",
                           "--no-progress", "--jobs", "1", *extra, str(repo)],
                          capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ))


def _release(fifo: Path) -> None:
    """Unblock a reader a run left behind (opening a FIFO read-write never blocks on Linux)."""
    try:
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))
    except OSError:
        pass


def _repo(tmp_path: Path) -> Path:
    return token_repo(tmp_path / "r")


def _refused(repo: Path, fifo: Path) -> None:
    try:
        p = _scan(repo)
    finally:
        _release(fifo)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "is a FIFO or device" in p.stderr and "error" in p.stderr, p.stderr


def test_config_include_of_a_fifo(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with open(repo / ".git" / "config", "a") as fh:
        fh.write(f"[include]\n\tpath = {fifo}\n")
    _refused(repo, fifo)


def test_nested_relative_include_of_a_fifo(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "inc.cfg").write_text('[includeIf "gitdir:/"]\n  PATH = "fi\\\n"fo ; a comment\n')
    with open(repo / ".git" / "config", "a") as fh:
        fh.write("[include] path = ../../inc.cfg\n")  # relative to .git/config; key on the header's line
    _refused(repo, fifo)


def test_head_is_a_fifo(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    head = repo / ".git" / "HEAD"
    head.unlink()
    os.mkfifo(head)
    _refused(repo, head)


def test_loose_object_is_a_fifo(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    oid = git_run(repo, "rev-parse", "HEAD:k.txt").stdout.strip()
    obj = repo / ".git" / "objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.unlink()
    os.mkfifo(obj)
    _refused(repo, obj)


def test_alternate_with_a_fifo_pack(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    alt = tmp_path / "alt" / "objects"
    (alt / "pack").mkdir(parents=True)
    fifo = alt / "pack" / "pack-0000000000000000000000000000000000000000.idx"
    os.mkfifo(fifo)
    fifo.with_suffix(".pack").write_bytes(b"")  # git opens an index whose pack exists
    (repo / ".git" / "objects" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "objects" / "info" / "alternates").write_text(f"{alt}\n")
    _refused(repo, fifo)


def test_benign_includes_are_scanned(tmp_path: Path) -> None:
    """``/dev/null`` and a regular file are fine includes: no false refusal, the token is found."""
    repo = _repo(tmp_path)
    (tmp_path / "inc.cfg").write_text("[core]\n\tabbrev = 12\n")
    with open(repo / ".git" / "config", "a") as fh:
        fh.write(f"[include]\n\tpath = /dev/null\n\tpath = {tmp_path / 'inc.cfg'}\n\tpath = missing.cfg\n")
    p = _scan(repo)
    assert p.returncode == 1 and "hf_" in p.stdout, (p.returncode, p.stderr)


@pytest.mark.parametrize("cfg", [
    "[include]\n\tpath = /a/b\n",
    "[include] path = /a/b ; comment\n",
    '[Include]\n  PATH="/a/ b"#c\n',
    '[include]\npath = "/a/\\\nb"\n',
    '[include]\npath = /a/\\tb\\\\c\n',
    '[includeIf "gitdir:~/x/"]\n\tpath = ~/y\n[include]\n\tpath\t=\t"x"y"z"  \n',
    '[includeIf "hasconfig:remote.*.url:*]*"] path = /a/b\n',  # review19: a ']' inside a quoted subsection
    '[include "x"]\n[includeIf "gitdir:/]"]path=/a/b\n',
    "[include]\n\tPath\t= /a/b\n",
])
def test_values_are_a_superset_of_gits(tmp_path: Path, cfg: str) -> None:
    """Ground truth: ``git config --no-includes`` reads the same ``path`` values from the same text."""
    f = tmp_path / "c.cfg"
    f.write_text(cfg)
    out = subprocess.run(["git", "config", "--file", str(f), "--no-includes", "--null", "--get-regexp",
                          r"^include(if\..*)?\.path$"], capture_output=True, check=False, cwd=tmp_path,
                         env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
    want = [e.split(b"\n", 1)[1].decode() for e in out.stdout.split(b"\0") if e]
    assert want, out.stderr
    assert set(want) <= set(git_guard._values(cfg, "path"))


def test_a_terminal_include_is_refused(tmp_path: Path) -> None:
    if not os.path.exists("/dev/tty"):
        pytest.skip("no /dev/tty")
    repo = _repo(tmp_path)
    with open(repo / ".git" / "config", "a") as fh:
        fh.write("[include]\n\tpath = /dev/tty\n")
    with pytest.raises(git_guard.UnsafeRepository):
        git_guard.check(str(repo))
    assert sys.platform  # (the check opens nothing: /dev/tty is recognised by its type)


def test_an_alternate_naming_the_root_is_one_listing(tmp_path: Path) -> None:
    """The check reads what git reads: an alternate ``/`` lists ``/`` and its two-hex-digit, ``pack`` and
    ``info`` directories, never the whole file system (nor ``/dev``'s devices, which git never opens)."""
    repo = _repo(tmp_path)
    (repo / ".git" / "objects" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "objects" / "info" / "alternates").write_text("/\n")
    (repo / ".git" / "refs" / "loop").symlink_to("/")  # a link to a directory is not walked into
    (repo / ".git" / "logs").rename(repo / ".git" / "logs.real")
    (repo / ".git" / "logs").symlink_to("/")  # nor is a linked logs/ (one listing)
    git_guard._DONE.clear()
    git_guard.check(str(repo))  # no refusal, and it returns (a walk of / would not)


def test_a_socket_in_the_git_directory_is_fine(tmp_path: Path) -> None:
    """git's fsmonitor daemon keeps a socket in ``.git``: opening one fails at once, it never blocks."""
    import socket

    repo = _repo(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(repo / ".git" / "fsmonitor--daemon.ipc"))
        git_guard._DONE.clear()
        git_guard.check(str(repo))
    finally:
        sock.close()
