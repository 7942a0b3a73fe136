"""SARIF annotations land on the secret's line of the raw .ipynb file, not the cell-relative line."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import hf_token, run_cli


def test_notebook_sarif_region_is_the_raw_file_line(tmp_path: Path) -> None:
    src, out_tok = hf_token(), hf_token()
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Training\n", "Some notes.\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": ["import os\n", f"TOKEN = '{src}'\n"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["step 1\n", f"Token is valid: {out_tok}\n"]}]},
    ], "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    raw_lines = path.read_text().splitlines()
    p = run_cli("scan", "--no-progress", "-f", "sarif", path)
    assert p.returncode == 1, p.stderr
    results = json.loads(p.stdout)["runs"][0]["results"]
    assert len(results) == 2
    for res in results:
        region = res["locations"][0]["physicalLocation"]["region"]
        line = raw_lines[region["startLine"] - 1]
        props = res["properties"]
        tok = src if props["location"]["part"] == "source" else out_tok
        assert tok in line, (region, line)
        assert region["startLine"] > 2  # not the '"cells": [' line
        assert props["location"]["cell"] == 1 and props["cellLine"] == 2


def test_sarif_rules_carry_help_from_explain(tmp_path: Path) -> None:
    from sarif_pydantic import Sarif

    (tmp_path / "a.env").write_text(f"T={hf_token()}\n")
    p = run_cli("scan", "--no-progress", "-f", "sarif", tmp_path)
    doc = json.loads(p.stdout)
    Sarif.model_validate(doc)
    (rule,) = doc["runs"][0]["tool"]["driver"]["rules"]
    assert "Revoke and rotate" in rule["help"]["text"] and "huggingface.co/settings/tokens" in rule["help"]["markdown"]
