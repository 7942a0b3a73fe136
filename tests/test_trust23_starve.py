"""Workers that die on every item (memory starvation): the local pool stops restarting them after a budget.

Under an address-space cap below what one item needs, every worker dies, and each item used to be retried
alone, one restart each (20,000 files: minutes). ``executors_local.failure_budget`` breaks in a row with nothing
finished between end it: every item not scanned is a ``crash`` error, exit 3, findings made so far are kept.
The real CLI runs in a subprocess (``faulty_worker.py`` kills the worker that opens a chosen file, as the OOM
killer would); nothing here asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from test_engine_faults import make_tree, run

#: ``executors_local.failure_budget(2)`` (``--jobs 2``), then ``PROBES`` probes alone (review23: a run of files that
#: each kill their worker must not look like starvation); checked below, after the behaviour
BUDGET, PROBES = 16, 3


def _scan(root: Path, fault_name: str, **env: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    p = run("scan", str(root), "--jobs", "2", "--format", "json", "--no-progress",
            env={"FAULT": "SIGKILL", "FAULT_NAME": fault_name, **env}, timeout=300)
    assert p.stdout, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    return p.returncode, json.loads(p.stdout)


def test_every_worker_dying_stops_after_the_budget_and_names_every_file(tmp_path: Path) -> None:
    make_tree(tmp_path / "t", tokens=0, files=700)
    code, rep = _scan(tmp_path / "t", "")  # every file kills its worker
    assert code == 3
    assert rep["stats"]["worker_restarts"] <= BUDGET + PROBES  # not one restart per file (the baseline: 878)
    paths = [e["path"] for e in rep["errors"]]
    assert sorted(paths) == sorted(os.listdir(tmp_path / "t"))  # each file named once: nothing lost silently
    assert {e["kind"] for e in rep["errors"]} == {"crash"}
    assert any("failed" in e["reason"] and "in a row" in e["reason"] for e in rep["errors"])
    from veritensor_fast import executors_local
    from veritensor_fast.executors_local import failure_budget

    assert failure_budget(2) == BUDGET and executors_local.PROBES == PROBES


def test_findings_before_the_workers_starve_are_kept(tmp_path: Path) -> None:
    """Memory runs out mid-scan: the first 600 files open, then every worker dies on every file."""
    toks = make_tree(tmp_path / "t", tokens=6, files=700)
    code, rep = _scan(tmp_path / "t", "", FAULT_AFTER="600", FAULT_COUNT=str(tmp_path / "count"))
    found = {f["path"] for f in rep["findings"]}
    errored = {e["path"] for e in rep["errors"]}
    assert found and code == 1  # what finished before is reported (findings decide the exit code)
    assert not found & errored and found | errored <= set(os.listdir(tmp_path / "t"))
    assert rep["stats"]["files"] + len(errored) == 701  # every file scanned, or named as not scanned
    assert len(rep["findings"]) == len(found) <= len(toks)
    assert any("in a row" in e["reason"] for e in rep["errors"])
    assert rep["stats"]["worker_restarts"] <= BUDGET + PROBES


def test_text_report_counts_what_it_does_not_list(tmp_path: Path) -> None:
    """The text report lists a few inputs per reason, then one line with the count (the JSON report has all)."""
    make_tree(tmp_path / "t", tokens=0, files=700)
    p = run("scan", str(tmp_path / "t"), "--jobs", "2", "--no-progress", env={"FAULT": "SIGKILL", "FAULT_NAME": ""},
            timeout=300)
    assert p.returncode == 3, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    more = [ln for ln in lines if ln.startswith("  ... and ")]
    assert more and len(lines) < 60, p.stdout[-3000:]  # not 701 lines
    listed = sum(1 for ln in lines if ln.startswith("  ") and ln.endswith("(crash)") and "... and" not in ln)
    assert listed + sum(int(ln.split()[2]) for ln in more) == 701
