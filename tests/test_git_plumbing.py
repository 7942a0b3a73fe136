"""Issue 11 (smaller defects): exact, NUL-separated git plumbing and validated revision ranges."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from veritensor_fast.history import scan_history
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, init_repo, scan_json


def _commit_file(repo: Path, name: str, text: str, msg: str = "add") -> None:
    (repo / name).write_text(text)
    git_run(repo, "add", "--", name)
    git_run(repo, "commit", "-q", "-m", msg)


def test_history_path_with_newline_is_whole(tmp_path: Path) -> None:
    """rev-list names stop at a newline; the report must carry the exact committed path."""
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    name = "notes\nsecret.txt"
    _commit_file(repo, name, f"HF_TOKEN={tok}\n")
    ds = ["--datastore", str(tmp_path / "ds.sqlite")]
    for extra in (ds, ds, ds, ["--no-datastore"]):  # first sweep, then incremental ones answered by the memo
        rc, rep = scan_json("--history", *extra, str(repo), cwd=tmp_path)
        assert rc == 1, rep
        paths = {f["path"] for f in rep["findings"]}
        assert paths == {name}, paths
        assert all(f["commit"]["path"] == name and f["commit"]["at_head"] for f in rep["findings"])


def test_history_path_with_newline_library(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    name = "a\nb\tc.txt"
    _commit_file(repo, name, f"HF_TOKEN={hf_token()}\n")
    for order in ("pack", "stream"):
        r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False, order=order)
        assert [f.path for f in r.findings] == [name]


def _cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from conftest import run_cli

    return run_cli("scan", "--no-progress", "--history", *args, str(repo), cwd=repo)


def test_range_errors_name_the_revision(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    for rng, bad in (("main..nosuchbranch", "nosuchbranch"), ("deadbeef..main", "deadbeef"),
                     ("nope...main", "nope")):
        p = _cli(repo, "--range", rng)
        assert p.returncode == 2, (rng, p.stdout, p.stderr)
        assert bad in p.stderr, (rng, p.stderr)
    p = _cli(repo, "--since", "missingrev")
    assert p.returncode == 2 and "missingrev" in p.stderr, p.stderr


def test_range_with_empty_sides_is_rejected(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    _commit_file(repo, "s.txt", f"HF_TOKEN={hf_token()}\n")
    for rng in ("...", ".."):
        p = _cli(repo, "--range", rng)
        assert p.returncode == 2, (rng, p.stdout, p.stderr)
        assert "range" in p.stderr
    p = _cli(repo, "--range", "main~1..")  # one empty side: HEAD, as git reads it
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert os.path.isdir(repo)


def test_git_sources_do_not_import_the_engine() -> None:
    """Arrows point down: the history orchestration (``veritensor_fast.history``) imports the sources and the
    engine; importing a git source module never imports the engine, the worker or the CLI."""
    code = ("import sys, veritensor_fast.sources.git, veritensor_fast.sources.staged, veritensor_fast.sources.git_read;"
            "bad = [m for m in ('veritensor_fast.engine', 'veritensor_fast.worker', 'veritensor_fast.cli') "
            "if m in sys.modules]; assert not bad, bad")
    import sys

    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_git_error_messages_escape_control_bytes(tmp_path: Path) -> None:
    from veritensor_fast import gitcmd

    repo = init_repo(tmp_path / "r")
    try:
        gitcmd.run(str(repo), ["cat-file", "-t", "nope\x1b[2K\x07"])
    except gitcmd.GitError as exc:
        assert "\x1b" not in str(exc) and "\x07" not in str(exc)
        assert "nope" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("rev-parse accepted a bad revision")
    assert gitcmd.printable("a\x1b[1Ab\x9b\n") == "a\\x1b[1Ab\\x9b\\n"


def test_shipped_grafts_do_not_hide_history(tmp_path: Path) -> None:
    """A repository that ships .git/info/grafts cutting the parent of its tip would hide every older commit."""
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    _commit_file(repo, "s.txt", f"HF_TOKEN={tok}\n")
    git_run(repo, "rm", "-q", "s.txt")
    git_run(repo, "commit", "-q", "-m", "remove")
    tip = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "grafts").write_text(tip + "\n")
    r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    assert [f.secret for f in r.findings] == [tok]


def test_object_whose_content_does_not_match_its_id_is_reported(tmp_path: Path) -> None:
    """git does not verify an object's hash when it reads it: a shipped object file (or pack index) that maps a
    blob's id to harmless bytes would make the history look clean. The reader checks every object."""
    import zlib

    repo = init_repo(tmp_path / "r")
    _commit_file(repo, "s.txt", f"HF_TOKEN={hf_token()}\n")
    oid = git_run(repo, "rev-parse", "HEAD:s.txt").stdout.strip()
    obj = repo / ".git" / "objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(zlib.compress(b"blob 9\0harmless\n"))
    assert git_run(repo, "cat-file", "-p", oid).stdout == "harmless\n"  # git itself does not notice
    rc, rep = scan_json("--history", "--no-datastore", str(repo), cwd=tmp_path)
    assert rc == 3, rep
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("s.txt", "corrupt")]
    assert oid in rep["errors"][0]["reason"]


def test_object_matches() -> None:
    import hashlib

    from veritensor_fast.sources.git_objects import object_matches

    data = b"hello\n"
    sha1 = hashlib.sha1(b"blob 6\0" + data).hexdigest()
    sha256 = hashlib.sha256(b"blob 6\0" + data).hexdigest()
    assert object_matches(sha1, "blob", data) and object_matches(sha256, "blob", data)
    assert not object_matches(sha1, "blob", b"hellO\n") and not object_matches(sha1, "commit", data)
    assert not object_matches("abc", "blob", data)
