"""pdtz20: ``builtins.getattr`` in a pickle is judged by what it is applied to.

Pickle writes every bound method as ``getattr(<class>, "<name>")``: every time zone of ``zoneinfo`` is rebuilt by
``getattr(zoneinfo.ZoneInfo, "_unpickle")(key, from_cache)``. On 298f21b every timezone-aware pandas column,
``Timestamp``, ``DatetimeTZDtype`` and zoned ``datetime`` was a CRITICAL ``builtins.getattr`` finding (plus an
unknown ``zoneinfo.ZoneInfo``): the real files under ``tests/fixtures/real_models_pdtz20`` (``make.py``, pandas
3.1.1, torch 2.13, joblib 1.6; this suite imports none of them) are each a finding there and none here.

Every other use of a getattr value stays CRITICAL (``models/pickle_getattr.py``): these hostile streams are built
by hand, opcode by opcode, and are never loaded.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.allowlist import parse_allow
from veritensor_fast.models.pickle_scan import PickleWalker

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_pdtz20"
REAL = ["tz_frame_p2.pkl", "tz_frame_p3.pkl", "tz_frame_p4.pkl", "tz_frame_p5.pkl", "tz_frame.joblib",
        "checkpoint_with_zoned_time.pt", "tz_values_p2.pkl", "tz_values_p5.pkl"]


def test_fixture_set_is_complete() -> None:
    assert set((FIX / "VERSIONS").read_text().split("files:")[1].split()) == set(REAL)


@pytest.mark.parametrize("name", REAL)
def test_real_bound_method_pickle_has_no_finding(name: str) -> None:
    data = (FIX / name).read_bytes()
    assert b"getattr" in data  # (the zip member of the .pt is stored)
    assert analyze(data, name) == []


def test_real_files_through_the_command_line() -> None:
    code, rep = scan_json(FIX)
    assert code == 0 and rep["findings"] == [] and rep["errors"] == []


# ---- hand-built streams (protocol 2 opcodes; ``_p4`` wraps them in STACK_GLOBAL + MEMOIZE) ----------------

def g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s(text: str) -> bytes:
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


GA = g("builtins", "getattr")
ZI = g("zoneinfo", "ZoneInfo")
UNPICKLE = GA + ZI + s("_unpickle") + b"\x86R"  # getattr(ZoneInfo, "_unpickle")
ZONE = UNPICKLE + s("Europe/Paris") + b"\x88\x86R"  # ...("Europe/Paris", True)


def walk(body: bytes, proto: int = 2, allow: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    res = PickleWalker(parse_allow(allow)).analyze(b"\x80" + bytes([proto]) + body + b".")
    return [(i.severity, i.rule_id, i.evidence) for i in res.issues]


def critical(body: bytes, **kw: object) -> set[str]:
    return {e for sev, _, e in walk(body, **kw) if sev == "critical"}  # type: ignore[arg-type]


def test_reviewed_bound_method_is_no_finding() -> None:
    assert walk(ZONE) == []
    assert walk(ZONE, proto=0) == []
    p0 = (b"c__builtin__\ngetattr\n(czoneinfo\nZoneInfo\nS'_unpickle'\ntR(S'UTC'\nI01\ntR")
    assert walk(p0, proto=0) == []


def test_memoized_getattr_reused_for_reviewed_targets_is_no_finding() -> None:
    # what pickle writes for two zones: getattr and ZoneInfo memoized once, fetched again (BINGET, GET, DUP)
    two = (GA + b"q\x00" + ZI + b"q\x01" + s("_unpickle") + b"\x86R" + s("UTC") + b"\x88\x86R"
           + b"h\x00h\x01" + s("_unpickle") + b"\x86R" + s("Asia/Tokyo") + b"\x88\x86R\x86")
    assert walk(two) == []
    dup = GA + b"2" + ZI + s("_unpickle") + b"\x86R0" + ZI + s("_unpickle") + b"\x86R"
    assert walk(dup) == []


def test_stack_global_and_memoize_protocol_4() -> None:
    sg = (s("builtins") + s("getattr") + b"\x93\x94" + s("zoneinfo") + s("ZoneInfo") + b"\x93\x94" + s("_unpickle")
          + b"\x94\x86\x94R\x94" + s("UTC") + b"\x88\x86R\x94" + b"h\x00h\x01" + s("_unpickle") + b"\x86R")
    assert walk(sg, proto=4) == []
    evil = sg + b"0h\x00" + g("pathlib", "Path") + s("write_text") + b"\x86R"
    assert "pathlib.Path.write_text" in critical(evil, proto=4)


def test_the_target_is_judged_like_a_global() -> None:
    # an allowed class with a dangerous attribute: the target itself is CRITICAL
    assert "pathlib.Path.write_text" in critical(GA + g("pathlib", "Path") + s("write_text") + b"\x86R")
    # getattr on a dangerous module's value: CRITICAL
    assert critical(GA + g("os", "path") + s("join") + b"\x86R") >= {"os.path", "os.path.join"}
    assert critical(GA + g("subprocess", "Popen") + s("communicate") + b"\x86R")
    # a builtin type's method: module builtins is not reviewed attribute by attribute
    assert "builtins.str.format" in critical(GA + g("builtins", "str") + s("format") + b"\x86R")
    # an unreviewed target is an unknown global, named as such; --allow-global allows it
    assert walk(GA + g("collections", "OrderedDict") + s("fromkeys") + b"\x86R") == [
        ("medium", "model.pickle.unknown-global", "collections.OrderedDict.fromkeys")]
    assert walk(GA + g("collections", "OrderedDict") + s("fromkeys") + b"\x86R",
                allow=("collections:OrderedDict.fromkeys",)) == []


@pytest.mark.parametrize("body", [
    GA + ZI + s("__init__") + b"\x86R",  # dunder names
    GA + ZI + s("__globals__") + b"\x86R",
    GA + g("collections", "OrderedDict") + s("__class__") + b"\x86R",
    GA + ZI + s("a.b") + b"\x86R",  # not an identifier
    GA + b")\x81" + s("system") + b"\x86R",  # NEWOBJ of getattr
    GA + b"(" + ZI + s("_unpickle") + b"o",  # OBJ
    b"(" + ZI + s("_unpickle") + b"ibuiltins\ngetattr\n",  # INST
    GA + ZI + s("_unpickle") + s("dflt") + b"\x87R",  # three arguments
    GA + g("collections", "OrderedDict") + b")R" + s("keys") + b"\x86R",  # on an instance (a call result)
    GA + ZI + g("_codecs", "encode") + s("_unpickle") + s("latin1") + b"\x86R\x86R",  # non-literal name
    GA + UNPICKLE + s("x") + b"\x86R",  # a chain: getattr(getattr(ZoneInfo, "_unpickle"), "x")
    GA + UNPICKLE + s("__globals__") + b"\x86R",
    GA,  # getattr itself is the unpickled object
    GA + b"0N",  # dropped
    b"]" + GA + b"a",  # stored in a list
    b"}" + s("f") + GA + b"s",  # stored in a dict
    g("builtins", "map") + GA + b"(" + ZI + b"t(" + s("_unpickle") + b"t\x87R",  # passed to map
    g("collections", "OrderedDict") + b")R}" + s("f") + GA + b"sb",  # in a BUILD state
    GA + b"2" + ZI + s("_unpickle") + b"\x86R0",  # a DUP'd copy left on the stack
    GA + b"q\x00" + ZI + s("_unpickle") + b"\x86R0h\x00" + g("builtins", "object") + b"\x85R",  # reused: 1 arg
    GA + b"q\x00" + ZI + s("_unpickle") + b"\x86R0h\x00",  # reused: fetched and returned
    GA + b"q\x00" + ZI + s("_unpickle") + b"\x86R0(h\x00l",  # reused: fetched into a LIST
    GA + ZI + s("_unpickle") + b"\x86R" + GA + b"\x85",  # a second getattr packed into a tuple
    b"\x8c\x08builtins\x8c\x07getattr\x93\x94" + ZI + s("_unpickle") + b"\x86R0\x8c\x03bad\x8c\x01x\x93h\x00\x85",
])
def test_every_other_use_of_getattr_stays_critical(body: bytes) -> None:
    assert "builtins.getattr" in critical(body), walk(body)


def test_a_stream_that_breaks_after_getattr_keeps_the_finding() -> None:
    res = PickleWalker().analyze(b"\x80\x02" + GA + ZI)  # truncated: never called
    assert any(i.severity == "critical" and i.evidence == "builtins.getattr" for i in res.issues)


def test_getattr_on_a_module_object_a_call_returns_stays_critical() -> None:
    # modelscan issue #331's shape: getattr applied to importlib.import_module("builtins"), memoized and reused
    body = (s("importlib") + s("import_module") + b"\x93\x94" + s("builtins") + b"\x85R\x94" + s("builtins")
            + s("getattr") + b"\x93\x94h\x02h\x01" + s("eval") + b"\x86R" + s("1") + b"\x85R")
    assert {"builtins.getattr", "importlib.import_module"} <= critical(body, proto=4)


def test_a_planted_class_attribute_read_back_by_getattr_is_still_a_finding() -> None:
    # BUILD on the reviewed class sets ZoneInfo._unpickle = len, then the reviewed getattr reads it back
    plant = ZI + b"N}" + s("_unpickle") + g("builtins", "len") + b"s\x86b0" + ZONE
    assert ("high", "model.pickle.build-global", "zoneinfo.ZoneInfo") in walk(plant)
