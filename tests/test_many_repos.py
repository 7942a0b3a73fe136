"""A history sweep over several repositories says which repository each finding came from."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from veritensor_fast import report

from conftest import git_run, hf_token, init_repo, run_cli, scan_json


def two_repos(tmp_path: Path) -> tuple[list[Path], str]:
    """Two repositories with the same file name holding the same token: only ``repo`` tells them apart."""
    tok = hf_token()
    repos = []
    for name in ("alpha", "beta"):
        r = init_repo(tmp_path / name)
        (r / "config.py").write_text(f"HF_TOKEN = '{tok}'\n")
        git_run(r, "add", ".")
        git_run(r, "commit", "-q", "-m", "add config")
        repos.append(r)
    return repos, tok


def test_json_and_sarif_findings_carry_repo_when_several_repositories(tmp_path: Path) -> None:
    repos, _ = two_repos(tmp_path)
    code, rep = scan_json("--history", "--no-datastore", "--jobs", "1", *repos)
    assert code == 1
    assert [(f["repo"], f["path"]) for f in rep["findings"]] == [(str(repos[0]), "config.py"),
                                                                 (str(repos[1]), "config.py")]
    schema = json.loads((Path(report.__file__).parent / "findings.schema.json").read_text())
    jsonschema.validate(rep, schema)
    p = run_cli("scan", "--history", "--no-datastore", "--jobs", "1", "--format", "sarif", "--no-progress", *repos)
    results = json.loads(p.stdout)["runs"][0]["results"]
    assert sorted(r["properties"]["repo"] for r in results) == sorted(map(str, repos))
    text = run_cli("scan", "--history", "--no-datastore", "--jobs", "1", "--no-progress", *repos).stdout
    assert f"{repos[0]}: config.py" in text and f"{repos[1]}: config.py" in text


def test_one_repository_has_no_repo_field(tmp_path: Path) -> None:
    repos, _ = two_repos(tmp_path)
    code, rep = scan_json("--history", "--no-datastore", "--jobs", "1", repos[0])
    assert code == 1 and len(rep["findings"]) == 1 and "repo" not in rep["findings"][0]
