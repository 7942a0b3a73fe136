"""The model detector's fast path on ordinary files: text is dropped cheaply, protocol 0/1 pickles never are.

``pickle01_may_run`` may reject a stream only when the walker's first opcode fails (so the trial decode could
find nothing); a hypothesis property checks that against the walker itself. The analysers are imported only
when a file needs them (checked in a fresh interpreter).
"""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors.model import ModelDetector
from veritensor_fast.findings import Item
from veritensor_fast.models.pickle_scan import PickleWalker
from veritensor_fast.models.sniff import PICKLE_OPCODES, TRIAL_BYTES, has_model_ext, pickle01_may_run, sniff
from veritensor_fast.worker import ScanOptions

PROTO0 = b"cos\nsystem\n(S'echo x'\ntR."  # os.system('echo x'), protocol 0, no PROTO header
TEXTS = [b"import os\nos.system('x')\n", b"class Foo(Bar):\n    pass\n", b"def f():\n    return 1\n",
         b"copyright 2024 someone\nall rights\n", b"S3 bucket list\n", b"exec(open('x').read())\n",
         b"ls -la\n", b"append more\n", b"2024-01-01 12:00 INFO start\n", b"print(os)\n", b"."]


class _Collect:
    def __init__(self) -> None:
        self.found: list[tuple[str, str, str]] = []

    def add_model(self, rule_id: str, severity: str, message: str, evidence: str, location: Any = None) -> None:
        self.found.append((rule_id, severity, evidence))


def _detect(data: Any, name: str, det: ModelDetector | None = None) -> tuple[list[tuple[str, str, str]],
                                                                            ModelDetector]:
    det = det or ModelDetector(SimpleNamespace(options=ScanOptions()))  # type: ignore[arg-type]
    sink = _Collect()
    det.scan(data, Item("file", name, name, len(data)), bytes(data[:4096]), sink)  # type: ignore[arg-type]
    return sink.found, det


@pytest.mark.parametrize("text", TEXTS)
def test_text_starting_with_an_opcode_is_not_analysed(text: bytes) -> None:
    assert sniff(text, "notes.txt") == "pickle?"  # first byte is an opcode: the case this fast path is for
    assert not pickle01_may_run(text)
    found, det = _detect(text * 50, "notes.txt")
    assert found == []
    assert det._analyzer is None  # no analyser was even built


@pytest.mark.parametrize("text", [b"(a, b)\n", b"Name,Value\n1,2\n", b"Licensed under\nthe terms\n",
                                  b"MIT License\n\nCopyright\n", b"(defun f (x) x)\n", b"]]]"])
def test_text_that_passes_the_first_opcode_is_still_no_finding(text: bytes) -> None:
    found, _ = _detect(text, "README.md")
    assert found == []


@pytest.mark.parametrize("name", ["README.txt", "notes", "script.py", "data.csv", "x.pkl", "model.bin"])
@pytest.mark.parametrize("data", [PROTO0, PROTO0[:-1], b"(S'echo x'\nios\nsystem\n.", b"(S'echo x'\nios\nsystem\n"],
                         ids=["global", "global-no-stop", "inst", "inst-no-stop"])
def test_protocol0_pickle_is_found_under_any_name(name: str, data: bytes) -> None:
    found, _ = _detect(data, name)
    assert ("model.pickle.dangerous-global", "critical", "os.system") in found, found


def test_protocol0_pickle_after_a_long_line_and_in_an_mmap(tmp_path: Path) -> None:
    # module line far beyond the 4 KiB head: the pre-check reads the buffer, not the head
    mod = ".".join(["a" * 60] * 100)
    data = b"c" + mod.encode() + b"\nsystem\n(S'x'\ntR" + b"\n" * 10_000
    p = tmp_path / "blob.txt"
    p.write_bytes(data)
    with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert pickle01_may_run(mm, TRIAL_BYTES)
        found, _ = _detect(mm, "blob.txt")
    assert any(r.startswith("model.pickle.") and sev == "critical" and e == f"{mod}.system" for r, sev, e in found)


def test_one_analyser_serves_many_files() -> None:
    det = ModelDetector(SimpleNamespace(options=ScanOptions()))  # type: ignore[arg-type]
    first, _ = _detect(PROTO0, "a.txt", det)
    analyser = det._analyzer
    second, _ = _detect(PROTO0, "b.txt", det)
    assert analyser is not None and det._analyzer is analyser
    assert first == second and first


def test_has_model_ext_matches_endswith() -> None:
    for n in ["a.PKL", "x/y.pt", "m.Safetensors", "a.txt", "pkl", ".pkl", "a.b/c", "x.tar.gz", "model", "a.npz"]:
        assert has_model_ext(n) == n.lower().endswith((".pkl", ".pt", ".safetensors", ".npz")), n


# ---- exactness of the pre-check against the walker ---------------------------------------------------------

_FRAGS = [b"os\n", b"system\n", b"os.path\n", b"os path\n", b"\xc3\xa9x\n", b"\xe9\n", b"'x'\n", b"\"x\n", b"\n",
          b"12\n", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x05\x00\x00\x00", b"abcde", b"R", b".", b"(", b"t"]
_streams = st.tuples(
    st.sampled_from(sorted(PICKLE_OPCODES | set(b"#xyz\x00\x99\xff"))).map(lambda b: bytes([b])),
    st.lists(st.one_of(st.sampled_from(_FRAGS), st.binary(max_size=6)), max_size=12).map(b"".join),
).map(b"".join)


def _precheck_is_sound(data: bytes) -> None:
    if pickle01_may_run(data):
        return
    res = PickleWalker().analyze(data, max_streams=1)
    assert not (res.saw_global or res.saw_call or res.clean_stop), data
    assert all((i.location or {}).get("offset") == 0 for i in res.issues), (data, res.issues)


_TAILS = [b"\x00" * 12, b"\x01\x00\x00\x00\x00\x00\x00\x00abcd", b"\x02\x00\x00\x00xy.", b"'x'\n'", b"os\nsystem\n",
          b"\n" * 12, b"\xff" * 12, b"\x03abc\n\n", b"''\n", b"'\n", b"os.path\nsystem\n", b"\x05N.", b"\x06N."]


def test_precheck_is_sound_for_every_first_byte_and_length() -> None:
    # every byte as first opcode, followed by each tail cut at every length (the exact size boundaries)
    for op in range(256):
        for tail in _TAILS:
            for n in range(len(tail) + 1):
                _precheck_is_sound(bytes([op]) + tail[:n])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams)
def test_precheck_rejects_only_what_the_walker_rejects_at_once(data: bytes) -> None:
    _precheck_is_sound(data)


def test_models_are_imported_only_when_a_file_needs_them(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_bytes(b"import os\nhello world\n")
    (tmp_path / "README.txt").write_bytes(PROTO0)
    code = """
import json, sys
from veritensor_fast.findings import Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext
ctx = WorkerContext(ScanOptions())
assert any(d.name == "model" for d in ctx.detectors)
out = {}
for name in sys.argv[1:]:
    data = open(name, "rb").read()
    item = Item("file", name, name.rsplit("/", 1)[-1], len(data))
    scan = ItemScan(ctx, item)
    ctx.scan_buffer(data, item, scan)
    out[item.path] = {"findings": [f.rule_id for f in scan.findings],
                      "loaded": sorted(m for m in sys.modules if m.startswith("veritensor_fast.models."))}
print(json.dumps(out))
"""
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "small.txt"), str(tmp_path / "README.txt")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["small.txt"] == {"findings": [], "loaded": ["veritensor_fast.models.sniff"]}
    assert "model.pickle.dangerous-global" in out["README.txt"]["findings"]
    assert "veritensor_fast.models.analyzer" in out["README.txt"]["loaded"]
