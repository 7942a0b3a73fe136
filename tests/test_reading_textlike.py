"""Large notebooks, JSON and UTF-16 text are read without a memory map (issue 11: a file truncated while mapped).

A notebook, JSON or UTF-16 file over ``READ_MAX`` (16 MiB) used to be memory-mapped for its whole-file parse; a
truncation during the scan then killed the scanner with SIGBUS (``--jobs 1``: exit 135, no report; ``--jobs 2``:
a dead worker). Now it is read with ``pread`` (``randread.PreadView`` and windows): the truncated file is reported
as ``changed``, every other file's findings are kept. Each scan runs in a fresh interpreter under an
address-space cap and a timeout, and the truncation is real (``os.truncate`` of the file being read).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import hf_token

CAP = "--as=2000000000"
BIG = 20 << 20  # over READ_MAX and over one 16 MiB window

# Truncates the victim to a quarter of its size in the middle of reading it: for a notebook, while the streaming
# parser is between cells; for JSON and UTF-16 text, when the text pass first matches a big buffer (on the old
# code the whole map, on the new one the first window or decoded chunk).
TRUNCATE = """
    import json, os, sys
    from veritensor_fast import scan_paths
    from veritensor_fast import matcher as matcher_mod
    from veritensor_fast.detectors import notebook as nbmod

    root, victim, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = os.path.getsize(victim)

    def cut() -> None:
        if os.path.getsize(victim) == size:
            os.truncate(victim, size // 4)

    real_cell = nbmod._Walker.cell
    def cell(self, idx, c):
        if idx == 3:
            cut()
        return real_cell(self, idx, c)
    nbmod._Walker.cell = cell

    real_find = matcher_mod.SecretMatcher.find
    def find(self, buf, *hits):
        if len(buf) >= 1 << 20:
            cut()
        return real_find(self, buf, *hits)
    matcher_mod.SecretMatcher.find = find

    r = scan_paths([root], jobs=jobs)
    print(json.dumps({"found": sorted((f.path, f.line) for f in r.findings),
                      "errors": [(e.path, e.kind, e.reason) for e in r.errors],
                      "truncated": os.path.getsize(victim) < size}))
"""


def run_capped(code: str, *args: str, timeout: float = 90) -> dict[str, Any]:
    cmd = ["prlimit", CAP, "--", sys.executable, "-c", textwrap.dedent(code), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert p.returncode == 0, (p.returncode, p.stderr[-3000:])  # -7: SIGBUS
    out: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def notebook_bytes(target: int, tok: str) -> bytes:
    rng = random.Random(5)
    cells = []
    size = i = 0
    while size < target:
        blob = rng.randbytes(300_000).hex()
        c = {"cell_type": "code", "execution_count": i, "id": f"c{i}", "metadata": {},
             "source": [f"x{i} = {i}\n", f"T = '{tok}'\n" if i == 1 else "pass\n"],
             "outputs": [{"name": "stdout", "output_type": "stream", "text": [blob[:600_000]]}]}
        cells.append(c)
        size += len(json.dumps(c))
        i += 1
    doc = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=1).encode()


def json_bytes(target: int, early: str, late: str) -> bytes:
    lines = ['{"rows": [']
    filler = '  {"k": "' + "v" * 100 + '"},'
    n = target // (len(filler) + 1) + 10
    for i in range(n):
        lines.append(f'  {{"k": "{early}"}},' if i == 10 else f'  {{"k": "{late}"}},' if i == n - 10 else filler)
    lines.append('  {"k": 0}\n]}')
    return "\n".join(lines).encode()


def utf16_bytes(target: int, early: str, late: str) -> bytes:
    filler = "line filler filler filler filler filler filler filler\r\n"
    n = target // (2 * len(filler)) + 10
    lines = [filler] * n
    lines[10] = f"token={early}\r\n"
    lines[n - 10] = f"token={late}\r\n"
    return b"\xff\xfe" + "".join(lines).encode("utf-16-le")


def make(tree: Path, kind: str) -> tuple[Path, str, int]:
    """The victim file, its token and the line of the token that a full scan reports."""
    early, late = hf_token(random.Random(1)), hf_token(random.Random(2))
    if kind == "notebook":
        p, data, line = tree / "big.ipynb", notebook_bytes(BIG, early), 0
    elif kind == "json":
        p, data, line = tree / "big.json", json_bytes(BIG, early, late), 12
    else:
        p, data, line = tree / "big.reg", utf16_bytes(BIG, early, late), 11
    p.write_bytes(data)
    assert p.stat().st_size > BIG
    return p, early, line


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("kind", ["notebook", "json", "utf16"])
def test_text_like_file_truncated_while_scanned_is_changed_not_sigbus(tree: Path, kind: str, jobs: str) -> None:
    """Was SIGBUS: exit -7 with --jobs 1; with --jobs 2 a dead worker."""
    victim, _, _ = make(tree, kind)
    other = hf_token(random.Random(9))
    (tree / "z.env").write_text(f"HF_TOKEN={other}\n")
    out = run_capped(TRUNCATE, str(tree), str(victim), jobs)
    assert out["truncated"]
    assert ["z.env", 1] in out["found"]  # the rest of the scan completes
    ((path, kind_, reason),) = out["errors"]
    assert (path, kind_) == (victim.name, "changed") and "changed while it was scanned" in reason


SCAN = """
    import json, sys
    from veritensor_fast import scan_paths
    r = scan_paths([sys.argv[1]], jobs=1)
    print(json.dumps({"found": sorted((f.path, f.line, f.secret) for f in r.findings),
                      "errors": [(e.path, e.kind, e.reason) for e in r.errors]}))
"""


@pytest.mark.parametrize("kind", ["notebook", "json", "utf16"])
def test_large_text_like_file_read_by_pread_keeps_every_finding(tree: Path, kind: str) -> None:
    """Without a truncation, a large notebook, JSON or UTF-16 file gives the same findings as before: a token
    early and (for JSON and UTF-16 text, scanned in windows / chunks) one in the last window, at exact lines."""
    victim, early, line = make(tree, kind)
    out = run_capped(SCAN, str(tree))
    assert out["errors"] == []
    secrets = {s for _, _, s in out["found"]}
    assert early in secrets
    if kind == "notebook":
        assert all(p == victim.name for p, _, _ in out["found"])
        return
    late = hf_token(random.Random(2))
    lines = {s: ln for _, ln, s in out["found"]}
    assert lines[early] == line and late in secrets and lines[late] > 100_000
