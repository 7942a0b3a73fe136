"""Memory starvation inside the process: a JSON parse with no room is an out-of-memory error, not a crash and
not a corrupt file.

orjson dies with SIGSEGV when an allocation fails while it builds the objects (``--jobs 1`` under
``prlimit --as=50M`` lost the whole scan of a monorepo) and reports a failed first buffer as invalid JSON at
line 1 column 1. ``jsonload.loads`` reserves the room first; the real CLI runs in a subprocess under an
address-space cap, and the report must exist, name memory, keep every other finding and exit 3.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import hf_token, run_cli, scan_json


def _notebook(path: Path, secret: str = "") -> None:
    """A 3 MB notebook of one-character strings: orjson's parse buffer alone would take ~30 MB."""
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ["a", "b"] * 400} for _ in range(800)]
    if secret:
        cells[400]["source"] = [f'token = "{secret}"\n']
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _scan(tree: Path, out: Path, cap: int, jobs: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    run_cli("scan", tree / "a_config.py", "--no-progress")  # the rule databases compiled and cached, uncapped
    p = run_cli("scan", tree, "--jobs", jobs, "--format", "json", "--no-progress", "-o", out, cap=cap)
    assert out.exists(), (p.returncode, p.stderr[-2000:])  # the baseline: SIGSEGV in orjson, no report
    return p.returncode, json.loads(out.read_text())


def _only_memory_errors(rep: dict) -> None:  # type: ignore[type-arg]
    errs = rep["errors"]
    assert errs and all(e["path"] == "big.ipynb" for e in errs), errs
    assert all(e["kind"] == "limit" and "out of memory" in e["reason"] for e in errs), errs
    assert not any("valid JSON" in e["reason"] for e in errs)  # the baseline's "not valid JSON: line 1 column 1"


# 100 MiB: orjson's buffer fits, its objects do not (the baseline dies with SIGSEGV); 70 MiB: its buffer does
# not fit (the baseline reports the notebook as invalid JSON); each capped process holds ~50 MiB before it scans
@pytest.mark.parametrize(("cap", "jobs"), [(100 << 20, "1"), (70 << 20, "1"), (100 << 20, "2")])
def test_a_notebook_without_room_to_parse_is_an_out_of_memory_error(tree: Path, token: str, tmp_path: Path,
                                                                   cap: int, jobs: str) -> None:
    (tree / "a_config.py").write_text(f'HF = "{token}"\n')
    _notebook(tree / "big.ipynb", token[:-4] + "WXYZ")
    code, rep = _scan(tree, tmp_path / "r.json", cap, jobs)
    assert code == 1  # findings decide the exit code (the errors make it incomplete too)
    found = {(f["path"], f["rule_id"]) for f in rep["findings"]}
    assert ("a_config.py", "huggingface.user-token") in found  # the rest of the scan is kept
    assert ("big.ipynb", "huggingface.user-token") in found  # the text pass still read the notebook's bytes
    _only_memory_errors(rep)


def test_without_findings_the_scan_is_incomplete(tree: Path, tmp_path: Path) -> None:
    (tree / "a_config.py").write_text("HF = None\n")
    _notebook(tree / "big.ipynb")
    code, rep = _scan(tree, tmp_path / "r.json", 100 << 20, "1")
    assert code == 3 and not rep["findings"]
    _only_memory_errors(rep)


def test_loads_without_room_raises_memory_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under no cap the reservation never fails and the result is orjson's; invalid JSON stays a decode error."""
    from veritensor_fast import jsonload, memroom

    assert jsonload.loads(b'{"a": [1, "x"]}') == {"a": [1, "x"]}
    with pytest.raises(jsonload.JSONDecodeError):
        jsonload.loads(b'{"a": ')
    monkeypatch.setattr(memroom, "GUARDED", True)  # as under a cap (uncapped, the check is skipped)
    with pytest.raises(MemoryError, match="memory"):
        memroom.room(1 << 62)

    class Huge(bytes):
        def __len__(self) -> int:
            return 1 << 57

    with pytest.raises(MemoryError, match="memory"):  # refused before orjson sees it
        jsonload.loads(Huge(b"[]"))


def test_invalid_utf8_notebook_is_a_parse_error_not_out_of_memory(tmp_path: Path) -> None:
    """orjson reports invalid UTF-8 at byte 0 too: a notebook with one Latin-1 byte is invalid JSON (scanned as
    text), not an allocation that failed (the lead's final read: it was reported as out of memory, uncapped)."""
    tok = hf_token()
    nb = {"cells": [{"cell_type": "code", "source": ['x = "PLACE"\n', f'T = "{tok}"\n'], "metadata": {},
                     "outputs": []}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "n.ipynb").write_bytes(json.dumps(nb).encode().replace(b"PLACE", b"caf\xe9"))
    code, rep = scan_json(tmp_path, "--jobs", "1")
    assert code == 1 and [f["rule_id"] for f in rep["findings"]] == ["huggingface.user-token"]
    assert [e["kind"] for e in rep["errors"]] == ["parse"], rep["errors"]
    assert "out of memory" not in json.dumps(rep["errors"])
