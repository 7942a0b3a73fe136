"""Issue 10 §1: no git invocation of the scanner runs a program chosen by the scanned repository (or by global /
system configuration). One test per vector: a hostile repository whose config points at a script that creates
a marker file; every git-driven mode runs over it (``--history`` with and without the datastore, ``--staged``,
``--since-commit``); the marker must never exist, and the planted tokens are still found. Where plain git
demonstrably runs the script for a command the scanner uses, a control run proves the vector is live.
"""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from veritensor_fast.engine import scan
from veritensor_fast.history import scan_history
from veritensor_fast.sources.staged import GitChangesSource
from veritensor_fast.worker import ScanOptions

from conftest import GIT_ID, hf_token, init_repo, run_cli

PKG = Path(__file__).resolve().parent.parent / "veritensor_fast"
CLEAN_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def _git(repo: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    return subprocess.run(["git", "-C", str(repo), *GIT_ID, *args], capture_output=True, text=True, input=stdin,
                          check=check, env=CLEAN_ENV).stdout.strip()


def _script(path: Path, marker: Path) -> Path:
    path.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{marker}'\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _sign(repo: Path, rev: str, armor: str, parent_of_new: str | None = None) -> str:
    """A copy of commit ``rev`` carrying a ``gpgsig`` header of the given armor kind (PGP / SSH SIGNATURE)."""
    text = _git(repo, "cat-file", "commit", rev) + "\n"
    header, _, msg = text.partition("\n\n")
    if parent_of_new is not None:
        lines = [ln for ln in header.splitlines() if not ln.startswith("parent ")]
        header = "\n".join([lines[0], f"parent {parent_of_new}", *lines[1:]])
    sig = f"gpgsig -----BEGIN {armor}-----\n \n AAAA\n -----END {armor}-----"
    return _git(repo, "hash-object", "-t", "commit", "-w", "--stdin", stdin=f"{header}\n{sig}\n\n{msg}")


class Hostile:
    """A repository with a token committed in a PGP-'signed' commit, an SSH-'signed' commit on top, a staged
    token, and a dirty work tree; ``marker`` is where every hostile program writes."""

    def __init__(self, tmp: Path) -> None:
        self.repo = init_repo(tmp / "repo")
        self.base = _git(self.repo, "rev-parse", "HEAD")
        self.marker = tmp / "MARKER"
        self.evil = _script(tmp / "evil.sh", self.marker)
        self.token, self.staged_token = hf_token(), hf_token()
        (self.repo / "secret.txt").write_text(f"HF_TOKEN={self.token}\n")
        _git(self.repo, "add", "secret.txt")
        _git(self.repo, "commit", "-q", "-m", "add secret")
        signed = _sign(self.repo, "HEAD", "PGP SIGNATURE")
        top = _sign(self.repo, signed, "SSH SIGNATURE", parent_of_new=signed)
        _git(self.repo, "update-ref", "refs/heads/main", top)
        _git(self.repo, "reset", "-q", "--hard", "main")
        (self.repo / "staged.txt").write_text(f"token = '{self.staged_token}'\n")
        _git(self.repo, "add", "staged.txt")
        (self.repo / "README.md").write_text("dirty work tree\n")  # unstaged change: a refresh would see it
        self.tmp = tmp

    def config(self, *pairs: str) -> None:
        for pair in pairs:
            key, _, value = pair.partition("=")
            _git(self.repo, "config", "--add", key, value.replace("EVIL", str(self.evil)))

    def control(self, *args: str) -> bool:
        """Plain git (no hardening) runs the hostile program for ``args``: the vector is live."""
        subprocess.run(["git", "-C", str(self.repo), *args], capture_output=True, env=CLEAN_ENV, check=False,
                       stdin=subprocess.DEVNULL, timeout=60)
        live = self.marker.exists()
        self.marker.unlink(missing_ok=True)
        return live

    def scan_all(self) -> None:
        """Every git-driven mode of the scanner; each must find its tokens and never run the hostile program."""
        opts = ScanOptions()
        for kw in ({"datastore": str(self.tmp / "ds.sqlite")}, {"use_datastore": False},
                   {"use_datastore": False, "order": "stream"}, {"use_datastore": False, "all_objects": True}):
            r = scan_history([str(self.repo)], opts, jobs=1, **kw)
            found = [f for f in r.findings if f.path == "secret.txt"]
            assert found, (kw, r.findings, r.errors)
            assert found[0].commit and found[0].commit.get("id"), found[0].commit  # provenance ran (git log)
        for kw2 in ({"staged": True}, {"since": self.base}, {"staged": True, "since": self.base}):
            src = GitChangesSource(str(self.repo), **kw2)  # type: ignore[arg-type]
            paths = {f.path for f in scan(src, opts, jobs=1).findings}
            if kw2.get("staged"):
                assert "staged.txt" in paths, kw2
            if kw2.get("since"):
                assert "secret.txt" in paths, kw2
        assert not self.marker.exists(), self.marker.read_text()


@pytest.fixture
def hostile(tmp_path: Path) -> Hostile:
    return Hostile(tmp_path)


def test_show_signature_gpg_program(hostile: Hostile) -> None:
    hostile.config("log.showSignature=true", "gpg.program=EVIL")
    assert hostile.control("log", "-1", "--format=%H")  # today's provenance `git log` ran it
    hostile.scan_all()


def test_gpg_format_programs(hostile: Hostile) -> None:
    hostile.config("log.showSignature=true", "gpg.openpgp.program=EVIL", "gpg.x509.program=EVIL",
                   "gpg.ssh.program=EVIL", f"gpg.ssh.allowedSignersFile={hostile.evil}",
                   "gpg.ssh.defaultKeyCommand=EVIL")
    assert hostile.control("log", "-2", "--format=%H")
    hostile.scan_all()


def test_core_fsmonitor(hostile: Hostile) -> None:
    hostile.config("core.fsmonitor=EVIL")
    assert hostile.control("diff", "--cached", "--raw")
    hostile.scan_all()


def test_include_path_pulls_in_program_keys(hostile: Hostile) -> None:
    inc = hostile.tmp / "included.cfg"
    inc.write_text(f"[core]\n\tfsmonitor = {hostile.evil}\n[log]\n\tshowSignature = true\n"
                   f"[gpg]\n\tprogram = {hostile.evil}\n")
    hostile.config(f"include.path={inc}")
    assert hostile.control("log", "-1", "--format=%H")
    hostile.scan_all()


def test_include_if_pulls_in_program_keys(hostile: Hostile) -> None:
    inc = hostile.tmp / "included_if.cfg"
    inc.write_text(f"[core]\n\tfsmonitor = {hostile.evil}\n[log]\n\tshowSignature = true\n"
                   f"[gpg]\n\tprogram = {hostile.evil}\n")
    hostile.config(f"includeIf.gitdir:{hostile.repo}/.git.path={inc}", f"includeIf.onbranch:main.path={inc}")
    assert hostile.control("log", "-1", "--format=%H")
    hostile.scan_all()


def test_pager(hostile: Hostile) -> None:
    hostile.config("core.pager=EVIL", "pager.log=EVIL", "pager.diff=EVIL", "pager.show=EVIL",
                   "pager.rev-list=EVIL", "pager.ls-tree=EVIL")
    hostile.scan_all()


def test_diff_external_and_drivers(hostile: Hostile) -> None:
    (hostile.repo / ".git" / "info" / "attributes").write_text("* diff=evil\n")
    hostile.config("diff.external=EVIL", "diff.evil.textconv=EVIL", "diff.evil.command=EVIL",
                   "diff.evil.cachetextconv=false")
    assert hostile.control("log", "-p")
    hostile.scan_all()


def test_filters(hostile: Hostile) -> None:
    (hostile.repo / ".git" / "info" / "attributes").write_text("* filter=evil\n")
    hostile.config("filter.evil.clean=EVIL", "filter.evil.smudge=EVIL", "filter.evil.process=EVIL",
                   "filter.evil.required=false")
    assert hostile.control("diff", "--raw")
    hostile.scan_all()


def test_hooks_dir_and_hooks_path(hostile: Hostile) -> None:
    hooks = hostile.tmp / "hooks"
    hooks.mkdir()
    names = ("post-index-change", "reference-transaction", "pre-auto-gc", "post-checkout", "post-rewrite",
             "fsmonitor-watchman", "pre-commit", "post-commit", "push-to-checkout")
    for name in names:
        _script(hooks / name, hostile.marker)
        _script(hostile.repo / ".git" / "hooks" / name, hostile.marker)
    hostile.config(f"core.hooksPath={hooks}")
    hostile.scan_all()


def test_network_and_credential_programs(hostile: Hostile) -> None:
    hostile.config("core.sshCommand=EVIL", "core.askPass=EVIL", "credential.helper=!EVIL", "core.gitProxy=EVIL",
                   "core.alternateRefsCommand=EVIL", "uploadpack.packObjectsHook=EVIL", "protocol.allow=always",
                   "protocol.ext.allow=always", "remote.origin.url=ext::EVIL", "remote.origin.uploadpack=EVIL",
                   "remote.origin.receivepack=EVIL", "remote.origin.proxy=EVIL", "ssh.variant=ssh")
    hostile.scan_all()


def test_editors_tools_and_gc(hostile: Hostile) -> None:
    hostile.config("core.editor=EVIL", "sequence.editor=EVIL", "gc.auto=1", "gc.autoPackLimit=1",
                   "maintenance.auto=true", "web.browser=evil", "browser.evil.cmd=EVIL", "diff.tool=evil",
                   "difftool.evil.cmd=EVIL", "merge.tool=evil", "mergetool.evil.cmd=EVIL", "man.evil.cmd=EVIL",
                   "merge.evil.driver=EVIL", "trailer.evil.command=EVIL", "alias.log=!EVIL", "alias.rev-list=!EVIL",
                   "submodule.recurse=true")
    hostile.scan_all()


def test_partial_clone_lazy_fetch_never_runs_a_transport(hostile: Hostile) -> None:
    """A missing blob in a 'partial clone' whose promisor remote is ``ext::<command>`` (allowed by the
    repository's own ``protocol.*.allow``): git would run the command to fetch it lazily."""
    oid = _git(hostile.repo, "rev-parse", f"{hostile.base}:README.md")
    (hostile.repo / ".git" / "objects" / oid[:2] / oid[2:]).unlink()
    hostile.config("core.repositoryformatversion=1", "extensions.partialClone=origin", "remote.origin.url=ext::EVIL",
                   "remote.origin.promisor=true", "protocol.allow=always", "protocol.ext.allow=always",
                   "protocol.file.allow=always")
    assert hostile.control("cat-file", "-p", oid)
    for kw in ({"use_datastore": False}, {"use_datastore": False, "order": "stream"},
               {"datastore": str(hostile.tmp / "ds.sqlite")}):
        r = scan_history([str(hostile.repo)], ScanOptions(), jobs=1, **kw)  # type: ignore[arg-type]
        assert hostile.token in {f.secret for f in r.findings}
        assert r.errors and all(e.kind == "corrupt" for e in r.errors), r.errors  # reported, not fetched
    for kw2 in ({"staged": True}, {"since": hostile.base}):
        scan(GitChangesSource(str(hostile.repo), **kw2), ScanOptions(), jobs=1)  # type: ignore[arg-type]
    assert not hostile.marker.exists(), hostile.marker.read_text()


def test_global_and_system_config(hostile: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = (f"[core]\n\tfsmonitor = {hostile.evil}\n\tpager = {hostile.evil}\n[log]\n\tshowSignature = true\n"
           f"[gpg]\n\tprogram = {hostile.evil}\n[diff]\n\texternal = {hostile.evil}\n")
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    (xdg / "git").mkdir(parents=True)
    home.mkdir()
    (home / ".gitconfig").write_text(cfg)
    (xdg / "git" / "config").write_text(cfg)
    (tmp_path / "system.cfg").write_text(cfg)
    for k in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "system.cfg"))
    subprocess.run(["git", "-C", str(hostile.repo), "log", "-1"], capture_output=True, check=False)
    assert hostile.marker.exists()  # control: plain git obeys the global config
    hostile.marker.unlink()
    hostile.scan_all()


def test_environment_injected_config(hostile: Hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "log.showSignature")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")
    monkeypatch.setenv("GIT_CONFIG_KEY_1", "gpg.program")
    monkeypatch.setenv("GIT_CONFIG_VALUE_1", str(hostile.evil))
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", str(hostile.evil))
    monkeypatch.setenv("GIT_PAGER", str(hostile.evil))
    hostile.scan_all()


def test_cli_end_to_end_no_marker(hostile: Hostile) -> None:
    """The real command line, every git mode and output format, with the live vectors combined, plus the git
    leak sites (a token in a commit message and in an author name, a path holding a newline, grafts hiding the
    oldest commits): no marker, every planted token reported (exit 1), no full token in any output or in the
    datastore the scan wrote."""
    repo = hostile.repo
    msg_tok, author_tok, nl_tok = hf_token(), hf_token(), hf_token()
    (repo / "a\nb.txt").write_text(f"HF_TOKEN={nl_tok}\n")
    _git(repo, "add", "a\nb.txt")
    env = {**CLEAN_ENV, "GIT_AUTHOR_NAME": f"Mallory {author_tok}", "GIT_AUTHOR_EMAIL": "m@example.invalid"}
    subprocess.run(["git", "-C", str(repo), *GIT_ID, "commit", "-q", "-m", f"oops {msg_tok}"], check=True, env=env,
                   capture_output=True)
    (repo / ".git" / "info" / "grafts").write_text(_git(repo, "rev-parse", "HEAD~1") + "\n")
    hostile.config("log.showSignature=true", "gpg.program=EVIL", "core.fsmonitor=EVIL", "core.pager=EVIL",
                   "diff.external=EVIL", "core.hooksPath=" + str(hostile.tmp))
    tokens = (hostile.token, hostile.staged_token, msg_tok, author_tok, nl_tok)  # staged.txt is now committed
    ds = hostile.tmp / "e2e.sqlite"
    runs = [(fmt, ["--history", "--datastore", str(ds), str(repo)]) for fmt in ("text", "json", "jsonl", "sarif")]
    runs += [("json", ["--history", "--no-datastore", str(repo)]), ("json", ["--since-commit", hostile.base, str(repo)])]
    for fmt, args in runs:
        p = run_cli("scan", "--no-progress", "-f", fmt, *args, cwd=repo)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert not any(t in p.stdout or t in p.stderr for t in tokens), (fmt, args)
        if fmt == "json" and "--history" in args:
            found = {(f["path"], f["redacted"]) for f in json.loads(p.stdout)["findings"]}
            assert len(found) == 5 and "a\nb.txt" in {pth for pth, _ in found}, found
    written = b"".join(f.read_bytes() for f in hostile.tmp.glob("e2e.sqlite*"))
    assert written and not any(t.encode() in written for t in tokens)
    assert not hostile.marker.exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_other_owner_repository_is_scanned(hostile: Hostile) -> None:
    """safe.directory is set by the runner: a repository owned by another user (an extracted tarball, a shared
    volume) is scanned; ownership is not the trust boundary (the hardening is)."""
    hostile.config("log.showSignature=true", "gpg.program=EVIL", "core.fsmonitor=EVIL")
    for root, dirs, files in os.walk(hostile.repo):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), 65534, 65534)
    os.lchown(hostile.repo, 65534, 65534)
    hostile.scan_all()


# ---- no call site bypasses the runner ---------------------------------------------------------------------

_SPAWN = {("subprocess", n) for n in ("run", "Popen", "call", "check_call", "check_output", "getoutput",
                                      "getstatusoutput")} | {("os", n) for n in (
    "system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv",
    "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "posix_spawn",
    "posix_spawnp")}


def _mentions_git(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str)
               and (n.value == "git" or n.value.startswith(("git ", "/usr/bin/git"))) for n in ast.walk(node))


def git_spawn_sites(source: str, name: str) -> list[str]:
    """Places in ``source`` that start git without ``gitcmd``: a process-spawning call (``subprocess.*``,
    ``os.system``/``exec*``/``spawn*``/``popen``, or such a name imported bare) with a ``"git"`` argument, or an
    argv literal starting with ``"git"`` (built here, spawned elsewhere)."""
    tree = ast.parse(source, name)
    bare = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and n.module in ("subprocess", "os") for a in n.names if (n.module, a.name) in _SPAWN}
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            spawn = (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in _SPAWN) \
                or (isinstance(f, ast.Name) and f.id in bare)
            if spawn and any(_mentions_git(a) for a in [*node.args, *(k.value for k in node.keywords)]):
                out.append(f"{name}:{node.lineno}: spawns git directly")
        elif isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant) \
                and node.elts[0].value == "git":
            out.append(f"{name}:{node.lineno}: argv starting with 'git'")
    return out


def test_bypass_check_catches_direct_git_calls() -> None:
    """The check itself: each way of starting git directly is caught; gitcmd use and other programs are not."""
    bad = ['import subprocess\nsubprocess.run(["git", "log"])', 'import subprocess\nsubprocess.Popen("git log", shell=True)',
           'from subprocess import check_output as co\nco(["git", "status"])', 'import os\nos.system("git gc")',
           'argv = ("git", "-C", ".", "log")']
    for src in bad:
        assert git_spawn_sites(src, "x.py"), src
    good = ['from veritensor_fast import gitcmd\ngitcmd.run(".", ["log"])', 'import subprocess\nsubprocess.run(["dask", "worker"])']
    for src in good:
        assert not git_spawn_sites(src, "x.py"), src


def test_no_git_call_bypasses_hardened_runner() -> None:
    """Only ``veritensor_fast/gitcmd.py`` may start git; every other module calls ``gitcmd.run`` /
    ``gitcmd.popen``. A new call site that starts git any other way fails here."""
    offenders: list[str] = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).as_posix()
        if rel != "veritensor_fast/gitcmd.py":
            offenders += git_spawn_sites(path.read_text(encoding="utf-8"), rel)
    assert not offenders, "git started outside veritensor_fast/gitcmd.py:\n" + "\n".join(offenders)
