"""How precisely globals and broken streams are judged: builtins split, reviewed entries, non-pickles, memo/DUP
expansion, FRAME straddles, joblib arrays, content-bound fingerprints and the model rule ids in the CLI.

Every pickle here is opcode bytes built by hand; nothing is ever unpickled.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from veritensor_fast.models import ModelIssue, analyze

from conftest import run_cli, scan_json


def su(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def glob(m: str, n: str) -> bytes:  # GLOBAL
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def call1(callee: bytes, arg: str = "echo pwned") -> bytes:
    return callee + su(arg) + b"\x85R"


P2 = b"\x80\x02"
P4 = b"\x80\x04"


def worst(issues: list[ModelIssue]) -> str:
    order = ["none", "info", "low", "medium", "high", "critical"]
    return max((i.severity for i in issues), key=order.index, default="none")


# ---- builtins, name by name --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["len", "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex",
                                  "bytes", "bytearray", "slice", "range", "bool", "str", "object", "min",
                                  "sorted", "ValueError", "type"])
def test_builtin_data_is_not_a_finding(name: str) -> None:
    data = P2 + call1(glob("builtins", name), "abc") + b"."
    assert analyze(data, "m.pkl") == []


@pytest.mark.parametrize("name", ["eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "open",
                                  "breakpoint", "input", "globals", "locals", "vars", "help", "exit", "quit",
                                  "print", "super", "license", "memoryview.cast", "dict.fromkeys"])
def test_builtin_code_stays_critical(name: str) -> None:
    issues = analyze(P2 + call1(glob("builtins", name)) + b".", "m.pkl")
    assert worst(issues) == "critical", issues
    # an unreviewed builtin is dangerous too (allowlist, not denylist)
    assert worst(analyze(P2 + call1(glob("builtins", "some_future_builtin")) + b".", "m.pkl")) == "critical"


@pytest.mark.parametrize(("module", "name"), [
    ("collections.abc", "Mapping"), ("__future__", "annotations"), ("random", "Random"),
    ("collections", "defaultdict"), ("copyreg", "_reconstructor"), ("pathlib", "PosixPath"),
    ("argparse", "Namespace"), ("numpy", "matrix"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core._internal", "_reconstruct"), ("scipy.sparse._csc", "csc_matrix"),
    ("sklearn.linear_model._logistic", "LogisticRegression"), ("torch.nn.modules.linear", "Linear"),
    ("__torch__.torch.nn.modules.linear", "Linear"), ("torch.jit._pickle", "build_intlist"),
    ("networkx.classes.digraph", "DiGraph"),
])
def test_reviewed_data_globals(module: str, name: str) -> None:
    assert analyze(P2 + call1(glob(module, name), "x") + b".", "m.pkl") == []


@pytest.mark.parametrize(("module", "name"), [
    ("numpy.core._internal", "_ctypes"), ("numpy._core._internal", "_getintp_ctype"),
    ("numpy.core", "_ufunc_reconstruct"), ("copyreg", "add_extension"), ("pathlib", "PosixPath.write_text"),
])
def test_reviewed_code_globals(module: str, name: str) -> None:
    assert worst(analyze(P2 + call1(glob(module, name)) + b".", "m.pkl")) == "critical"


def test_plain_hdf5_data_file_is_not_a_model_finding() -> None:
    assert analyze(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 + b"temperature", "data.h5") == []
    keras_h5 = b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 + b'model_config{"class_name": "Sequential"}'
    assert [i.rule_id for i in analyze(keras_h5, "m.h5")] == ["model.h5.not-covered"]


# ---- a file that is not a pickle ---------------------------------------------------------------------------

def test_not_a_pickle_is_not_a_high_finding() -> None:
    """PROTO then bytes that break at once: pickle.load fails before doing anything; at most info."""
    for data in (P4 + b"\xff\x00\x13garbage", P2 + b"K\x01K\x02\x07\x07", P4 + b"h\x09" + su("system") + b"\x93."):
        issues = analyze(data, "weights.bin")
        assert worst(issues) in ("none", "info"), issues


def test_dangerous_module_imported_before_the_break_counts() -> None:
    issues = analyze(P2 + b"cos\nnot a name\n.", "m.pkl")
    assert worst(issues) == "critical"
    assert any(i.evidence == "os.<invalid name>" for i in issues)
    # a module that is not known to be dangerous: text that merely starts like GLOBAL ("cword\nsome words")
    assert worst(analyze(P2 + b"cfoo_plugin\nbad name\n.", "m.pkl")) == "info"
    assert worst(analyze(P2 + b"ccollections\nbad name\n.", "m.pkl")) == "info"


def test_broken_stream_after_unreviewed_import_stays_high() -> None:
    issues = analyze(P2 + glob("foo_plugin", "Thing") + b"\xff", "m.pkl")
    assert any(i.rule_id == "model.pickle.corrupt" and i.severity == "high" for i in issues)


# ---- memo / DUP expansion ----------------------------------------------------------------------------------

def test_dup_billion_laughs_is_a_dos_finding() -> None:
    data = P2 + b"]" + b"2\x86" * 40 + b"."  # each level: DUP, TUPLE2 -> 2**40 elements from 82 opcodes
    issues = analyze(data, "m.pkl")
    assert [i.rule_id for i in issues] == ["model.pickle.dos"], issues


def test_memo_billion_laughs_is_a_dos_finding() -> None:
    data = P2 + b"]" + b"".join(b"q\x00(h\x00h\x00h\x00l" for _ in range(30)) + b"."
    assert "model.pickle.dos" in {i.rule_id for i in analyze(data, "m.pkl")}


@pytest.mark.parametrize("name", ["bytes", "bytearray", "range"])
def test_huge_allocation_by_a_builtin_is_a_dos_finding(name: str) -> None:
    data = P2 + glob("builtins", name) + b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85R."  # 2**40
    assert [i.rule_id for i in analyze(data, "m.pkl")] == ["model.pickle.dos"]
    assert analyze(P2 + glob("builtins", name) + b"K\x10\x85R.", "m.pkl") == []


def test_large_plain_list_is_not_dos() -> None:
    data = P2 + b"](" + b"K\x01" * 200_000 + b"e."
    assert analyze(data, "m.pkl") == []


# ---- FRAME straddles: every variant ------------------------------------------------------------------------

_BODIES = {
    "binbytes": b"B" + struct.pack("<I", 4) + b"abcd.",
    "binunicode": b"X" + struct.pack("<I", 4) + b"abcd.",
    "short_binbytes": b"C\x04abcd.",
    "global": b"cbuiltins\nlen\n.",
    "binint": b"J\x01\x00\x00\x00.",
}


@pytest.mark.parametrize(("kind", "cut"), [(k, c) for k, b in _BODIES.items() for c in range(1, len(b) - 1)])
def test_every_frame_straddle_variant_is_reported(kind: str, cut: int) -> None:
    """The frame ends inside an opcode: after its byte, inside a length, inside a BINBYTES payload, a line."""
    data = P4 + b"\x95" + struct.pack("<Q", cut) + _BODIES[kind]
    issues = analyze(data, "m.pkl")
    assert sum(i.rule_id == "model.pickle.frame" for i in issues) == 1, issues
    assert next(i for i in issues if i.rule_id == "model.pickle.frame").severity == "high"


def test_frame_ending_on_an_opcode_boundary_is_fine() -> None:
    body = b"C\x04abcd" + b"."
    assert analyze(P4 + b"\x95" + struct.pack("<Q", 6) + body, "m.pkl") == []


# ---- joblib inline arrays ----------------------------------------------------------------------------------

def _wrapper(shape: tuple[int, ...], descr: str, state: bytes, align: bool) -> bytes:
    dims = b"(" + b"".join(b"K" + bytes([d]) for d in shape) + b"t"
    dtype = glob("numpy", "dtype") + su(descr) + b"\x89\x88\x87R" + state + b"b"
    st = (b"}(" + su("subclass") + glob("numpy", "ndarray") + su("shape") + dims + su("order") + su("C")
          + su("dtype") + dtype + su("allow_mmap") + b"\x88")
    if align:
        st += su("numpy_array_alignment_bytes") + b"K\x10"
    return glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + st + b"ub"


_F8 = b"(K\x03" + su("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
_O8 = b"(K\x03" + su("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t"


@pytest.mark.parametrize("align", [True, False])
def test_joblib_array_bytes_are_skipped_and_what_follows_is_analysed(align: bool) -> None:
    junk = (b"cos\nsystem\n" + su("x") + b"\x85R").ljust(24, b"\x00")  # looks like a payload, is array data
    arr = (bytes([7]) + b"\xff" * 7 if align else b"") + junk
    benign = P2 + b"]q\x00(" + _wrapper((3,), "f8", _F8, align) + arr + b"e."
    assert analyze(benign, "m.joblib") == []
    evil = P2 + b"]q\x00(" + _wrapper((3,), "f8", _F8, align) + arr + call1(glob("posix", "system")) + b"e."
    issues = analyze(evil, "m.joblib")
    assert [i.evidence for i in issues] == ["posix.system"] and worst(issues) == "critical"


def test_joblib_wrapper_built_by_copyreg_reconstructor_protocol_0() -> None:
    """joblib.dump(..., protocol=0/1): the wrapper is rebuilt by copyreg._reconstructor, then BUILD."""
    w = _wrapper((2,), "f8", _F8, False).replace(
        glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81",
        glob("copyreg", "_reconstructor") + b"(" + glob("joblib.numpy_pickle", "NumpyArrayWrapper")
        + glob("builtins", "object") + b"NtR")
    data = b"(" + w + b"cos\nsystem\n".ljust(16, b"\x00") + b"l" + call1(glob("posix", "system")) + b"."
    assert [i.evidence for i in analyze(data, "m.joblib")] == ["posix.system"]


def test_joblib_object_array_nested_pickle_is_analysed() -> None:
    inner = P2 + call1(glob("posix", "system")) + b"."
    data = P2 + b"]q\x00(" + _wrapper((1,), "O8", _O8, False) + inner + b"e."
    issues = analyze(data, "m.joblib")
    assert [i.evidence for i in issues] == ["posix.system"]
    plain = P2 + b"]q\x00(" + _wrapper((1,), "O8", _O8, False) + P2 + b"]K\x01a." + b"e."
    assert analyze(plain, "m.joblib") == []


def test_joblib_header_that_cannot_be_read_fails_closed() -> None:
    bad = P2 + glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81}b" + b"\x00" * 8 + b"."
    issues = analyze(bad, "m.joblib")
    assert any(i.rule_id == "model.pickle.limit" and i.severity == "high" for i in issues)


@pytest.mark.parametrize(("filename", "flagged"), [("m.pkl_01.npy", False), ("../../etc/evil.npy", True),
                                                  ("/tmp/evil.npy", True), ("C:\\x\\evil.npy", True)])
def test_old_joblib_wrapper_is_data_unless_it_points_outside(filename: str, flagged: bool) -> None:
    data = (P2 + glob("joblib.numpy_pickle", "NDArrayWrapper") + b")\x81}(" + su("filename") + su(filename)
            + su("subclass") + glob("numpy", "ndarray") + su("allow_mmap") + b"\x88ub.")
    issues = analyze(data, "m.pkl")
    assert [i.rule_id for i in issues] == (["model.joblib.external-file"] if flagged else []), issues


# ---- fingerprints bind the content; model rule ids in the CLI ----------------------------------------------

def _evil(arg: str) -> bytes:
    return P2 + call1(glob("posix", "system"), arg) + b"."


def test_baselined_model_finding_does_not_hide_a_different_file(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(_evil("echo one"))
    p = run_cli("baseline", "create", ".", "-o", tmp_path / "bl.json", "--jobs", "1", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rc, rep = scan_json(".", "-j1", "--baseline", tmp_path / "bl.json", cwd=tmp_path)
    assert rc == 0 and rep["findings"] == []
    (tmp_path / "m.pkl").write_bytes(_evil("echo two"))  # same path, same callable, different file
    rc, rep = scan_json(".", "-j1", "--baseline", tmp_path / "bl.json", cwd=tmp_path)
    assert rc == 1 and [f["redacted"] for f in rep["findings"]] == ["posix.system"]


def test_rules_list_shows_model_rules_and_disable_rule_works(tmp_path: Path) -> None:
    p = run_cli("rules", "list")
    assert p.returncode == 0
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("model.pickle.dangerous-global"))
    assert "critical" in line
    assert any(ln.startswith("model.pickle.dos ") for ln in p.stdout.splitlines())
    (tmp_path / "m.pkl").write_bytes(_evil("echo one"))
    rc, rep = scan_json(tmp_path, "-j1", "--disable-rule", "model.pickle.dangerous-global")
    assert rc == 0 and rep["findings"] == []
    assert run_cli("scan", tmp_path, "--disable-rule", "model.no-such-rule").returncode == 2


def test_every_model_rule_id_in_the_code_is_listed() -> None:
    """A model.* id emitted anywhere must be in rule_ids.MODEL_RULES (rules list, --disable-rule)."""
    import re

    from veritensor_fast.models.rule_ids import MODEL_RULES

    root = Path(__file__).resolve().parents[1] / "veritensor_fast"
    used = {m for p in root.rglob("*.py") for m in re.findall(r'"(model\.[a-z0-9.-]+)"', p.read_text("utf-8"))
            if not m.endswith((".h5", ".json", ".pkl"))}
    assert used and used <= set(MODEL_RULES), sorted(used - set(MODEL_RULES))
