"""Issue 16, per-file overhead (gate18): batches of small files go through the batch gate (``batch_gate``) too.

A batch's small files are read up front through the same ``FileReader.open`` as one by one (``O_NOFOLLOW``,
device/inode check, ``changed`` on a short read), joined and scanned once; the quiet ones skip the detectors.
Ground truth: the same scan with the gate off (``batch_gate.KINDS`` empty) finds and reports the same, on every
shape a detector claims, at a file's edges, for files swapped or truncated after the listing."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from test_hist17_gate import counting_gate

from veritensor_fast import batch_gate, engine
from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND
from veritensor_fast.sources import fs_read
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token, zip_bytes

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the gate needs the Hyperscan database")


def _rows(r: Any) -> tuple[list[Any], list[Any]]:
    found = sorted((f.rule_id, f.path, f.line, f.column, f.fingerprint, f.decoded or "",
                    json.dumps(f.location, sort_keys=True)) for f in r.findings)
    return found, sorted((e.path, e.kind, e.reason) for e in r.errors)


def _scan(root: Path, gate: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], int]:
    """Findings and errors of a ``--jobs 1`` scan of ``root``, and how many items the gate called quiet."""
    with counting_gate(monkeypatch, gate) as calls:
        r = engine.scan(FileSource([str(root)], default_excludes=False), ScanOptions(), jobs=1)
    found, errors = _rows(r)
    return found, errors, calls[0]


def _shapes(toks: list[str]) -> dict[str, bytes]:
    cell = {"cell_type": "code", "metadata": {}, "source": [f"h = '{toks[0]}'\n"], "outputs": [],
            "execution_count": 1}
    nb = json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    return {
        "edge_start.txt": toks[1].encode() + b" at the start",
        "edge_end.txt": b"at the end " + toks[2].encode(),
        "b64.txt": base64.b64encode(b"token=" + toks[3].encode()),
        "gz.txt": base64.b64encode(gzip.compress(b"token = " + toks[4].encode(), mtime=0)),
        "ast.py": f'P = "{toks[5][:3]}"\nK = P + "{toks[5][3:]}"\n'.encode(),
        "nb.ipynb": nb,
        "nb_noext": nb,
        "k8s.yaml": (b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: |\n    "
                     + base64.b64encode(toks[6].encode()) + b"\n"),
        "wrapped.yml": b"v: |\n    " + base64.b64encode(b"key " + toks[7].encode())[:30] + b"\n    "
                       + base64.b64encode(b"key " + toks[7].encode())[30:] + b"\n",
        "u16.txt": ("token = " + toks[8] + "\n").encode("utf-16-le"),
        "arch.bin": zip_bytes({"inner.txt": b"t = " + toks[9].encode()}),
        "x.txt.gz": gzip.compress(b"t = " + toks[10].encode(), mtime=0),
        "bin.dat": b"\x00\x01\x02" + base64.b64encode(b"k=" + toks[11].encode()) + b"\x00",
        "evil.txt": b"cos\nsystem\n(S'echo hi'\ntR.",
        "model.pkl": b"cos\nsystem\n(S'echo hi'\ntR.",
        "weights.bin": b"plain text under a model's name\n",
        "code.pyc": b"\xa7\r\r\n\x00\x00\x00\x00" + b"\xe3" + bytes(range(1, 200)),
        f"{toks[12]}.txt": b"a quiet file with a loud name\n",
        "ignored.txt": f"k = '{toks[13]}'  # veritensor-fast: ignore\n".encode(),
        "big.txt": b"filler line\n" * (batch_gate.MAX_PIECE // 12 + 10) + toks[14].encode(),
        "empty.txt": b"",
    }


def test_a_tree_finds_the_same_with_and_without_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(18)
    toks = [hf_token(rng) for _ in range(15)]
    root = tmp_path / "t"
    for d in range(3):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(40):
            (sub / f"plain{i}.txt").write_bytes(f"line {i}\n".encode() * (i + 1))
            (sub / f"src{i}.py").write_bytes(f"def f{i}():\n    return '{i}'\n".encode())
    for name, data in _shapes(toks).items():
        (root / "d1" / name).write_bytes(data)
    with_gate, errors_gate, quiet = _scan(root, True, monkeypatch)
    without, errors_plain, none = _scan(root, False, monkeypatch)
    assert with_gate == without and errors_gate == errors_plain
    assert quiet >= 240 and none == 0  # the plain files, the plain .pyc, the text under a model's name
    paths = {r[1] for r in with_gate}
    for p in ("edge_start.txt", "edge_end.txt", "b64.txt", "gz.txt", "ast.py", "nb.ipynb", "nb_noext", "k8s.yaml",
              "u16.txt", "arch.bin", "x.txt.gz", "bin.dat", "evil.txt", "model.pkl",
              f"{toks[12]}.txt", "big.txt"):
        assert any(q == f"d1/{p}" or q.startswith(f"d1/{p}!") for q in paths), (p, sorted(paths))
    assert "d1/ignored.txt" not in paths


def _items(root: Path, names: list[str]) -> list[Item]:
    out = []
    for n in names:
        st = os.stat(root / n, follow_symlinks=False)
        out.append(Item("file", str(root / n), n, st.st_size, dev=st.st_dev, ino=st.st_ino))
    return out


def _run(items: list[Item], gate: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], int]:
    with monkeypatch.context() as m:
        if not gate:
            m.setattr(batch_gate, "KINDS", frozenset())
        ctx = WorkerContext(ScanOptions())
        try:
            res = ctx.run_batch(items)
        finally:
            ctx.close()
    found, errors = _rows(res)
    return found, errors, res.items


def test_files_swapped_after_the_listing_are_refused_as_before(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A file replaced by a symlink or by another file between the listing and the read is not followed nor
    read: the same ``changed`` error with the gate as without it, and the quiet files beside it still count."""
    tok = hf_token()
    root = tmp_path / "t"
    root.mkdir()
    (tmp_path / "outside.txt").write_text(f"t = '{tok}'\n")
    names = [f"f{i}.txt" for i in range(6)]
    for n in names:
        (root / n).write_text("nothing here\n")
    for gate in (True, False):
        items = _items(root, names)
        (root / "f1.txt").unlink()
        (root / "f1.txt").symlink_to(tmp_path / "outside.txt")
        (tmp_path / "new.txt").write_text(f"t = '{tok}'\n")  # another inode (the old one still in use)
        os.replace(tmp_path / "new.txt", root / "f3.txt")
        found, errors, n = _run(items, gate, monkeypatch)
        assert found == [] and n == 4
        assert [(e[0], e[1]) for e in errors] == [("f1.txt", "changed"), ("f3.txt", "changed")]
        (root / "f1.txt").unlink()
        (root / "f1.txt").write_text("nothing here\n")
        (root / "f3.txt").write_text("nothing here\n")


def test_a_quiet_file_truncated_while_read_reports_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short read (the file shrank between ``fstat`` and ``read``) is reported as ``changed`` for a quiet file
    exactly as for one the detectors scanned: the gate must not drop the reader's closer reason."""
    root = tmp_path / "t"
    root.mkdir()
    names = [f"f{i}.txt" for i in range(4)]
    for n in names:
        (root / n).write_text("nothing here at all\n")
    real = fs_read._read_all

    def short(fd: int, size: int) -> bytes:
        data = real(fd, size)
        return data[: size // 2] if size == len(b"nothing here at all\n") else data

    monkeypatch.setattr(fs_read, "_read_all", short)
    got = {gate: _run(_items(root, names), gate, monkeypatch) for gate in (True, False)}
    assert got[True] == got[False]
    assert [(e[0], e[1]) for e in got[True][1]] == [(n, "changed") for n in names]
    opened = batch_gate.open_batch(WorkerContext(ScanOptions()), _items(root, names))
    assert opened is not None and opened.quiet == set(range(len(names)))  # they were quiet, and still reported


def test_large_files_are_not_read_up_front(tmp_path: Path) -> None:
    """Only files listed at most ``SMALL`` are read ahead (a large one is read when the worker reaches it,
    window by window), and the read ahead stops at ``UPFRONT`` bytes."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.txt").write_text("small\n")
    (root / "big.txt").write_bytes(b"x" * (batch_gate.SMALL + 1))
    (root / "c.txt").write_text("small\n")
    ctx = WorkerContext(ScanOptions())
    try:
        opened = batch_gate.open_batch(ctx, _items(root, ["a.txt", "big.txt", "c.txt"]))
        assert opened is not None
        assert opened.got[1] is None and opened.got[0] is not None and opened.got[2] is not None
        assert opened.quiet == {0, 2}
        buf, close = opened.open(1)
        assert len(buf) == batch_gate.SMALL + 1
        close()
    finally:
        ctx.close()
