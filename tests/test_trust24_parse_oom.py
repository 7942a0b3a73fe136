"""trust24: a parse that runs out of memory is an out-of-memory error, never "not Python" or "not a literal".

CPython raises a bare ``MemoryError`` both when an allocation of the parser fails and when its own nesting limit
refuses hostile input (``-`` * 10,000 + ``1``). The baseline read both as bad input: a ``.npy`` header the
process had no room to parse was a ``model.npy.invalid`` finding ("not a Python literal"), and a Python source
the AST pass had no room for was silently "not Python" (no error: the scan looked complete). Now the error
that comes with no room for the parse's estimated peak (``pyast_budget.parse_starved``) is a ``limit`` error
naming memory; hostile nesting, with room to spare, stays a parse result. The real CLI runs in a subprocess
under an address-space cap (each capped process holds ~50 MiB before it scans).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from veritensor_fast.detectors import pyast_budget
from veritensor_fast.detectors.pyast import parse_python
from veritensor_fast.findings import OUT_OF_MEMORY
from veritensor_fast.models import formats

from conftest import hf_token, scan_json

CAP = 200 << 20  # room for the scanner, not for a ~500 MiB parse
ROOMY = 3 << 30  # under a cap (the room check is live), with room for every parse here
DEEP = "-" * 10_000 + "1"  # past CPython's parser nesting limit: a bare MemoryError with any amount of memory


def _npy(path: Path, shape: str) -> None:
    """A version-2 ``.npy`` header (a 4-byte length: up to 1 MiB) with ``shape`` as written, and no data."""
    h = ("{'descr': '<f8', 'fortran_order': False, 'shape': (" + shape + "), }").encode()
    h += b" " * (-(12 + len(h) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x02\x00" + len(h).to_bytes(4, "little") + h)


def _with_secret(tree: Path) -> str:
    tok = hf_token()
    (tree / "a_config.py").write_text(f'HF = "{tok}"\n')
    return tok


def _rules(rep: dict[str, Any], path: str) -> list[str]:
    return [f["rule_id"] for f in rep["findings"] if f["path"] == path]


def test_npy_header_without_room_is_an_out_of_memory_error(tree: Path) -> None:
    tok = _with_secret(tree)
    _npy(tree / "big.npy", "1, " * 300_000)  # ~0.9 MB of literal: a ~500 MiB parse
    code, rep = scan_json(tree, "--jobs", "1", cap=CAP)
    assert code == 1 and _rules(rep, "a_config.py") == ["huggingface.user-token"], rep  # the rest is kept
    assert rep["findings"][0]["redacted"].startswith(tok[:5])
    assert _rules(rep, "big.npy") == [], rep["findings"]  # the baseline: "not a Python literal" (a finding)
    errs = [e for e in rep["errors"] if e["path"] == "big.npy"]
    assert errs and all(e["kind"] == "limit" and "out of memory" in e["reason"] for e in errs), rep["errors"]


def test_npy_header_that_fits_is_parsed(tree: Path) -> None:
    _npy(tree / "big.npy", "1, " * 300_000)
    code, rep = scan_json(tree, "--jobs", "1", cap=ROOMY)
    assert (code, rep["findings"], rep["errors"]) == (0, [], [])


@pytest.mark.parametrize("cap", [None, CAP])
def test_npy_header_nested_too_deeply_stays_an_invalid_header(tree: Path, cap: int | None) -> None:
    _npy(tree / "deep.npy", DEEP + ",")
    code, rep = scan_json(tree, "--jobs", "1", cap=cap)
    assert code == 1 and _rules(rep, "deep.npy") == ["model.npy.invalid"], rep
    assert "not a Python literal" in rep["findings"][0]["message"] and not rep["errors"]


def _dense_python(tree: Path) -> tuple[str, str]:
    """A token only the AST pass joins, a literal one the text pass finds, and 120k short lines (~200 MiB to
    parse: under the AST budget, over what the capped process has)."""
    t1, t2 = hf_token(), hf_token()
    (tree / "big.py").write_text(f'T = "{t1[:8]}" + "{t1[8:]}"\nU = "{t2}"\n' + "a\n" * 120_000)
    return t1, t2


def test_python_source_without_room_to_parse_is_an_out_of_memory_error(tree: Path) -> None:
    _t1, t2 = _dense_python(tree)
    code, rep = scan_json(tree, "--jobs", "1", cap=CAP)
    assert code == 1
    assert [(f["redacted"], f.get("decoded")) for f in rep["findings"]] == [(t2[:5] + "…" + t2[-2:], None)]
    # the baseline: no error at all ("not Python"), the scan looked complete
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("big.py", "limit")], rep["errors"]
    assert rep["errors"][0]["reason"].startswith("out of memory")
    assert "text and encoded passes scanned it" in rep["errors"][0]["reason"]


def test_python_source_with_room_is_parsed(tree: Path) -> None:
    t1, _t2 = _dense_python(tree)
    code, rep = scan_json(tree, "--jobs", "1", cap=ROOMY)
    assert code == 1 and not rep["errors"], rep["errors"]
    assert "python-ast" in {f.get("decoded") for f in rep["findings"]}  # the joined token: the AST pass ran


@pytest.mark.parametrize("cap", [None, CAP])
def test_python_nested_too_deeply_is_not_python_not_out_of_memory(tree: Path, cap: int | None) -> None:
    tok = hf_token()
    (tree / "deep.py").write_text(f'T = "{tok[:8]}" + "{tok[8:]}"\nU = "{tok}"\nx = {DEEP}\n')
    code, rep = scan_json(tree, "--jobs", "1", cap=cap)
    assert code == 1 and not rep["errors"], rep["errors"]  # no AST pass for it (not Python), no error either
    assert [f["path"] for f in rep["findings"]] == ["deep.py"]


def test_parse_starved_tells_the_nesting_limit_from_no_room(monkeypatch: pytest.MonkeyPatch) -> None:
    from veritensor_fast import memroom

    assert parse_python(DEEP) is None  # uncapped: never starved
    monkeypatch.setattr(memroom, "GUARDED", True)  # as under a cap: the room check is live
    assert parse_python(DEEP) is None and not pyast_budget.parse_starved(DEEP)  # room enough: the parser's limit
    monkeypatch.setattr(memroom, "has_room", lambda n: n < 1024)
    assert pyast_budget.parse_starved(DEEP)
    with pytest.raises(MemoryError, match="out of memory"):
        parse_python(DEEP)
    h = ("{'descr': '<f8', 'fortran_order': False, 'shape': (" + DEEP + ",), }\n").encode()
    with pytest.raises(MemoryError, match="out of memory"):
        formats.npy_header(b"\x93NUMPY\x02\x00" + len(h).to_bytes(4, "little") + h, "")


def test_a_prefixed_zip_without_room_to_list_is_an_out_of_memory_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zipapp (a script, then a zip: its members hidden from the raw pass) whose central directory there is no
    room to list was "no archive": its members went unscanned and the scan looked complete."""
    import io
    import zipfile

    from veritensor_fast.findings import Item
    from veritensor_fast.models import containers
    from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app/config.py", f'HF = "{hf_token()}"\n')
    buf = b"#!/usr/bin/env python3\n" + z.getvalue()
    ctx, item = WorkerContext(ScanOptions()), Item("file", "app.pyz", "app.pyz", len(buf))
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    assert [f.location for f in s.finish(buf)] and not s.errors  # with room: the member's token

    def no_room(*_: Any, **__: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(containers, "zip_members", no_room)
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    assert [(e.kind, OUT_OF_MEMORY in e.reason) for e in s.errors] == [("limit", True)], s.errors
