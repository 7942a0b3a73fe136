"""review21: the stderr notes usab21 added (a misspelt PATH, a PATH matching no staged change, an allow entry
with no effect) quote what the user gave. The report redacts a token in a PATH (a secret in a file name is a
finding); the notes printed it in full: ``scan ./HF_TOKEN=hf_...`` put the whole token on stderr, which CI
logs keep."""
from __future__ import annotations

from pathlib import Path

from conftest import hf_token, init_repo, run_cli


def test_misspelt_path_note_redacts_a_token(tmp_path: Path) -> None:
    tok = hf_token()
    p = run_cli("scan", "--no-progress", "--format", "json", tmp_path / f"HF_TOKEN={tok}")
    assert "does not exist (misspelt?)" in p.stderr and "hf_" in p.stderr
    assert tok not in p.stdout + p.stderr


def test_unmatched_staged_path_note_redacts_a_token(tmp_path: Path) -> None:
    tok = hf_token()
    repo = init_repo(tmp_path / "r")
    p = run_cli("scan", "--staged", "--no-progress", f"HF_TOKEN={tok}", cwd=repo)
    assert "matches no staged change" in p.stderr and tok not in p.stdout + p.stderr, p.stderr
