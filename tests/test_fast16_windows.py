"""Large files scanned in windows (issue 16): the line and column where a window starts are counted only when
that window has a finding (``buffers.LineCarry``), so a big binary without findings costs no newline count.
Findings keep their exact line and column, after long lines, multi-window gaps and sparse holes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hf_token, scan_json
from veritensor_fast import buffers
from veritensor_fast.buffers import READ_MAX, WINDOW
from veritensor_fast.findings import Item
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.worker import ScanOptions, WorkerContext


def _where(data: bytes, off: int) -> tuple[int, int]:
    """Ground truth for ASCII/NUL content: 1-based line and column of byte ``off``."""
    return data.count(b"\n", 0, off) + 1, off - (data.rfind(b"\n", 0, off) + 1) + 1


def _expect(data: bytes, tokens: list[str]) -> list[tuple[int, int]]:
    return sorted(_where(data, data.index(t.encode())) for t in tokens)


def _found(path: Path) -> list[tuple[int, int]]:
    code, rep = scan_json(path, "--jobs", "1", "--no-default-excludes")
    assert code == 1, rep
    return sorted((f["line"], f["column"]) for f in rep["findings"] if f["rule_id"].startswith("huggingface"))


@pytest.mark.parametrize("middle", [True, False])  # False: the second window has no finding, nothing counted
def test_findings_in_later_windows_keep_line_and_column(tmp_path: Path, middle: bool) -> None:
    toks = [hf_token() for _ in range(5)]
    filler = b"".join(b"line %07d of filler text, nothing secret here\n" % i for i in range(50_000))
    long_line = b"x" * (WINDOW + 123)  # a line longer than a window: the column carries across windows
    parts = [filler, b"a = '" + toks[0].encode() + b"'\n", filler * 6, b"b = '" + toks[1].encode() + b"'\n",
             long_line, b" key='" + toks[2].encode() + b"'\n", filler * 3,
             b"c = '" + toks[3].encode() + b"' and '" + toks[4].encode() + b"'\n", filler]
    if not middle:
        parts[3] = b"b = 'no token here'\n"
        del toks[1]
    data = b"".join(parts)
    assert len(data) > 2 * WINDOW > READ_MAX  # three windows
    f = tmp_path / "big.log"
    f.write_bytes(data)
    assert _found(f) == _expect(data, toks)


def test_sparse_hole_counts_as_characters_of_the_line(tmp_path: Path) -> None:
    tok = hf_token()
    head = b"first line\nsecond line without end "
    tail = b" token='" + tok.encode() + b"'\nlast\n"
    f = tmp_path / "sparse.log"
    with open(f, "wb") as fh:
        fh.write(head)
        fh.seek(3 * WINDOW + 1000)  # a hole: zeros the file system does not store
        fh.write(tail)
    data = f.read_bytes()
    assert _found(f) == _expect(data, [tok])


def test_a_big_file_without_findings_counts_no_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # seeded, and headed by bytes no model sniffer takes (random bytes starting 0x80 looked like a pickle)
    data = (b"RANDOM--" + random.Random(16).randbytes((1 << 16) - 8)).replace(b"hf_", b"xx_")
    data *= (3 * WINDOW) >> 16  # no token can match
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    counted: list[int] = []
    real = buffers.count_newlines

    def counting(buf: Any, start: int, stop: int) -> int:
        counted.append(stop - start)
        return real(buf, start, stop)

    monkeypatch.setattr(buffers, "count_newlines", counting)
    opts = ScanOptions(python_ast=False)
    rs = opts.ruleset()
    ctx = WorkerContext(opts, compile_ruleset(rs), rs)
    st = f.stat()
    item = Item("file", str(f), "blob.bin", st.st_size, dev=st.st_dev, ino=st.st_ino)
    res = ctx.run_batch([item])
    assert res.items == 1 and not res.findings and not res.errors
    assert sum(counted) < WINDOW  # main counted every window's newlines (~48 MiB here)
