"""review21: annotated tags read by ``--history`` and the pre-push stage, attacked with real git.

A tag message whose first line opens a signature (``-----BEGIN PGP SIGNATURE-----hf_...``: git's own
``parse_signed_buffer`` takes a line that starts with the marker as the signature) is cut from the scan, but the
report's provenance showed the tag's first line as ``commit.message``: with any other finding in the tag (its
name, its tagger), the unscanned token was printed in full in JSON, JSONL and SARIF. The provenance now shows the
first line of what was scanned.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import git_run, hf_token, init_repo, run_cli


@pytest.mark.parametrize("fmt", ["json", "jsonl", "sarif", "markdown", "text"])
def test_token_after_a_signature_marker_never_printed(tmp_path: Path, fmt: str) -> None:
    named, hidden = hf_token(), hf_token()
    repo = init_repo(tmp_path / "r")
    git_run(repo, "tag", "-a", named, "-m", f"-----BEGIN PGP SIGNATURE-----{hidden}\n")
    p = run_cli("scan", "--history", "--no-datastore", "--no-progress", "--format", fmt, repo)
    assert p.returncode == 1 and "huggingface.user-token" in p.stdout, p.stdout + p.stderr
    assert named not in p.stdout + p.stderr and hidden not in p.stdout + p.stderr


def test_long_mergetag_header_is_linear(tmp_path: Path) -> None:
    """A merge commit's ``mergetag`` header (a whole tag object on continuation lines) of 4 MB: headers were
    joined line by line (quadratic: 20,000 lines took 30 s, 40,000 two minutes); now one join, about a second."""
    import subprocess

    tok = hf_token()
    repo = init_repo(tmp_path / "r")
    head = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    tree = git_run(repo, "rev-parse", "HEAD^{tree}").stdout.strip()
    body = "".join(f" line {i} " + "y" * 90 + "\n" for i in range(40_000))
    raw = (f"tree {tree}\nparent {head}\nparent {head}\nauthor a <a@example.invalid> 1700000000 +0000\n"
           f"committer a <a@example.invalid> 1700000000 +0000\nmergetag object {head}\n type commit\n tag v1\n"
           f" tagger t <t@example.invalid> 1700000000 +0000\n \n{body} HF_TOKEN={tok}\n\nmerge v1\n")
    oid = subprocess.run(["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"], input=raw,
                         capture_output=True, text=True, check=True).stdout.strip()
    git_run(repo, "update-ref", "refs/heads/main", oid)
    p = run_cli("scan", "--history", "--no-datastore", "--no-progress", "--format", "json", repo, timeout=30)
    assert p.returncode == 1 and '"commit mergetag"' in p.stdout and tok not in p.stdout + p.stderr, p.stderr
