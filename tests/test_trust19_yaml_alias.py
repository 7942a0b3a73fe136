"""trust19: YAML aliases cannot make the encoded pass walk a document exponentially.

The docker-config walk of a parsed YAML document followed aliases into the same node again and again: a
524-byte file (10 aliases per level, 9 levels: 10^9 nodes) held one worker for hours on main (the test's
60 s timeout kills it). Each node is walked once now; a docker config under an anchor is still found."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

from conftest import CLI, rand, scan_peak


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_a_yaml_alias_bomb_is_walked_once(tmp_path: Path) -> None:
    tok = "ghp_" + rand(36)
    cfg = _b64(json.dumps({"auths": {"ghcr.io": {"auth": _b64(f"bot:{tok}")}}}))
    lines = ["kind: Secret", f"l0: &l0 [{{dockerconfigjson: {cfg}}}, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    p = subprocess.run(["timeout", "-s", "KILL", "60", "prlimit", "--as=2000000000", "--", *CLI, "scan",
                        "--format", "json", "--no-progress", "--jobs", "1", str(tmp_path)],
                       capture_output=True, text=True, timeout=90, check=False, env=dict(os.environ))
    assert p.returncode == 1, (p.returncode, p.stderr[-1000:])
    rep = json.loads(p.stdout)
    assert [(f["rule_id"], f["line"], f["decoded"]) for f in rep["findings"]] == [
        ("github.token", 2, "base64 → json → base64")], rep["findings"]


def test_a_dense_yaml_is_not_composed_past_the_budget(tmp_path: Path) -> None:
    """A 6 MiB hinted YAML of flow items (inside ``MAX_YAML``) composed to ~900 MB on main; now it is not
    parsed (a ``limit`` error), its text is still scanned, and the worker stays small."""
    env = dict(os.environ)
    tok = "ghp_" + rand(36)
    (tmp_path / "dense.yaml").write_text(f"kind: Secret\ntoken: {tok}\nx: [" + "a," * (3 << 20) + "a]\n")
    out = scan_peak(tmp_path, env)
    assert [k for k, _ in out["errors"]] == ["limit"] and "YAML" in out["errors"][0][1], out
    assert out["findings"] == 1 and out["rss_kb"] < 600_000, out
