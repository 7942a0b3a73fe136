"""A large file split across pool tasks (``worker.split_file``) is read by several tasks at different times. A
part opened after the file changed (truncated, rewritten, replaced) must say so: the scan is incomplete, as when
one task scanning the whole file sees it change. Each part used to compare the file only with itself (its own
open and close), so a file truncated between two parts lost the rest of its content silently, and a part past
the new end counted negative bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_scale17_spans import SPAN, WIN, small_windows  # noqa: F401 (a fixture: small windows and parts)

from tests.conftest import hf_token
from veritensor_fast import worker
from veritensor_fast.batching import merge_spans
from veritensor_fast.findings import Item
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.worker import BatchResult, ScanOptions, WorkerContext


def _split(f: Path) -> tuple[WorkerContext, BatchResult, list[Item]]:
    opts = ScanOptions()
    rs = opts.ruleset()
    ctx = WorkerContext(opts, compile_ruleset(rs), rs)
    ctx.span_bytes = worker.SPAN_BYTES  # as in a pool worker
    st = f.stat()
    first = ctx.run_batch([Item("file", str(f), f.name, st.st_size, dev=st.st_dev, ino=st.st_ino)])
    assert len(first.more) >= 4
    return ctx, first, first.more


def _data() -> bytes:
    lines = [b"line %06d nothing here\n" % i for i in range(12 * WIN // 23)]
    lines[len(lines) * 3 // 4] = f"key = '{hf_token()}'\n".encode()  # in a later part
    return b"".join(lines)


@pytest.mark.parametrize("how", ["truncated", "shrunk below a window read", "rewritten"])
@pytest.mark.usefixtures("small_windows")
def test_a_file_that_changes_between_its_parts_is_reported_changed(tmp_path: Path, how: str) -> None:
    f = tmp_path / "big.log"
    data = _data()
    f.write_bytes(data)
    ctx, first, parts = _split(f)
    assert not first.errors and not [e for s in first.spans for e in s[3]]
    if how == "truncated":  # the later parts' content is gone before they are read
        os.truncate(f, len(data) // 3)
    elif how == "shrunk below a window read":  # now a small file, read whole
        os.truncate(f, 100)
    else:  # same size, other bytes, a later modification time
        f.write_bytes(data.replace(b"nothing", b"NOTHING"))
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    results = [first] + [ctx.run_batch([p]) for p in parts]
    _, errors = merge_spans([s for r in results for s in r.spans])
    errors += [e for r in results for e in r.errors]
    assert [e.kind for e in errors] and {e.kind for e in errors} == {"changed"}
    assert all(e.path == "big.log" for e in errors)
    assert all(r.bytes >= 0 for r in results)


@pytest.mark.usefixtures("small_windows")
def test_an_unchanged_file_split_in_parts_has_no_error(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    data = _data()
    f.write_bytes(data)
    ctx, first, parts = _split(f)
    results = [first] + [ctx.run_batch([p]) for p in parts]
    found, errors = merge_spans([s for r in results for s in r.spans])
    assert errors == [] and not any(r.errors for r in results)
    assert len(found) == 1 and sum(r.bytes for r in results) == len(data)
