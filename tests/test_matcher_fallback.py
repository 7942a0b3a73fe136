"""The pure-Python matcher fallback (no ``hyperscan`` wheel, e.g. musl or an old aarch64 glibc): chosen when
``import hyperscan`` fails, forced by ``VERITENSOR_FAST_MATCHER=python``, identical findings. Issue 15.
``.ci/run`` also runs the rules, corpora and detector tests a second time with the fallback forced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veritensor_fast.kernels import hs_python

from conftest import CLI, hf_token

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, **env}
    return subprocess.run(args, capture_output=True, text=True, env=e, cwd=cwd, timeout=300, check=False)


def _findings(path: Path, matcher: str, *extra: str) -> tuple[int, list[tuple[object, ...]]]:
    p = _run([*CLI, "scan", "--format", "json", "--no-progress", "--jobs", "1", *extra, str(path)],
             {"VERITENSOR_FAST_MATCHER": matcher})
    rep = json.loads(p.stdout)
    return p.returncode, [(f["path"], f["line"], f["column"], f["rule_id"], f["fingerprint"], f.get("decoded"))
                          for f in rep["findings"]]


@pytest.mark.parametrize("extra", [(), ("--strict-secrets",)])
def test_demo_findings_identical_with_and_without_hyperscan(extra: tuple[str, ...]) -> None:
    rc_hs, hs = _findings(ROOT / "corpora" / "demo", "hyperscan", *extra)
    rc_py, py = _findings(ROOT / "corpora" / "demo", "python", *extra)
    assert rc_hs == rc_py == 1 and len(hs) >= 10
    assert py == hs


def test_mixed_tree_identical(tmp_path: Path) -> None:
    toks = [hf_token() for _ in range(3)]
    (tmp_path / "a.py").write_text(f'A = "{toks[0]}"  # veritensor-fast: ignore\nB = "hf_" + "{toks[1][3:]}"\n')
    (tmp_path / "n.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": [f"t = '{toks[2]}'\n"], "outputs": [],
         "execution_count": None}]}))
    (tmp_path / "b.bin").write_bytes(b"\x00" * 100 + toks[2].encode() + b"\x00" + toks[2].encode())
    assert _findings(tmp_path, "python") == _findings(tmp_path, "hyperscan")
    assert {f[0] for f in _findings(tmp_path, "python")[1]} == {"a.py", "b.bin", "n.ipynb"}
    assert ("a.py", 1) not in {f[:2] for f in _findings(tmp_path, "python")[1]}  # the inline ignore holds


def test_chosen_automatically_when_hyperscan_cannot_be_imported(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "hyperscan.py").write_text("raise ImportError('no wheel for this platform')\n")
    code = ("import veritensor_fast.kernels as k, hyperscan; print(k.BACKEND, hyperscan.__name__)")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]), "VERITENSOR_FAST_MATCHER": ""}
    p = _run([sys.executable, "-c", code], env)
    assert p.stdout.split() == ["python", "veritensor_fast.kernels.hs_python"], p.stderr
    tok = hf_token()
    (tmp_path / "k.txt").write_text(f"{tok}\n")
    p = _run([*CLI, "scan", "--format", "json", "--no-progress", str(tmp_path / "k.txt")], env)
    assert p.returncode == 1 and json.loads(p.stdout)["findings"][0]["rule_id"] == "huggingface.user-token"
    forbid = _run([sys.executable, "-c", code], {**env, "VERITENSOR_FAST_MATCHER": "hyperscan"})
    assert forbid.returncode != 0 and "no wheel for this platform" in forbid.stderr


def test_bad_backend_name_is_an_error() -> None:
    p = _run([sys.executable, "-c", "import veritensor_fast.kernels"], {"VERITENSOR_FAST_MATCHER": "re2"})
    assert p.returncode != 0 and "must be auto, hyperscan or python" in p.stderr


def _db(pats: list[bytes], flags: list[int] | None = None) -> hs_python.Database:
    db = hs_python.Database()
    db.compile(expressions=pats, ids=list(range(len(pats))), elements=len(pats), flags=flags or [0] * len(pats))
    return hs_python.loadb(hs_python.dumpb(db))  # the serialised form round-trips


def _ends(db: hs_python.Database, data: bytes) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    db.scan(data, match_event_handler=lambda pid, _f, to, _fl, _c: out.append((pid, to)))
    return out


CASES = [
    ([rb"aa"], [0], b"aaaa"),  # every literal occurrence, overlapping ones included
    ([rb"a+b", rb"\x62"], [0, 0], b"xaab ab"),
    ([rb"b"], [hs_python.HS_FLAG_SINGLEMATCH], b"bbb"),
    ([rb"hf_"], [hs_python.HS_FLAG_CASELESS], b"HF_x hf_"),
    ([rb"(?:^|[^a])a{3}"], [0], b"aaaa baaa"),  # ^ is the buffer start only
    ([rb"veritensor\-fast:", rb"nosec"], [0, 0], b"x # veritensor-fast: ignore nosec nosec"),
]


@pytest.mark.parametrize(("pats", "flags", "data"), CASES)
def test_fallback_reports_what_hyperscan_reports(pats: list[bytes], flags: list[int], data: bytes) -> None:
    hyperscan = pytest.importorskip("hyperscan")
    if hyperscan is hs_python:
        pytest.skip("hyperscan is the fallback in this run")
    real = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    real.compile(expressions=pats, ids=list(range(len(pats))), elements=len(pats), flags=flags)
    want: list[tuple[int, int]] = []
    real.scan(data, match_event_handler=lambda pid, _f, to, _fl, _c: want.append((pid, to)))
    assert sorted(_ends(_db(pats, flags), data)) == sorted(want)


def test_fallback_errors_and_termination() -> None:
    db = _db([b"x"])
    with pytest.raises(hs_python.ScanTerminated):
        db.scan(memoryview(b"xxx"), match_event_handler=lambda *a: True)
    with pytest.raises(hs_python.error):
        hs_python.loadb(b"\x00not a database")
    with pytest.raises(hs_python.error):
        _db([b"(unclosed"])
