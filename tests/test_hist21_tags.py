"""Annotated tag messages in --history: a release tag is a place people paste tokens.

``git tag -a v1 -m "HF_TOKEN=..."`` stores the message in a tag object, which no blob, commit message or author
line holds: before, a history sweep listed the tag (``rev-list --objects`` names every annotated tag a ref
reaches) only to drop it, and the token was never scanned. Each annotated tag object is now scanned once (by
object id) like a commit's own text: its name, tagger and message, never its signature. Findings are reported at
``tag:<id>`` with the tag's name and id in ``location``. Real git repositories, the real CLI.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import git_run, hf_token, init_repo, run_cli, scan_json
from veritensor_fast.history import scan_history
from veritensor_fast.worker import ScanOptions


def _tag_oid(repo: Path, name: str) -> str:
    return git_run(repo, "rev-parse", f"refs/tags/{name}").stdout.strip()


def _tag_findings(rep: dict) -> list[dict]:
    return [f for f in rep["findings"] if f["path"].startswith("tag:")]


def test_token_in_tag_message_is_found_and_never_echoed(tmp_path: Path) -> None:
    secret = hf_token()
    repo = init_repo(tmp_path / "r")
    git_run(repo, "tag", "-a", "v1.0", "-m", f"release 1.0\n\nHF_TOKEN={secret}\n")
    oid = _tag_oid(repo, "v1.0")
    p = run_cli("scan", "--history", "--no-datastore", "--format", "json", "--no-progress", repo)
    assert secret not in p.stdout and secret not in p.stderr
    rep = json.loads(p.stdout)
    assert rep["errors"] == []
    [f] = rep["findings"]
    assert (f["rule_id"], f["path"], f["line"]) == ("huggingface.user-token", f"tag:{oid}", 6)
    assert f["location"] == {"git": "tag message", "object": oid, "tag": "v1.0"}
    assert f["commit"]["id"] == oid and f["commit"]["author"] == "t" and f["commit"]["blob"] is None
    assert p.returncode == 1
    for fmt in ("sarif", "text"):  # no other format echoes it either
        q = run_cli("scan", "--history", "--no-datastore", "--format", fmt, "--no-progress", repo)
        assert q.returncode == 1 and secret not in q.stdout + q.stderr


def test_token_in_tagger_and_tag_name_is_redacted_everywhere(tmp_path: Path) -> None:
    secret = hf_token()
    repo = init_repo(tmp_path / "r")
    env = {**os.environ, "GIT_COMMITTER_NAME": f"bot {secret}", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
    subprocess.run(["git", "-C", str(repo), "-c", "tag.gpgSign=false", "tag", "-a", "v2", "-m", "plain"],
                   check=True, env=env, capture_output=True)
    oid = _tag_oid(repo, "v2")
    named = hf_token()  # a token as the tag's own name: found, and redacted where the location names the tag
    git_run(repo, "tag", "-a", named, "-m", "oops")
    p = run_cli("scan", "--history", "--no-datastore", "--format", "json", "--no-progress", repo)
    assert secret not in p.stdout + p.stderr and named not in p.stdout + p.stderr
    fs = {f["location"]["git"]: f for f in json.loads(p.stdout)["findings"]}
    assert sorted(fs) == ["tag name", "tag tagger"]
    f = fs["tag tagger"]
    assert f["path"] == f"tag:{oid}" and f["location"]["tag"] == "v2"
    assert f["commit"]["author"].startswith("bot hf_") and "…" in f["commit"]["author"]
    assert fs["tag name"]["location"]["tag"] == fs["tag name"]["redacted"] and "…" in fs["tag name"]["redacted"]


def test_same_tag_object_under_two_refs_and_nested_tags_once_each(tmp_path: Path) -> None:
    s1, s2 = hf_token(), hf_token()
    repo = init_repo(tmp_path / "r")
    git_run(repo, "tag", "-a", "v1", "-m", f"token {s1}")
    git_run(repo, "tag", "copy", "v1")  # a lightweight ref to the same tag object
    git_run(repo, "-c", "advice.nestedTag=false", "tag", "-a", "outer", "-m", f"again {s2}", "v1")
    git_run(repo, "tag", "-d", "v1")  # the inner tag is now reached through ``copy`` and ``outer`` only
    code, rep = scan_json(repo, "--history", "--no-datastore")
    fs = _tag_findings(rep)
    assert sorted((f["location"]["tag"], f["redacted"][:5]) for f in fs) == sorted(
        [("v1", s1[:5]), ("outer", s2[:5])])
    assert len({f["path"] for f in fs}) == 2 and rep["stats"]["tags_listed"] == 2
    assert rep["errors"] == [] and code == 1


def test_repository_with_only_lightweight_tags_is_unchanged(tmp_path: Path) -> None:
    secret = hf_token()
    repo = init_repo(tmp_path / "r")
    (repo / "k.env").write_text(f"HF_TOKEN={secret}\n")
    git_run(repo, "add", "k.env")
    git_run(repo, "commit", "-q", "-m", "env")
    _, before = scan_json(repo, "--history", "--no-datastore")
    git_run(repo, "tag", "v1")
    git_run(repo, "tag", "v0", "HEAD~1")
    code, after = scan_json(repo, "--history", "--no-datastore")
    strip = ("seconds", "listing_seconds", "provenance_seconds", "mb_per_s")
    assert after["findings"] == before["findings"] and after["errors"] == [] and code == 1
    assert {k: v for k, v in after["stats"].items() if k not in strip} == {
        k: v for k, v in before["stats"].items() if k not in strip}
    assert "tags_listed" not in after["stats"]


def test_datastore_sweeps_report_tag_findings_again_and_new_tags(tmp_path: Path) -> None:
    s1, s2 = hf_token(), hf_token()
    repo = init_repo(tmp_path / "r")
    git_run(repo, "tag", "-a", "v1", "-m", f"HF_TOKEN={s1}")
    store = tmp_path / "ds.sqlite"
    for _ in range(2):  # first sweep, then an incremental one answered by the datastore
        code, rep = scan_json(repo, "--history", "--datastore", store)
        assert [f["location"]["tag"] for f in _tag_findings(rep)] == ["v1"] and code == 1
        assert rep["errors"] == []
    git_run(repo, "tag", "-a", "v2", "HEAD", "-m", f"HF_TOKEN={s2}")  # a new tag on an old commit
    code, rep = scan_json(repo, "--history", "--datastore", store)
    assert sorted(f["location"]["tag"] for f in _tag_findings(rep)) == ["v1", "v2"]
    assert rep["stats"]["listing"] == "incremental" and rep["errors"] == []


def test_stream_order_lists_tags_too(tmp_path: Path) -> None:
    secret = hf_token()
    repo = init_repo(tmp_path / "r")
    git_run(repo, "tag", "-a", "v1", "-m", f"HF_TOKEN={secret}")
    for order in ("pack", "stream"):
        r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False, order=order)
        assert [f.location for f in r.findings] == [{"git": "tag message", "object": _tag_oid(repo, "v1"),
                                                     "tag": "v1"}], order


def test_real_ssh_signed_tag_message_found_signature_not_scanned(tmp_path: Path) -> None:
    """``git tag -s`` with an SSH key (``gpg.format=ssh``): git appends a real ``-----BEGIN SSH SIGNATURE-----``
    block to the message; the token in the message is found once, the armoured signature is not scanned."""
    import shutil

    import pytest

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    secret = hf_token()
    repo = init_repo(tmp_path / "r")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    git_run(repo, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s", "v1",
            "-m", f"release\n\nHF_TOKEN={secret}")
    raw = git_run(repo, "cat-file", "tag", "v1").stdout
    assert "-----BEGIN SSH SIGNATURE-----" in raw
    p = run_cli("scan", "--history", "--no-datastore", "--format", "json", "--no-progress", repo)
    assert secret not in p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert [(f["location"]["git"], f["line"]) for f in rep["findings"]] == [("tag message", 6)]
    assert rep["errors"] == [] and p.returncode == 1


def test_signed_tag_merged_then_deleted_is_found_in_the_mergetag_header(tmp_path: Path) -> None:
    """Merging a signed tag (``git merge``/``git pull URL tag v1``) copies the whole tag object into the merge
    commit's ``mergetag`` header. With the tag ref gone (or never fetched as a ref), its message lives only
    there: scanned after the commit message (whose lines keep their numbers), reported as ``commit mergetag``."""
    import shutil

    import pytest

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    secret, in_message = hf_token(), hf_token()
    repo = init_repo(tmp_path / "r")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    git_run(repo, "checkout", "-q", "-b", "side")
    (repo / "f.txt").write_text("x\n")
    git_run(repo, "add", "f.txt")
    git_run(repo, "commit", "-q", "-m", "side")
    git_run(repo, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s", "rel",
            "-m", f"release\n\nHF_TOKEN={secret}")
    git_run(repo, "checkout", "-q", "main")
    git_run(repo, "merge", "-q", "--no-ff", "-m", f"Merge tag rel\n\n{in_message}", "rel")
    merge = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    assert "mergetag object" in git_run(repo, "cat-file", "commit", merge).stdout
    git_run(repo, "tag", "-d", "rel")
    git_run(repo, "branch", "-D", "side")
    p = run_cli("scan", "--history", "--no-datastore", "--format", "json", "--no-progress", repo)
    assert secret not in p.stdout + p.stderr and in_message not in p.stdout + p.stderr
    rep = json.loads(p.stdout)
    got = sorted((f["path"], f["location"]["git"], f["line"], f["redacted"][:5]) for f in rep["findings"])
    assert got == [(f"commit:{merge}", "commit mergetag", 13, secret[:5]),
                   (f"commit:{merge}", "commit message", 6, in_message[:5])]
    assert rep["errors"] == [] and p.returncode == 1
