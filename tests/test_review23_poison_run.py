"""review23: a run of files that each kill the worker scanning them costs those files only.

Each such file is isolated (retried alone) and reported as a ``crash`` error; every other file is still scanned
and every finding in it reported. A worker-restart budget that counts these deaths as memory starvation (every
worker dying on every item) must not be reached by a tree that holds more of them than the budget, one after the
other: the items that die alone are attributed, the files scanned between them finish. The real CLI runs in a
subprocess (``faulty_worker.py`` kills the worker that opens a file named ``*poison.txt``, as a native crash or
the OOM killer would).
"""

from __future__ import annotations

import json
from pathlib import Path

from test_engine_faults import make_tree, run

from veritensor_fast.findings import redact

#: Files that kill their worker, named one after the other, before every other file: above a restart budget of
#: ``8 + 2 x in-flight`` (16 at ``--jobs 2``).
POISONED = 24


def test_a_run_of_worker_killing_files_loses_no_other_finding(tmp_path: Path) -> None:
    root = tmp_path / "t"
    toks = make_tree(root, tokens=12, files=700)
    for i in range(POISONED):
        (root / f"e{i:02}_poison.txt").write_text("harmless bytes\n")
    p = run("scan", str(root), "--jobs", "2", "--format", "json", "--no-progress", env={"FAULT": "SIGKILL"},
            timeout=300)
    assert p.stdout, p.stderr[-3000:]
    rep = json.loads(p.stdout)
    assert sorted(f["redacted"] for f in rep["findings"]) == sorted(redact(t) for t in toks)  # every token, once
    poisoned = sorted(["poison.txt"] + [f"e{i:02}_poison.txt" for i in range(POISONED)])
    assert sorted(e["path"] for e in rep["errors"]) == poisoned  # those files, and nothing else, not scanned
    assert {e["kind"] for e in rep["errors"]} == {"crash"}
    assert rep["stats"]["files"] == 700 and p.returncode == 1
