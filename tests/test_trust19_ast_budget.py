"""trust19: ``ast.parse`` of a dense Python source is bounded by a per-worker memory budget (``pyast_budget``).

On main a 5 MiB file of ``a`` lines (inside ``pyast.MAX_SOURCE``) was parsed: ~4.6 GB in one worker. Now a
source whose estimated parse peak is over the budget is not parsed; its text is still scanned, and the skipped
AST pass is a ``limit`` error (exit code 3). Memory is measured in a subprocess under an address-space cap.
Since bigpy20 such a source is parsed in pieces of top-level statements (``pyast_chunks``): the dense sources here
are one statement over the budget, which cannot be cut."""

from __future__ import annotations

import io
import json
import os
import tokenize
from pathlib import Path

import pytest

from veritensor_fast.detectors.pyast_budget import UNIT_COST, parse_units

from conftest import hf_token, scan_json, scan_peak

SMALL = {"VERITENSOR_FAST_AST_BUDGET": str(1 << 20)}  # 1 MiB: 630 units
#: One top-level statement over the small budget (bigpy20: a source of many small statements is parsed in pieces).
DENSE = "x = [" + "a," * 2000 + "]\n"


def _split_secret(tok: str) -> str:
    """A token only the AST pass finds (split across a concatenation)."""
    return f't = "{tok[:3]}" + "{tok[3:20]}" + "{tok[20:]}"\n'


@pytest.mark.parametrize("src", [
    "a\n" * 500, "a;" * 500, "x = [" + "1," * 500 + "]\n", "x = a" + " or a" * 300 + "\n",
    "def f(a, b=1):\n    return f'{a}' + \"b\"  # c d e\n" * 40, "é = 1\r\n" * 50, "x = (a ,\n b)\n" * 80,
])
def test_units_bound_the_tokens(src: str) -> None:
    """The estimate is an upper bound on the real tokenizer's count (the parse's memory grows with tokens)."""
    toks = [t for t in tokenize.tokenize(io.BytesIO(src.encode()).readline)
            if t.type not in (tokenize.ENCODING, tokenize.ENDMARKER, tokenize.DEDENT, tokenize.INDENT)]
    assert parse_units(src.encode()) >= len(toks)


def test_a_dense_source_is_not_parsed_its_text_is_scanned(tmp_path: Path) -> None:
    plain, split = hf_token(), hf_token()
    (tmp_path / "dense.py").write_text(f'KEY = "{plain}"\n' + _split_secret(split) + DENSE)
    (tmp_path / "sparse.py").write_text(_split_secret(split))
    code, rep = scan_json("--jobs", "1", str(tmp_path), env=SMALL)
    errs = [e for e in rep["errors"] if e["path"].endswith("dense.py")]
    assert len(errs) == 1 and errs[0]["kind"] == "limit" and "AST memory budget" in errs[0]["reason"], rep["errors"]
    assert code == 1  # findings (and errors: without findings it is 3, below)
    by_path = {(Path(f["path"]).name, f["line"]) for f in rep["findings"]}
    assert ("dense.py", 1) in by_path  # the text pass still ran on the skipped file
    assert ("sparse.py", 1) in by_path  # a source within the budget is parsed as before
    assert plain not in json.dumps(rep) and split not in json.dumps(rep)


def test_an_ordinary_source_of_the_same_size_is_parsed(tmp_path: Path) -> None:
    """The budget follows density, not size: a long file of ordinary statements stays under it."""
    split = hf_token()
    body = "".join(f"value_number_{i} = compute_something(argument_one, argument_two)\n" for i in range(40))
    src = _split_secret(split) + body
    assert parse_units(src.encode()) * UNIT_COST <= 1 << 20 < len(src) * UNIT_COST
    (tmp_path / "ok.py").write_text(src)
    code, rep = scan_json("--jobs", "1", str(tmp_path), env=SMALL)
    assert rep["errors"] == [] and [f["line"] for f in rep["findings"]] == [1], rep


def test_a_dense_notebook_cell_is_not_parsed(tmp_path: Path) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": _split_secret(hf_token()) + DENSE}]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb))
    code, rep = scan_json("--jobs", "1", str(tmp_path), env=SMALL)
    assert [e["kind"] for e in rep["errors"]] == ["limit"] and "code cell 0" in rep["errors"][0]["reason"], rep
    assert code == 3 and rep["findings"] == []  # incomplete: the split token needs the AST pass


def test_a_4_5_mib_dense_file_stays_in_bounded_memory(tmp_path: Path) -> None:
    """The default budget, at full size: on main this parse needs ~4.1 GB (under the 2 GB cap it failed with a
    MemoryError that was taken for "not Python" and reported nothing)."""
    plain = hf_token()
    (tmp_path / "dense.py").write_bytes((f'KEY = "{plain}"\n' + _split_secret(hf_token())).encode() + b"x = [" + b"a," * (9 << 18) + b"]\n")  # 4.5 MiB: under MAX_SOURCE
    env = {k: v for k, v in os.environ.items() if k != "VERITENSOR_FAST_AST_BUDGET"}
    out = scan_peak(tmp_path, env)
    assert [k for k, _ in out["errors"]] == ["limit"] and out["findings"] == 1, out
    assert out["rss_kb"] < 600_000, out  # the parse would be ~4.1 GB; the scan itself needs ~100 MB
