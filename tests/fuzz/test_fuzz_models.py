"""Fuzzing the model-file parsers through the worker: the pickle walker (models/pickle_scan.py) on pickles of
plain data at every protocol and on code-running pickles, mutated; npy, safetensors and GGUF headers
(models/formats.py), generated and mutated; a Keras config inside a zip. Contract: see fuzzkit; and no pickle
is ever executed (the code-running ones would create a marker file)."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzzkit import examples, mutate, scan_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.findings import Finding

SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large,
                                                                       HealthCheck.function_scoped_fixture])
edits = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 3), st.integers(0, 255)), max_size=6)
PICKLE_NAMES = ["data.pkl", "model.pt", "m.joblib", "w.bin", "noext", "x.npy"]

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.binary(max_size=12),
    lambda i: st.lists(i, max_size=4) | st.tuples(i, i) | st.dictionaries(st.text(max_size=5), i, max_size=3)
    | st.frozensets(st.integers(), max_size=3), max_leaves=10)


def _serious(data: bytes, name: str = "data.pkl") -> list[Finding]:
    return [f for f in scan_bytes(data, name).findings if f.severity in ("high", "critical")]


#: Found by the exploratory run: ``pickle.dumps(b"", protocol=0..2)`` is ``__builtin__.bytes()``, flagged as a
#: critical dangerous global (a false positive on benign data). Fixed on the models branch; tolerated here
#: only while it still reproduces.
BYTES_FP_OPEN = bool(_serious(pickle.dumps(b"", protocol=0)))


@settings(max_examples=examples(80), **SETTINGS)
@given(plain, st.integers(0, 5), edits, st.sampled_from(PICKLE_NAMES))
def test_plain_pickles_mutated_keep_the_contract(v: Any, proto: int, ed: list[tuple[int, int, int]],
                                                 name: str) -> None:
    data = pickle.dumps(v, protocol=proto)
    res = scan_bytes(mutate(data, ed), name)
    if not ed and name != "x.npy":  # a pickle of plain data is never a finding
        serious = [f for f in res.findings if f.severity in ("high", "critical")
                   and not (BYTES_FP_OPEN and f.redacted == "__builtin__.bytes")]
        assert not serious, serious


@pytest.mark.xfail(BYTES_FP_OPEN, strict=True, reason="open false positive on this branch (fixed on the models "
                   "branch): __builtin__.bytes() is reported as a critical dangerous global")
@pytest.mark.parametrize("value", [b"", [b"", 1]], ids=["empty-bytes", "list-with-empty-bytes"])
@pytest.mark.parametrize("proto", [0, 1, 2])
def test_pickled_empty_bytes_is_not_a_finding(value: Any, proto: int) -> None:
    assert _serious(pickle.dumps(value, protocol=proto)) == []


def evil_pickles(marker: Path) -> list[bytes]:
    """Pickles that would create ``marker`` when loaded (built from opcodes; never loaded here)."""
    m = str(marker).encode()
    p0 = b"cbuiltins\nopen\n(S'" + m + b"'\nS'w'\ntR."
    p0_os = b"cos\nsystem\n(S'touch " + m + b"'\ntR."
    p4 = (b"\x80\x04\x95" + struct.pack("<Q", 0) + b"\x8c\x08builtins\x94\x8c\x04open\x94\x93\x94"
          + b"\x8c" + bytes([len(m)]) + m + b"\x8c\x01w\x86R.")
    p2_posix = b"\x80\x02cposix\nsystem\nq\x00X" + struct.pack("<I", len(m) + 6) + b"touch " + m + b"\x85R."
    return [p0, p0_os, p4, p2_posix]


def _wrap(kind: str, p: bytes) -> tuple[bytes, str]:
    if kind == "zip":
        bio = io.BytesIO()
        with zipfile.ZipFile(bio, "w") as z:
            z.writestr("archive/data.pkl", p)
            z.writestr("archive/version", "3\n")
        return bio.getvalue(), "model.pt"
    if kind == "npy":
        hdr = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
        hdr += b" " * (63 - (10 + len(hdr)) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + p, "a.npy"
    return p, kind


@settings(max_examples=examples(80), **SETTINGS)
@given(st.integers(0, 3), st.sampled_from(["data.pkl", "noext", "w.bin", "zip", "npy"]), edits)
def test_code_running_pickles_are_never_run(tmp_path: Path, which: int, kind: str,
                                            ed: list[tuple[int, int, int]]) -> None:
    marker = tmp_path / "pwned"
    p = evil_pickles(marker)[which]
    data, name = _wrap(kind, p)
    res = scan_bytes(mutate(data, ed), name)
    assert not marker.exists(), "a scanned pickle was executed"
    if not ed:
        assert any(f.severity == "critical" for f in res.findings), (name, res.findings)


def test_evil_pickles_would_really_run(tmp_path: Path) -> None:
    """The marker pickles are live ammunition: load one (ours, in a subprocess-free way) to prove it."""
    marker = tmp_path / "pwned"
    pickle.loads(evil_pickles(marker)[0]).close()  # noqa: S301 - our own test pickle, not scanned input
    assert marker.exists()


# ---- npy ---------------------------------------------------------------------------------------------------

def npy(arr: Any) -> bytes:
    bio = io.BytesIO()
    np.save(bio, arr, allow_pickle=True)
    return bio.getvalue()


NPY_SEEDS = [npy(np.arange(6, dtype="<i4").reshape(2, 3)), npy(np.zeros(3, dtype=[("a", "<f4"), ("b", "S3")])),
             npy(np.array([{"a": 1}, "x"], dtype=object)), npy(np.ones((2, 2), dtype=">f8", order="F"))]


@settings(max_examples=examples(60), **SETTINGS)
@given(st.sampled_from(range(len(NPY_SEEDS))), edits)
def test_mutated_npy_keeps_the_contract(which: int, ed: list[tuple[int, int, int]]) -> None:
    scan_bytes(mutate(NPY_SEEDS[which], ed), "a.npy")


@settings(max_examples=examples(60), **SETTINGS)
@given(st.sampled_from([1, 2, 3]), st.text(max_size=80) | st.sampled_from(
    ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "{'descr': [('a', '|O')], 'fortran_order': 0, "
     "'shape': ()}", "{'descr': '|O', 'fortran_order': False, 'shape': (2L,)}", "(" * 200, "[" * 5000]),
       st.binary(max_size=40))
def test_generated_npy_headers_keep_the_contract(major: int, header: str, body: bytes) -> None:
    h = header.encode("utf-8", "surrogatepass")
    ln = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    scan_bytes(b"\x93NUMPY" + bytes([major, 0]) + ln + h + body, "a.npy")


# ---- safetensors -------------------------------------------------------------------------------------------

json_any = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=6),
                        lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=4), i, max_size=3),
                        max_leaves=6)
tensor = st.fixed_dictionaries({}, optional={
    "dtype": st.sampled_from(["F32", "BF16", "I8", "F4", "F6_E2M3", "bogus"]) | json_any,
    "shape": st.lists(st.integers(-1, 2**40), max_size=3) | json_any,
    "data_offsets": st.lists(st.integers(-1, 2**40), min_size=2, max_size=2) | json_any, "extra": json_any})


@settings(max_examples=examples(80), **SETTINGS)
@given(st.dictionaries(st.text(max_size=6), tensor | json_any, max_size=4),
       st.none() | json_any, st.integers(0, 64), st.integers(-8, 8), edits)
def test_safetensors_headers_keep_the_contract(hdr: dict[str, Any], meta: Any, body: int, skew: int,
                                               ed: list[tuple[int, int, int]]) -> None:
    doc = dict(hdr)
    if meta is not None:
        doc["__metadata__"] = meta
    h = json.dumps(doc).encode()
    raw = struct.pack("<Q", max(0, len(h) + skew)) + h + b"\0" * body
    scan_bytes(mutate(raw, ed), "m.safetensors")


# ---- gguf ----------------------------------------------------------------------------------------------------

def gstr(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


gguf_values = st.one_of(
    st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12]), st.binary(min_size=8, max_size=8)).map(
        lambda t: struct.pack("<I", t[0]) + t[1][:{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1}.get(t[0], 8)]),
    st.text(max_size=30).map(lambda s: struct.pack("<I", 8) + gstr(s.encode("utf-8", "surrogatepass"))),
    st.sampled_from([b"{{ ''.__class__.__mro__ }}", b"hello"]).map(lambda s: struct.pack("<I", 8) + gstr(s)),
    st.tuples(st.sampled_from([4, 8, 9, 13]), st.integers(0, 2**64 - 1), st.binary(max_size=24)).map(
        lambda t: struct.pack("<IIQ", 9, t[0], t[1]) + t[2]),
    st.integers(0, 2**32 - 1).map(lambda t: struct.pack("<I", t)),
)
gguf_keys = st.sampled_from([b"general.alignment", b"tokenizer.chat_template", b"general.name", b""]) | st.binary(
    max_size=10)
gguf_tensors = st.tuples(st.binary(max_size=8), st.lists(st.integers(0, 2**64 - 1), max_size=5),
                         st.integers(0, 40), st.integers(0, 2**64 - 1)).map(
    lambda t: gstr(t[0]) + struct.pack("<I", len(t[1])) + b"".join(struct.pack("<Q", d) for d in t[1])
    + struct.pack("<IQ", t[2], t[3]))


@settings(max_examples=examples(80), **SETTINGS)
@given(st.sampled_from([2, 3, 1, 7]), st.lists(st.tuples(gguf_keys, gguf_values), max_size=4),
       st.lists(gguf_tensors, max_size=3), st.integers(-2, 2), st.binary(max_size=64), edits)
def test_gguf_headers_keep_the_contract(version: int, kvs: list[tuple[bytes, bytes]], tensors: list[bytes],
                                        skew: int, body: bytes, ed: list[tuple[int, int, int]]) -> None:
    raw = (b"GGUF" + struct.pack("<IQQ", version, max(0, len(tensors) + skew), max(0, len(kvs) + skew))
           + b"".join(gstr(k) + v for k, v in kvs) + b"".join(tensors) + body)
    scan_bytes(mutate(raw, ed), "m.gguf")


# ---- keras v3 (a zip with config.json) -----------------------------------------------------------------------

@settings(max_examples=examples(40), **SETTINGS)
@given(json_any, st.sampled_from(["Lambda", "Dense", "TFSMLayer", "__lambda__"]),
       st.sampled_from(["keras.layers", "os", "builtins", "", "keras"]) | st.text(max_size=8))
def test_keras_configs_keep_the_contract(cfg: Any, cls: str, mod: str) -> None:
    doc = {"class_name": "Functional", "config": {"layers": [{"class_name": cls, "module": mod, "config": cfg}]}}
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("config.json", json.dumps(doc))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    scan_bytes(bio.getvalue(), "m.keras")


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "corpora" / "demo" / "models").glob("*")),
                         ids=lambda p: p.name)
def test_demo_models_mutated_keep_the_contract(path: Path) -> None:
    data = path.read_bytes()
    for i, ed in enumerate([[(7, 0, 0)], [(len(data) // 2, 3, 0)], [(100, 1, 0x93)], [(3, 2, 0), (20, 0, 0xff)]]):
        scan_bytes(mutate(data, ed), path.name if i % 2 else "x" + path.suffix)
