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

from conftest import CLI, rand


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


#: The rules database is built (or read from the disk cache) by a warm-up run first: building it peaks at
#: about 1 GB in a fresh cache (the suite's own), which is not what is measured here.
PEAK = r"""
import json, resource, sys
from veritensor_fast import scan_paths
r = scan_paths([sys.argv[1]], jobs=1)
def hwm():  # this process's own peak (ru_maxrss carries the forking parent's peak over exec)
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
print(json.dumps({"rss_kb": hwm(),
                  "errors": [[e.kind, e.reason] for e in r.errors], "findings": len(r.findings)}))
"""


def test_a_dense_yaml_is_not_composed_past_the_budget(tmp_path: Path) -> None:
    """A 6 MiB hinted YAML of flow items (inside ``MAX_YAML``) composed to ~900 MB on main; now it is not
    parsed (a ``limit`` error), its text is still scanned, and the worker stays small."""
    env = dict(os.environ)
    tok = "ghp_" + rand(36)
    (tmp_path / "dense.yaml").write_text(f"kind: Secret\ntoken: {tok}\nx: [" + "a," * (3 << 20) + "a]\n")
    warm = tmp_path.parent / (tmp_path.name + "-warm")
    warm.mkdir()
    (warm / "a.txt").write_text("warm-up\n")
    subprocess.run([*CLI[:1], "-c", PEAK, str(warm)], capture_output=True, timeout=300, check=True, env=env)
    p = subprocess.run(["prlimit", "--as=2000000000", "--", *CLI[:1], "-c", PEAK, str(tmp_path)],
                       capture_output=True, text=True, timeout=120, check=False, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert [k for k, _ in out["errors"]] == ["limit"] and "YAML" in out["errors"][0][1], out
    assert out["findings"] == 1 and out["rss_kb"] < 600_000, out
