"""nb19: the notebook walk answers a batch of code cells with no candidate by one Python-AST prefilter scan of
their concatenation (``PythonAstSecrets.none_wanted``) instead of one ``wanted`` call (a Hyperscan scan) per
cell, and builds a code cell's location only when the cell gives a finding.

The answers must stay those of one ``wanted`` per cell: ``none_wanted`` is true only when every ``wanted`` is
false (checked on adversarial cells: triggers at a cell's start and end, next to the separator, cut across two
cells), a prefilter with an anchored pattern is never asked about a concatenation, and notebooks whose only
AST finding hides among quiet cells give the same findings as one cell at a time (``BATCH_BYTES = 0``).
``test_none_wanted_*`` fail on the code before nb19 (no ``none_wanted``).
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
import test_notebook

from veritensor_fast.detectors import nb_walk
from veritensor_fast.detectors.pyast import PythonAstSecrets
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token

ctx, scan = test_notebook.ctx, test_notebook.scan_bytes  # a fixture and a helper


def ast_det(ctx: WorkerContext) -> PythonAstSecrets:
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    assert isinstance(det, PythonAstSecrets)
    return det


def _cells(rng: random.Random) -> list[bytes]:
    """Code cells: plain ones, and pieces of AST-only secret shapes at every edge (start, end, alone)."""
    tok = hf_token(rng)
    shapes = [f'k = "{tok[:5]}" + "{tok[5:]}"', f"k = '{tok[:3]}' '{tok[3:]}'", f'chr(104) + "{tok[1:]}"',
              f'str("{tok[:8]}")', f'os.environ["HF_TOKEN"] = f"{tok[:6]}{{x}}"', f'"{tok[:4]}', f'{tok[:6]}"',
              "sk-", '"sk-', 'x = "sk-proj-', "'hf_", "hf_'", f"{tok}", "import os\nprint('hi')\n", "x = 1",
              "'", '"', "", "\x00", "a\x00'hf_"]
    out = []
    for _ in range(rng.randint(1, 6)):
        s = rng.choice(shapes)
        if rng.random() < 0.5:
            s = rng.choice(["", "y = 'a'\n", "# c\n", "f("]) + s + rng.choice(["", "\n", ")", " + z"])
        out.append(s.encode())
    return out


def test_none_wanted_only_when_no_cell_is_wanted(ctx: WorkerContext) -> None:
    det = ast_det(ctx)
    rng = random.Random(19)
    seen = {True: 0, False: 0}
    for _ in range(3000):
        bufs = _cells(rng)
        any_wanted = any(det.wanted(b) for b in bufs)
        if det.none_wanted(bufs):
            assert not any_wanted, bufs
        seen[any_wanted] += 1
    assert seen[True] > 300 and seen[False] > 300, seen  # both answers are exercised
    assert det.none_wanted([]) and det.none_wanted([b"x = 1", b"print(2)"])
    assert not det.none_wanted([b"x = 1", b'k = "hf_" + "abc"'])


@pytest.mark.parametrize("anchored", [b"^zzq", b"zzq$", b"\\Azzq", b"zzq\\z", b"zzq\\Z", b"\\x41\\Gzzq"])
def test_none_wanted_never_joins_under_an_anchored_prefilter(ctx: WorkerContext, anchored: bytes) -> None:
    """A prefilter pattern anchored to the buffer's start matches a cell alone, not inside the concatenation:
    ``none_wanted`` then answers False (ask each cell) whatever the cells hold."""
    det = PythonAstSecrets(ctx)
    assert det._joinable()
    db, shapes, plan = det._pre
    fresh = PythonAstSecrets(ctx)
    fresh._prefilter = (db, shapes, dataclasses.replace(plan, patterns=[*plan.patterns, (anchored, False)]))
    fresh._built = True
    assert not fresh._joinable()
    assert not fresh.none_wanted([b"x = 'a'", b"y = 'b'"]) and not fresh.none_wanted([b"x = 1"])
    assert fresh.none_wanted([])


def _notebook(rng: random.Random, ast_cell: str | None, where: int, n: int = 30) -> bytes:
    cells: list[dict[str, Any]] = [
        {"cell_type": rng.choice(["code", "code", "markdown"]), "id": f"c{i}", "metadata": {},
         "source": [f"x_{i} = '{i}'\n", "print(x)\n"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"{i}\n"]}]} for i in range(n)]
    for c in cells:
        if c["cell_type"] == "markdown":
            del c["outputs"]
    if ast_cell is not None:
        cells[where] = {"cell_type": "code", "id": "hit", "metadata": {}, "outputs": [], "source": ast_cell}
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1).encode()


@pytest.mark.parametrize("where", [0, 13, 29])
def test_ast_secret_among_quiet_cells(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      where: int) -> None:
    """A secret only the Python-AST helper reassembles, in the first, a middle or the last of 30 cells whose
    batch has no candidate: found in that cell, exactly as one cell at a time finds it."""
    tok = hf_token(random.Random(where))
    data = _notebook(random.Random(where), f'token = "{tok[:5]}" + "{tok[5:]}"\n', where)
    fs, errs = scan(ctx, tmp_path, data)
    assert errs == []
    got = [(f.secret, (f.location or {}).get("cell"), (f.location or {}).get("part"), f.line) for f in fs]
    assert (tok, where, "source", 1) in got, got
    monkeypatch.setattr(nb_walk, "BATCH_BYTES", 0)
    ref, errs = scan(ctx, tmp_path, data, "b.ipynb")
    assert errs == []
    key = sorted((f.rule_id, f.secret, f.line, f.column, json.dumps(f.location, sort_keys=True)) for f in fs)
    assert key == sorted((f.rule_id, f.secret, f.line, f.column, json.dumps(f.location, sort_keys=True))
                         for f in ref)


def test_quiet_notebook_parses_no_cell(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 quiet cells: no per-cell ``wanted`` call and nothing parsed; no finding."""
    calls: list[int] = []
    real = PythonAstSecrets.wanted

    def counting(self: PythonAstSecrets, buf: Any) -> bool:
        calls.append(len(buf))
        return real(self, buf)

    monkeypatch.setattr(PythonAstSecrets, "wanted", counting)
    fs, errs = scan(ctx, tmp_path, _notebook(random.Random(1), None, 0))
    assert errs == [] and fs == [] and calls == []


def test_ast_disabled_walks_sources_as_text(tmp_path: Path) -> None:
    """With the AST pass off, a code cell is plain text: its literal token is found, the split one is not."""
    tok, tok2 = hf_token(random.Random(3)), hf_token(random.Random(4))
    c = WorkerContext(ScanOptions(python_ast=False))
    data = _notebook(random.Random(2), f'a = "{tok}"\nb = "{tok2[:5]}" + "{tok2[5:]}"\n', 7)
    fs, errs = scan(c, tmp_path, data)
    assert errs == [] and [(f.secret, (f.location or {}).get("cell"), f.line) for f in fs] == [(tok, 7, 1)]


def test_quiet_sources_seen_again_are_not_matched_again(ctx: WorkerContext, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A second version of a notebook (as a git history holds it): its code cells that gave nothing before are
    neither matched nor asked about again, and the findings are those of a fresh detector, the AST-only secret
    and a new literal token among them."""
    c = WorkerContext(ScanOptions())
    tok, tok2 = hf_token(random.Random(5)), hf_token(random.Random(6))
    v1 = _notebook(random.Random(7), f'token = "{tok[:5]}" + "{tok[5:]}"\n', 4)
    doc = json.loads(v1)
    doc["cells"][9]["source"] = [f"key = '{tok2}'\n"]
    doc["cells"][9]["cell_type"] = "code"
    v2 = json.dumps(doc, indent=1).encode()
    scan(c, tmp_path, v1)
    calls: list[bytes] = []
    real = PythonAstSecrets.wanted

    def counting(self: PythonAstSecrets, buf: Any) -> bool:
        calls.append(bytes(buf))
        return real(self, buf)

    monkeypatch.setattr(PythonAstSecrets, "wanted", counting)
    fs, errs = scan(c, tmp_path, v2, "v2.ipynb")
    again = list(calls)
    fresh, errs2 = scan(WorkerContext(ScanOptions()), tmp_path, v2, "v3.ipynb")
    assert errs == errs2 == []

    def key(found: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((f.rule_id, f.secret, f.line, f.column, json.dumps({**(f.location or {})}, sort_keys=True))
                      for f in found)

    assert key(fs) == key(fresh)
    assert {(f.secret, (f.location or {}).get("cell")) for f in fs} >= {(tok, 4), (tok2, 9)}
    # only the cell that gave something and the changed one are asked about (a fresh detector: every code cell)
    assert sorted(again) == sorted({b for b in calls if b.startswith((b"token", b"key"))}), again
    assert len(calls) - len(again) == sum(cell["cell_type"] == "code" for cell in doc["cells"]) > 10


def test_quiet_sources_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb_walk, "QUIET_BYTES", 1000)
    q = nb_walk.QuietSources()
    for i in range(100):
        src = f"x_{i} = '\u00e9' + {i}\n" * 5
        q.add(src, len(src.encode()))
        assert q.size <= 1000 and q.size == sum(len(s.encode()) + 128 for s in q.known)
    q.add("y" * 5000, 5000)  # larger than the bound alone: not kept
    assert "y" * 5000 not in q.known and q.size <= 1000
