"""No hiding place in a notebook: the raw bytes always go through the text pass too, and a deeply nested
notebook is a ``limit`` error (never a memory blow-up) whose bytes are still scanned as text.

Ground truth: every planted token is reported exactly once. On the code before this change, a token in a
cell id, in the first of two duplicate ``"cells"`` keys or in a stream output's ``name`` was never reported,
and a notebook with 100,000 nested arrays drove the scanner past 23 GB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CLI, hf_token, scan_json

REPRO = Path("/work/shared/repro")


def nb(cells: list[dict[str, object]]) -> dict[str, object]:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(**kw: object) -> dict[str, object]:
    return {"cell_type": "code", "source": "x=1", "metadata": {}, "outputs": [], "execution_count": None, **kw}


def test_repro_evasions_found(tmp_path: Path) -> None:
    toks = [hf_token() for _ in range(3)]
    d = tmp_path / "nbs"
    gen = REPRO / "mk_nb_evasions.py"
    if gen.exists():
        subprocess.run([sys.executable, str(gen), str(d), *toks], check=True, timeout=30)
    else:  # the same three notebooks, built here
        d.mkdir()
        (d / "cell_id.ipynb").write_text(json.dumps(nb([code(id=toks[0])])))
        first = json.dumps([code(source=f"k='{toks[1]}'")])
        (d / "dup_cells.ipynb").write_text(
            '{"cells": ' + first + ', "cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        (d / "output_name.json").write_text(json.dumps(nb([code(outputs=[
            {"output_type": "stream", "name": toks[2], "text": "ok"}])])))
    code_, rep = scan_json(d, "--show-secrets")
    assert code_ == 1
    assert sorted(f["secret"] for f in rep["findings"]) == sorted(toks)
    assert rep["errors"] == []


@pytest.mark.parametrize("where", ["cell_type", "execution_count", "output_type", "nbformat_key", "top_key"])
def test_token_in_any_skipped_field(tmp_path: Path, where: str) -> None:
    tok = hf_token()
    doc: dict[str, object]
    if where == "cell_type":
        doc = nb([code(cell_type=tok)])
    elif where == "execution_count":
        doc = nb([code(execution_count=tok)])
    elif where == "output_type":
        doc = nb([code(outputs=[{"output_type": tok, "text": "ok"}])])
    elif where == "nbformat_key":
        doc = {**nb([code()]), "nbformat_minor": tok}
    else:
        doc = {**nb([code()]), tok: 1}  # a token as a key of the top-level object
    (tmp_path / "n.ipynb").write_text(json.dumps(doc, indent=1))
    code_, rep = scan_json(tmp_path, "--show-secrets")
    assert code_ == 1 and [f["secret"] for f in rep["findings"]] == [tok]
    f = rep["findings"][0]
    raw_line = next(i for i, ln in enumerate((tmp_path / "n.ipynb").read_text().splitlines(), 1) if tok in ln)
    assert f["line"] == raw_line


def test_structured_and_raw_not_doubled(tmp_path: Path) -> None:
    """A token the parser sees is reported once (with its cell), a second copy in a hidden field once more."""
    tok, other = hf_token(), hf_token()
    doc = nb([code(source=f"t = '{tok}'\n", outputs=[{"output_type": "stream", "name": "stdout",
                                                       "text": f"{other}\n"}]),
              code(id=tok)])
    (tmp_path / "n.ipynb").write_text(json.dumps(doc, indent=1))
    code_, rep = scan_json(tmp_path, "--show-secrets")
    got = sorted((f["secret"], (f["location"] or {}).get("part")) for f in rep["findings"])
    assert got == sorted([(tok, "source"), (tok, "raw"), (other, "output")])
    code_, rep = scan_json(tmp_path, "--show-secrets", "--no-include-outputs")
    got = sorted((f["secret"], (f["location"] or {}).get("part")) for f in rep["findings"])
    assert got == sorted([(tok, "source"), (tok, "raw")])  # an excluded output stays excluded


def test_escaped_private_key_in_notebook_reported_once(tmp_path: Path) -> None:
    import base64
    import os
    import textwrap

    body = textwrap.wrap(base64.b64encode(os.urandom(600)).decode(), 64)
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END RSA PRIVATE KEY-----\n"
    (tmp_path / "k.ipynb").write_text(json.dumps(nb([code(source=key.splitlines(True))]), indent=1))
    code_, rep = scan_json(tmp_path)
    assert [(f["rule_id"], f["location"]["part"]) for f in rep["findings"]] == [("private-key.pem", "source")]


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2_000_000_000, 2_000_000_000))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_deep_nesting_is_a_limit_error_under_2gb(tmp_path: Path, jobs: str) -> None:
    """100,000 nested arrays in a > 8 MiB notebook (the streamed path): a ``limit`` error, the tokens in the
    same notebook and beside it found, under a 2 GB address-space cap."""
    depth = 100_000
    tok, beside = hf_token(), hf_token()
    deep = "[" * depth + '"x"' + "]" * depth
    pad = "A" * (9 << 20)
    d = tmp_path / "t"
    d.mkdir()
    first = json.dumps(code(source=f"k = '{tok}'", outputs=[{"output_type": "stream", "name": "stdout",
                                                               "text": pad}]))
    (d / "deep.ipynb").write_text(  # the layout of shared/repro/mk_deep_nb.py
        '{"cells": [' + first + ', {"cell_type": "code", "source": "x", "metadata": {}, "outputs": [{"output_type":'
        ' "execute_result", "data": {"application/json": ' + deep + '}, "metadata": {}}]}], "metadata": {}, '
        '"nbformat": 4, "nbformat_minor": 5}')
    (d / "b.py").write_text(f"T = '{beside}'\n")
    p = subprocess.run([*CLI, "scan", str(d), "--format", "json", "--no-progress", "--show-secrets",
                        "--jobs", jobs], capture_output=True, text=True, timeout=120, preexec_fn=_limited)
    assert p.returncode == 1, p.stderr[-2000:]  # findings (exit 1) outrank the incomplete scan (3)
    rep = json.loads(p.stdout)
    assert sorted(f["secret"] for f in rep["findings"]) == sorted([tok, beside])
    errs = [(e["path"], e["kind"]) for e in rep["errors"]]
    assert errs == [("deep.ipynb", "limit")]
    assert "deeper than" in rep["errors"][0]["reason"]


def test_small_deep_notebook_is_a_limit_error(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "d.ipynb").write_text(json.dumps(nb([code(source=f"k='{tok}'")]))[:-1]
                                      + ', "x": ' + "[" * 5000 + "]" * 5000 + "}")
    code_, rep = scan_json(tmp_path, "--show-secrets")
    assert code_ == 1 and [f["secret"] for f in rep["findings"]] == [tok]
    assert [e["kind"] for e in rep["errors"]] == ["limit"]


def test_nesting_prepass_exact() -> None:
    from veritensor_fast.detectors.nb_guard import nesting_exceeds

    assert not nesting_exceeds(b"[" * 10 + b"]" * 10, 10)
    assert nesting_exceeds(b"[" * 11 + b"]" * 11, 10)
    assert not nesting_exceeds(b'["' + b"[" * 50 + b'"]', 10)  # brackets inside a string do not count
    assert not nesting_exceeds(b'["\\"' + b"[" * 50 + b'"]', 10)  # nor after an escaped quote
    assert nesting_exceeds(b'["\\\\"' + b",[" * 50 + b"]" * 51, 10)  # an escaped backslash ends no string
    big = b'{"a": "' + b"\\\\" * (300 << 10) + b'", "b": ' + b"[" * 20 + b"]" * 20 + b"}"  # escapes over chunks
    assert nesting_exceeds(big, 15) and not nesting_exceeds(big, 21)


def _ref_depth(data: bytes) -> int:
    """Reference: max bracket depth outside strings; a quote after an odd run of backslashes is escaped."""
    depth = best = 0
    in_str = False
    run = 0
    for c in data:
        if c == 0x22 and run % 2 == 0:
            in_str = not in_str
        elif not in_str and c in b"[{":
            depth += 1
            best = max(best, depth)
        elif not in_str and c in b"]}":
            depth -= 1
        run = run + 1 if c == 0x5C else 0
    return best


@given(st.binary(min_size=0, max_size=300).map(lambda b: bytes(b"[]{}\"\\a,"[x % 8] for x in b)),
       st.integers(min_value=1, max_value=9))
def test_nesting_prepass_matches_reference(data: bytes, chunk: int) -> None:
    from veritensor_fast.detectors import nb_guard

    old = nb_guard._CHUNK
    nb_guard._CHUNK = chunk  # tiny chunks: every boundary case (escape runs, quotes) is crossed
    try:
        ref = _ref_depth(data)
        assert nb_guard.nesting_exceeds(data, ref) is False
        if ref > 0:
            assert nb_guard.nesting_exceeds(data, ref - 1) is True
    finally:
        nb_guard._CHUNK = old
