"""Reading files safely and in bounded memory (issue 10 §4 opening, issue 11 truncation and long lines).

- opening never blocks on a FIFO, never follows a symlink swapped in after the listing, and checks the opened
  file is the one listed (device, inode);
- a file truncated while it is scanned is reported as changed, never a SIGBUS; the rest of the scan completes;
- big files are read in bounded windows: memory does not grow with the file or the length of a line, and
  line/column are exact (compared with a whole-buffer scan).
Anything that could crash or hang on regressed code runs in a subprocess with a timeout and a memory cap.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast.buffers import LineColumn, count_chars
from veritensor_fast.findings import Item

from conftest import hf_token

CAP = "--as=1500000000"  # 1.5 GB of address space for the scanner process


def run_py(code: str, *args: str, timeout: float = 60, cap: bool = True) -> dict[str, Any]:
    """Run ``code`` (which prints one JSON document) in a fresh interpreter under the memory cap."""
    cmd = [sys.executable, "-c", textwrap.dedent(code), *args]
    if cap:
        cmd = ["prlimit", CAP, "--", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert p.returncode == 0, (p.returncode, p.stderr[-3000:])
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def cli_json(*args: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    cmd = ["prlimit", CAP, "--", sys.executable, "-m", "veritensor_fast.cli", "scan", "-f", "json",
           "--no-progress", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert p.stdout, (p.returncode, p.stderr[-3000:])
    return p.returncode, json.loads(p.stdout)


# ---- line and column ------------------------------------------------------------------------------------


def naive(buf: bytes, offset: int) -> tuple[int, int]:
    ls = buf.rfind(b"\n", 0, offset) + 1
    return buf.count(b"\n", 0, offset) + 1, len(buf[ls:offset].decode("utf-8", "replace")) + 1


def test_line_column_matches_the_naive_definition() -> None:
    rng = random.Random(11)
    alphabet = [b"a", b"\n", "é".encode(), "日".encode(), b"\xff", b"\xc3", b" "]
    for _ in range(50):
        buf = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        offsets = sorted(rng.randrange(0, len(buf) + 1) for _ in range(10))
        lc = LineColumn(buf)
        for o in offsets:
            if o < len(buf) and buf[o] >= 0x80:  # offsets are match starts: an ASCII byte (a token's first)
                continue
            assert lc.at(o) == naive(buf, o), (buf, o)
        assert lc.at(0) == (1, 1)  # going back starts over


def test_count_chars_across_blocks_equals_decode() -> None:
    data = ("é" * 700_000 + "x").encode() + b"\xff\xfe" + "日本".encode() * 300_000
    assert count_chars(data, 0, len(data)) == len(data.decode("utf-8", "replace"))
    assert count_chars(data, 1, len(data) - 1) == len(data[1:-1].decode("utf-8", "replace"))


class CountingBuffer:
    """A read-only buffer that counts the bytes each access looks at (slices and ``rfind``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.looked = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, k: slice) -> bytes:
        out = self.data[k]
        self.looked += len(out)
        return out

    def rfind(self, sub: bytes, start: int = 0, stop: int | None = None) -> int:
        stop = len(self.data) if stop is None else stop
        i = self.data.rfind(sub, start, stop)
        self.looked += stop - (i if i >= 0 else start)
        return i


def test_line_col_of_many_offsets_on_one_line_looks_at_each_byte_a_bounded_number_of_times() -> None:
    """Was quadratic: every finding searched back to the start of its line and copied the line."""
    from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

    line = ("é" + "x" * 5000).encode() * 400 + b"\n"
    buf = CountingBuffer(b"first line\n" + line)
    scan = ItemScan(WorkerContext(ScanOptions()), Item("file", "k", "p"))
    offsets = range(11, len(buf) - 1, 5002)
    got = [scan.line_col(buf, o) for o in offsets]
    assert got == [(2, 1 + i * 5001) for i in range(len(offsets))]
    assert buf.looked <= 4 * len(buf)


def test_many_tokens_on_one_long_line_linear(tmp_path: Path) -> None:
    """Was quadratic (1,000 tokens on a 27 MB line: 18 s); under the cap a bounded timeout fails a regression."""
    rng = random.Random(5)
    toks = [hf_token(rng) for _ in range(1000)]
    pad = ("é" + "x" * 20_000 + " ").encode()
    f = tmp_path / "one-line.txt"
    f.write_bytes(b"".join(pad + b"k=" + t.encode() + b" " for t in toks) + b"\n")
    code, doc = cli_json("-j", "1", str(f), timeout=40)
    assert code == 1
    cols = [x["column"] for x in doc["findings"]]
    per = len(pad.decode()) + 2 + 37 + 1
    assert cols == [i * per + len(pad.decode()) + 2 + 1 for i in range(1000)]
    assert {x["line"] for x in doc["findings"]} == {1}


def test_big_yaml_scanned_in_windows_without_partial_parses(tmp_path: Path) -> None:
    """A 17 MiB YAML file is read in windows; no window is small enough to be parsed as a YAML document."""
    tok = hf_token()
    f = tmp_path / "values.yaml"
    n = (17 << 20) // 16
    with open(f, "w") as fh:
        fh.write("k: vvvvvvvvvvvv\n" * n)
        fh.write(f"token: {tok}\n")
    code, doc = cli_json("-j", "1", str(f))
    assert code == 1 and doc["errors"] == []
    assert [(x["line"], x["column"], x["location"]) for x in doc["findings"]] == [(n + 1, 8, None)]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_token_at_the_end_of_a_huge_line_is_not_copied(tmp_path: Path, jobs: str) -> None:
    """A 1 GiB line (sparse) with the token at its end: was a 3.2 GB peak; now within a 1.5 GB cap."""
    tok = hf_token()
    f = tmp_path / "no-newline.log"
    with open(f, "wb") as fh:
        fh.write("é".encode() * 1000)
        fh.seek(1 << 30)
        fh.write(b" key " + tok.encode() + b"\n")
    code, doc = cli_json("-j", jobs, str(f))
    assert code == 1 and not doc["errors"]
    (x,) = doc["findings"]
    assert (x["line"], x["column"]) == (1, 1000 + (1 << 30) - 2000 + 5 + 1)


def test_big_file_over_4gib_found_at_end_in_bounded_memory(tmp_path: Path) -> None:
    """The hyperscan package truncates buffers over 4 GiB: a token past that offset is still found, and the
    scan of the (sparse) file stays within the cap (the old test peaked at 4.3 GB)."""
    tok = hf_token()
    big = tmp_path / "huge.log"
    with open(big, "wb") as fh:
        fh.seek((4 << 30) + 4096)
        fh.write(b"\nkey " + tok.encode() + b"\n")
    code, doc = cli_json("-j", "1", "--show-secrets", str(big))
    assert [(f["rule_id"], f["secret"], f["line"], f["column"]) for f in doc["findings"]] == \
        [("huggingface.user-token", tok, 2, 5)]


WINDOWED_VS_WHOLE = """
    import json, sys
    from veritensor_fast import buffers, scan_paths
    from veritensor_fast.sources import fs_read
    path = sys.argv[1]
    whole = scan_paths([path], jobs=1)
    fs_read.READ_MAX, buffers.WINDOW, buffers.OVERLAP = 4096, 8192, 1024
    windowed = scan_paths([path], jobs=1)
    key = lambda r: sorted((f.rule_id, f.line, f.column, f.secret, f.decoded or "") for f in r.findings)
    print(json.dumps({"whole": key(whole), "windowed": key(windowed),
                      "errors": [e.reason for e in whole.errors + windowed.errors]}))
"""


def test_windowed_scan_equals_whole_buffer_scan(tmp_path: Path) -> None:
    import base64

    rng = random.Random(3)
    parts: list[bytes] = []
    toks = []
    for i in range(60):
        t = hf_token(rng)
        toks.append(t)
        filler = "".join(rng.choice(["x", "é", " ", "\n", "日"]) for _ in range(rng.randrange(0, 3000)))
        if i % 7 == 0:
            piece = f"blob = {base64.b64encode(('token=' + t).encode()).decode()}\n"
        elif i % 5 == 0:
            piece = f"x = '{t}'  # veritensor-fast: ignore\n"
        else:
            piece = f"k={t} "
        parts.append(filler.encode() + piece.encode())
    f = tmp_path / "mixed.txt"
    f.write_bytes(b"".join(parts))
    out = run_py(WINDOWED_VS_WHOLE, str(f))
    assert not out["errors"]
    assert out["windowed"] == out["whole"] and len(out["whole"]) >= 40



def test_windowed_executable_equals_whole_executable(tmp_path: Path) -> None:
    """Windows of an ELF file (this interpreter's binary, then planted data) keep the file's kind: no window runs the generic base64 decoder, which
    executables skip when scanned whole (a window's own first bytes are not the ELF magic; on a real
    site-packages tree that decoder over the later windows of 245 ``.so`` files was 5 of 11 CPU-seconds)."""
    import base64

    rng = random.Random(5)
    plain, hidden = hf_token(rng), hf_token(rng)
    parts = [Path(os.path.realpath(sys.executable)).read_bytes()[:65536]]  # a real linker's ELF executable
    assert parts[0].startswith(b"\x7fELF")
    for i in range(40):
        parts.append(bytes(rng.randrange(256) for _ in range(700)).replace(b"\n", b"\x00"))
        if i == 20:
            parts.append(b"\x00" + base64.b64encode(("token=" + hidden).encode()) + b"\x00")
        if i == 30:
            parts.append(b"\x00key=" + plain.encode() + b"\x00")
    f = tmp_path / "libtorch_fake.so"
    f.write_bytes(b"".join(parts))
    out = run_py(WINDOWED_VS_WHOLE, str(f))
    assert not out["errors"]
    assert out["windowed"] == out["whole"]
    assert [(r[3], r[4]) for r in out["whole"]] == [(plain, "")]

# ---- files that change during the scan ------------------------------------------------------------------

TRUNCATE_WHILE_SCANNING = """
    import json, os, sys
    from veritensor_fast import buffers, scan_paths, worker
    from veritensor_fast.sources import fs_read
    victim, size = sys.argv[1], int(sys.argv[2])
    fs_read.READ_MAX, buffers.WINDOW, buffers.OVERLAP = 1 << 16, 1 << 16, 1 << 10
    real = worker.WorkerContext.scan_buffer
    def scan_buffer(self, buf, item, scan, skip=(), head=None):
        real(self, buf, item, scan, skip, head)
        if item.key == victim and os.path.getsize(victim) == size:
            os.truncate(victim, size // 4)  # a real truncation while the file is being scanned
    worker.WorkerContext.scan_buffer = scan_buffer
    r = scan_paths([os.path.dirname(victim)], jobs=1)
    print(json.dumps({"found": sorted((f.path, f.line) for f in r.findings),
                      "errors": [(e.path, e.kind, e.reason) for e in r.errors]}))
"""


def test_file_truncated_while_scanned_is_reported_changed(tree: Path) -> None:
    """Was SIGBUS (exit 135, no report) with --jobs 1: the file was memory-mapped."""
    tok, other = hf_token(), hf_token()
    lines = [f"line {i} filler filler filler filler filler filler\n" for i in range(40_000)]
    lines[10] = f"early {tok}\n"
    lines[30_000] = f"late {tok}\n"
    victim = tree / "growing.log"
    victim.write_text("".join(lines))
    (tree / "z.env").write_text(f"HF_TOKEN={other}\n")
    out = run_py(TRUNCATE_WHILE_SCANNING, str(victim), str(victim.stat().st_size))
    assert ["growing.log", 11] in out["found"] and ["z.env", 1] in out["found"]
    assert ["growing.log", 30_001] not in out["found"]
    ((path, kind, reason),) = out["errors"]
    assert (path, kind) == ("growing.log", "changed") and "changed while it was scanned" in reason


SHORT_READ = """
    import json, os, sys
    from veritensor_fast import scan_paths
    from veritensor_fast.sources import fs_read
    victim = sys.argv[1]
    real = fs_read._read_all
    def read_all(fd, size):
        os.truncate(victim, size // 2)  # truncated between fstat and read
        return real(fd, size)
    fs_read._read_all = read_all
    r = scan_paths([victim], jobs=1)
    print(json.dumps({"found": [f.line for f in r.findings], "errors": [(e.kind, e.reason) for e in r.errors]}))
"""


def test_small_file_truncated_before_read_is_reported_changed(tree: Path) -> None:
    tok = hf_token()
    f = tree / "a.env"
    f.write_text(f"A={tok}\n" + "x" * 1000 + f"\nB={tok}\n")
    out = run_py(SHORT_READ, str(f), cap=False)
    assert out["found"] == [1]
    ((kind, reason),) = out["errors"]
    assert kind == "changed" and "truncated while it was read" in reason


# ---- opening what was listed, and only that ---------------------------------------------------------------

SWAP = """
    import json, os, shutil, sys
    from veritensor_fast.engine import scan
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions
    root, how, outside = sys.argv[1], sys.argv[2], sys.argv[3]
    src = FileSource([root], follow_symlinks=(how == "follow"))
    listed = list(src.items())  # the walk has run; now the tree changes under the scanner
    target = os.path.join(root, "victim.txt")
    if how in ("fifo", "symlink"):
        os.unlink(target)
    if how == "fifo":
        os.mkfifo(target)
    elif how == "symlink":
        os.symlink(outside, target)
    elif how == "other":
        shutil.copy(outside, target + ".new")  # a different regular file (a new inode: the old one still
        os.replace(target + ".new", target)    # exists while it is made) under the same name
    class Replay:
        def items(self): return iter(listed)
        def annotate(self, f): return list(f)
    r = scan(Replay(), ScanOptions(), jobs=1)
    print(json.dumps({"found": sorted(f.path for f in r.findings),
                      "errors": [(e.path, e.kind, e.reason) for e in r.errors]}))
"""


@pytest.fixture
def swap_tree(tmp_path: Path) -> tuple[Path, Path, str]:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "victim.txt").write_text("harmless\n")
    (root / "keep.env").write_text(f"HF_TOKEN={hf_token()}\n")
    secret = tmp_path / "outside-secret.txt"  # outside the scanned tree
    tok = hf_token()
    secret.write_text(f"HF_TOKEN={tok}\n")
    return root, secret, tok


def test_file_swapped_for_a_fifo_does_not_hang(swap_tree: tuple[Path, Path, str]) -> None:
    root, outside, _ = swap_tree
    out = run_py(SWAP, str(root), "fifo", str(outside), timeout=30, cap=False)
    assert out["found"] == ["keep.env"]
    assert [e[:2] for e in out["errors"]] == [["victim.txt", "not-regular"]]


def test_file_swapped_for_a_symlink_is_not_followed(swap_tree: tuple[Path, Path, str]) -> None:
    root, outside, _ = swap_tree
    out = run_py(SWAP, str(root), "symlink", str(outside), timeout=30, cap=False)
    assert out["found"] == ["keep.env"]  # the token outside the tree is never read
    ((path, kind, reason),) = out["errors"]
    assert (path, kind) == ("victim.txt", "changed") and "--follow-symlinks" in reason


def test_file_replaced_by_another_file_is_reported_changed(swap_tree: tuple[Path, Path, str]) -> None:
    root, outside, _ = swap_tree
    out = run_py(SWAP, str(root), "other", str(outside), timeout=30, cap=False)
    assert out["found"] == ["keep.env"]
    assert [e[:2] for e in out["errors"]] == [["victim.txt", "changed"]]


def test_unchanged_tree_and_followed_symlinks_still_scan(swap_tree: tuple[Path, Path, str]) -> None:
    root, outside, _ = swap_tree
    os.symlink(outside, root / "link.env")
    out = run_py(SWAP, str(root), "follow", str(outside), timeout=30, cap=False)
    assert out == {"found": ["keep.env", "link.env"], "errors": []}


def test_listing_records_identity(tree: Path) -> None:
    from veritensor_fast.sources.fs import FileSource

    (tree / "a.txt").write_text("x")
    (item,) = [i for i in FileSource([str(tree)]).items() if isinstance(i, Item)]
    st = os.stat(tree / "a.txt")
    assert (item.dev, item.ino, item.follow) == (st.st_dev, st.st_ino, False)


def test_many_tokens_in_one_long_notebook_string(tmp_path: Path) -> None:
    """The notebook walker computed each finding's line/column from the start of its string (quadratic)."""
    rng = random.Random(9)
    toks = [hf_token(rng) for _ in range(600)]
    pad = "é" + "x" * 12_000 + " "
    src = "".join(f"{pad}k={t} " for t in toks)
    nb = {"cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "source": ["first line\n", src],
                     "outputs": [], "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    f = tmp_path / "long.ipynb"
    f.write_text(json.dumps(nb))
    code, doc = cli_json("-j", "1", str(f), timeout=60)
    assert code == 1 and not doc["errors"]
    got = sorted((x["line"], x["column"]) for x in doc["findings"])
    per = len(pad) + 2 + 37 + 1
    assert got == [(2, i * per + len(pad) + 3) for i in range(600)]
