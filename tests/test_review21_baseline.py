"""review21: a baseline is committed to the repository; it must hold no secret. A token in a file name
(``HF_TOKEN=hf_....txt``: a finding "in the file name", redacted in every report) was stored whole as the entry's
path (the location key). Keys now redact secrets found in file names, at create and at match time alike."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import hf_token, init_repo, run_cli


def test_token_in_a_file_name_is_not_stored_and_still_known(tmp_path: Path) -> None:
    tok = hf_token()
    repo = init_repo(tmp_path / "r")
    (repo / "keys").mkdir()
    (repo / "keys" / f"HF_TOKEN={tok}.txt").write_text("nothing here\n")
    bl = repo / ".veritensor-baseline.json"
    p = run_cli("baseline", "create", ".", "-o", bl, cwd=repo)
    assert p.returncode == 0, p.stderr
    text = bl.read_text()
    assert tok not in text and tok not in p.stdout + p.stderr
    assert [e["path"] for e in json.loads(text)["findings"]] == [f"keys/HF_TOKEN={tok[:5]}…{tok[-2:]}.txt"]
    q = run_cli("scan", "--no-progress", "--baseline", bl, "keys", cwd=repo)  # another PATH, the same key
    assert q.returncode == 0 and "1 known" in q.stdout + q.stderr, q.stdout + q.stderr
    (repo / "keys" / f"HF_TOKEN={hf_token()}.txt").write_text("x\n")  # a new one is new
    r = run_cli("scan", "--no-progress", "--baseline", bl, ".", cwd=repo)
    assert r.returncode == 1 and tok not in r.stdout + r.stderr
