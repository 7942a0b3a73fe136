"""Baselines: stable, secret-free files; scans with --baseline report only new findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import hf_token, run_cli, scan_json


def make_tree(root: Path, tokens: list[str]) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text(f"A = '{tokens[0]}'\nB = '{tokens[1]}'\n", encoding="utf-8")
    (root / "notes.md").write_text(f"token: {tokens[2]}\n", encoding="utf-8")


def create(root: Path, out: Path, *extra: str) -> str:
    p = run_cli("baseline", "create", ".", "-o", out, "--jobs", "1", *extra, cwd=root)
    assert p.returncode == 0, p.stderr
    return out.read_text(encoding="utf-8")


def test_create_is_stable_and_secret_free(tmp_path: Path) -> None:
    toks = [hf_token() for _ in range(3)]
    root = tmp_path / "repo"
    make_tree(root, toks)
    # outside a git work tree, paths are relative to the baseline file's directory: keep it at the tree's top
    first = create(root, root / "b1.json")
    second = create(root, root / "b2.json")
    assert first == second  # byte-identical
    doc = json.loads(first)
    assert doc["format"] == "veritensor-fast-baseline" and doc["version"] == 2
    entries = doc["findings"]
    assert [(e["path"], e["rule_id"]) for e in entries] == sorted((e["path"], e["rule_id"]) for e in entries)
    assert {e["path"] for e in entries} == {"src/a.py", "notes.md"}
    assert len(entries) == 3
    for t in toks:
        assert t not in first and t[3:] not in first and t[-8:] not in first
    assert str(tmp_path) not in first  # no absolute paths
    # a copy of the tree elsewhere (another machine, another checkout) gives the same file
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(root, other)
    assert create(other, other / "b3.json") == first


def test_scan_with_baseline_reports_only_new(tmp_path: Path) -> None:
    toks = [hf_token() for _ in range(3)]
    root = tmp_path / "repo"
    make_tree(root, toks)
    bl = root / "baseline.json"
    create(root, bl)
    code, rep = scan_json(".", "-j1", "--baseline", bl, cwd=root)
    assert code == 0 and rep["findings"] == []
    # shifting lines does not make a known finding new; a new secret is reported
    new = hf_token()
    (root / "src" / "a.py").write_text(f"# moved\n\n\nB = '{toks[1]}'\nA = '{toks[0]}'\nC = '{new}'\n",
                                       encoding="utf-8")
    code, rep = scan_json(".", "-j1", "--baseline", bl, cwd=root)
    assert code == 1
    assert [(f["path"], f["line"]) for f in rep["findings"]] == [("src/a.py", 6)]
    # the same known secret copied into another file is new there
    (root / "copy.txt").write_text(f"x {toks[2]}\n", encoding="utf-8")
    code, rep = scan_json(".", "-j1", "--baseline", bl, cwd=root)
    assert sorted(f["path"] for f in rep["findings"]) == ["copy.txt", "src/a.py"]
    # the copied tree matches the baseline too
    other = tmp_path / "other"
    shutil.copytree(root, other)
    code, rep = scan_json(".", "-j1", "--baseline", bl, cwd=other)
    assert sorted(f["path"] for f in rep["findings"]) == ["copy.txt", "src/a.py"]


def test_baseline_from_config(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_tree(root, [hf_token() for _ in range(3)])
    create(root, root / ".veritensor-baseline.json")
    (root / ".veritensor-fast.toml").write_text('baseline = ".veritensor-baseline.json"\n', encoding="utf-8")
    code, rep = scan_json(".", "-j1", cwd=root)
    assert code == 0 and rep["findings"] == []


def test_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hi\n")
    bad = tmp_path / "bad.json"
    bad.write_text('{"findings": []}\n')
    p = run_cli("scan", ".", "--baseline", bad, cwd=tmp_path)
    assert p.returncode == 2 and "not a veritensor-fast baseline" in p.stderr
    p = run_cli("scan", ".", "--baseline", tmp_path / "missing.json", cwd=tmp_path)
    assert p.returncode == 2 and "cannot read baseline" in p.stderr
