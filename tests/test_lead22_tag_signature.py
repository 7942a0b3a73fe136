"""A token after a line that opens a signature in an annotated tag's message is scanned.

git cuts a tag's message at the last line that opens a signature (``parse_signed_buffer``), so ``git show`` hides
what follows; but anyone can write such a line (``git tag -a v1 -m "release\\n-----BEGIN PGP SIGNATURE-----\\n
HF_TOKEN=…"``) and the bytes after it are pushed and fetched with the tag. They are scanned last (no other line
moves) and reported as ``tag signature`` (``commit signature`` inside a merged tag's ``mergetag`` header). A real
signature is armoured binary: a real SSH-signed tag still gives only its message's finding
(``test_hist21_tags.test_real_ssh_signed_tag_message_found_signature_not_scanned``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import GIT_ID, git_run, hf_token, init_repo, run_cli
from veritensor_fast.sources.git_objects import commit_text, split_signed, unsigned


def _mktag(repo: Path, name: str, message: str) -> str:
    head = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    body = f"object {head}\ntype commit\ntag {name}\ntagger t <t@example.invalid> 1700000000 +0000\n\n{message}"
    oid = subprocess.run(["git", "-C", str(repo), *GIT_ID, "mktag"], input=body, capture_output=True, text=True,
                         check=True).stdout.strip()
    git_run(repo, "update-ref", f"refs/tags/{name}", oid)
    return oid


def _scan(repo: Path) -> dict:
    p = run_cli("scan", "--history", "--no-datastore", "--format", "json", "--no-progress", str(repo))
    rep = json.loads(p.stdout)
    assert p.returncode == 1 and rep["errors"] == [], p.stderr
    return rep


def test_token_after_a_fake_signature_line_is_found_and_redacted(tmp_path: Path) -> None:
    before, inside = hf_token(), hf_token()
    repo = init_repo(tmp_path / "r")
    oid = _mktag(repo, "signed", f"release {before}\n-----BEGIN PGP SIGNATURE-----\n\nHF_TOKEN={inside}\n"
                                 "-----END PGP SIGNATURE-----\n")
    p = run_cli("scan", "--history", "--no-datastore", "--format", "json", "--no-progress", str(repo))
    assert before not in p.stdout + p.stderr and inside not in p.stdout + p.stderr
    rep = json.loads(p.stdout)
    got = sorted((f["path"], f["location"]["git"], f["redacted"][:5]) for f in rep["findings"]
                 if f["path"].startswith("tag:"))
    assert got == sorted([(f"tag:{oid}", "tag message", before[:5]), (f"tag:{oid}", "tag signature", inside[:5])])
    # the message keeps its line numbers: the signature is scanned after everything else
    [msg] = [f for f in rep["findings"] if f["location"]["git"] == "tag message"]
    assert msg["line"] == 4


def test_token_on_the_marker_line_itself_is_found(tmp_path: Path) -> None:
    secret = hf_token()
    repo = init_repo(tmp_path / "r")
    oid = _mktag(repo, "v1", f"-----BEGIN SSH SIGNATURE-----{secret}\n")
    rep = _scan(repo)
    [f] = [f for f in rep["findings"] if f["path"] == f"tag:{oid}"]
    assert f["location"]["git"] == "tag signature"
    assert secret not in json.dumps(rep)  # nor in the subject: the shown first line is the scanned message's


def test_merged_tag_signature_is_scanned_after_the_merge_commit_text(tmp_path: Path) -> None:
    raw = (b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent " + b"1" * 40 + b"\n"
           b"author a <a@x> 1700000000 +0000\ncommitter a <a@x> 1700000000 +0000\n"
           b"mergetag object " + b"2" * 40 + b"\n type commit\n tag rel\n tagger t <t@x> 1700000000 +0000\n \n"
           b" release\n -----BEGIN PGP SIGNATURE-----\n HF_TOKEN=x\n -----END PGP SIGNATURE-----\n\nmerge\n")
    text, fields = commit_text(raw)
    lines = text.split(b"\n")
    assert fields[lines.index(b"HF_TOKEN=x")] == "signature"
    assert fields[lines.index(b"merge")] == "message" and lines.index(b"merge") == 3
    assert b"mergetag release" in lines


def test_split_signed_cuts_where_git_cuts() -> None:
    assert split_signed(b"a\n-----BEGIN SSH SIGNATURE-----\nx\n") == (b"a\n", b"-----BEGIN SSH SIGNATURE-----\nx\n")
    assert split_signed(b"no signature\n") == (b"no signature\n", b"")
    # the last marker line cuts (git's parse_signed_buffer)
    two = b"m\n-----BEGIN PGP SIGNATURE-----\na\n-----BEGIN PGP SIGNATURE-----\nb\n"
    assert unsigned(two) == b"m\n-----BEGIN PGP SIGNATURE-----\na\n"
