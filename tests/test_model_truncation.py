"""Large model files are analysed without a memory map: a file truncated during the scan is ``changed``, not a
SIGBUS that kills the worker (``veritensor_fast.randread``).

The view used instead (``PreadView``: ``pread`` into a small block cache) must read exactly what a memory map
would: the analysis of every real-producer fixture through it equals the analysis of its bytes.
"""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from veritensor_fast.buffers import LargeFile
from veritensor_fast.models import analyze
from veritensor_fast.randread import FileChanged, PreadView

FIXTURES = Path(__file__).parent / "fixtures"
REAL = sorted(p for d in ("real_models", "pandas_pickles", "zip64") for p in (FIXTURES / d).glob("*")
              if p.suffix not in (".py", "") or p.name.startswith(("evil", "torch")))


def _view(path: Path) -> tuple[PreadView, LargeFile]:
    fd = os.open(path, os.O_RDONLY)
    big = LargeFile(fd, os.fstat(fd))
    return PreadView(big), big


@pytest.mark.parametrize("path", REAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_analysis_through_pread_view_equals_analysis_of_bytes(path: Path) -> None:
    view, big = _view(path)
    try:
        assert analyze(view, path.name) == analyze(path.read_bytes(), path.name)
    finally:
        big.close()


def test_pread_view_slices_and_searches_like_bytes(tmp_path: Path) -> None:
    rng = random.Random(11)
    data = bytearray(rng.randbytes(3 * (1 << 20) + 12345))
    needle = b"PK\x05\x06"
    for at in (0, (1 << 20) - 2, 2 * (1 << 20) - 1, len(data) - 4):  # across block edges too
        data[at:at + 4] = needle
    data = bytes(data)
    p = tmp_path / "blob"
    p.write_bytes(data)
    view, big = _view(p)
    try:
        assert len(view) == len(data) and bytes(view) == data
        for a, b in [(0, 10), ((1 << 20) - 5, (1 << 20) + 5), (5, 5 * (1 << 20)), (-20, None), (100, 50)]:
            assert view[a:b] == data[a:b]
        assert view[-1] == data[-1] and view[(1 << 20)] == data[1 << 20]
        for s, e in [(0, None), (1, None), ((1 << 20), None), (0, (1 << 20) + 1), (2 * (1 << 20), len(data) - 1)]:
            assert view.find(needle, s, e) == data.find(needle, s, e), (s, e)
            assert view.rfind(needle, s, e) == data.rfind(needle, s, e), (s, e)
        assert view.find(b"\x00needle-absent\x00") == -1
    finally:
        big.close()


def test_pread_view_raises_file_changed_on_truncation(tmp_path: Path) -> None:
    p = tmp_path / "m.bin"
    p.write_bytes(b"x" * (3 << 20))
    view, big = _view(p)
    try:
        os.truncate(p, 1000)
        with pytest.raises(FileChanged):
            view[(2 << 20):(2 << 20) + 10]
        assert big.close() is not None  # the closer says the file changed
    finally:
        big.close()


SCRIPT = textwrap.dedent("""
    import json, os, sys
    from veritensor_fast.findings import Item
    from veritensor_fast.models import analyzer
    from veritensor_fast.worker import ScanOptions, WorkerContext

    path = sys.argv[1]
    orig = analyzer.Analyzer.analyze

    def truncate_then_analyze(self, buf, name="", **kw):  # another process truncates the file mid-scan
        os.truncate(path, 4096)
        return orig(self, buf, name, **kw)

    analyzer.Analyzer.analyze = truncate_then_analyze
    st = os.stat(path)
    ctx = WorkerContext(ScanOptions())
    res = ctx.run_batch([Item("file", path, "model.pt", st.st_size, dev=st.st_dev, ino=st.st_ino)])
    print(json.dumps({"errors": [e.kind for e in res.errors], "model": [f.rule_id for f in res.findings
                                                                        if f.kind == "model"]}))
""")


def test_model_file_truncated_while_analysed_is_changed_not_sigbus(tmp_path: Path) -> None:
    p = tmp_path / "model.pt"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as zf:  # a torch-like checkpoint over READ_MAX (16 MiB)
        zf.writestr("archive/data/0", random.Random(1).randbytes(20 << 20))
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(p)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])  # -7 (SIGBUS) with a memory map
    out = proc.stdout.strip().splitlines()[-1]
    assert '"errors": ["changed"]' in out and '"model": []' in out, out


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_large_model_zip_without_map_keeps_every_finding(tmp_path: Path) -> None:
    from conftest import hf_token, scan_json

    tok = hf_token()
    with zipfile.ZipFile(tmp_path / "big.pt", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data/0", random.Random(2).randbytes(20 << 20))
        zf.writestr("archive/data.pkl", pickle.dumps({"x": _Evil()}, protocol=2))
        zf.writestr("archive/.env", f"HF={tok}\n")
    (tmp_path / "big.pt").open("ab").write(f"\ntrailing {tok}\n".encode())  # raw bytes: the text windows
    code, rep = scan_json(tmp_path, "--show-secrets")
    model = [(f["severity"], f["redacted"]) for f in rep["findings"] if f["kind"] == "model"]
    assert ("critical", "posix.system") in model, model
    secrets = sorted((f.get("location") or {}).get("member", "raw") for f in rep["findings"] if f["kind"] == "secret")
    assert "archive/.env" in secrets and "raw" in secrets, rep["findings"]
    assert rep["errors"] == [] and code == 1
