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
