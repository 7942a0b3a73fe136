"""The pickle walker's opcode loop, sped up (model19), gives exactly the verdicts of the loop it replaced.

``model19_ref_stream`` is a verbatim copy of ``models/pickle_stream.py`` before the change. Every stream here is
decoded by both, in both reading models (linear and discard), over ``bytes``, ``mmap`` and ``PreadView`` buffers,
from several start offsets and under tight limits, and every result must be identical: the globals used (with
how, where, why and whether called), every issue (rule, severity, message, evidence, location), the stop offset,
STOP reached, the FRAME straddles and the calls. The streams are real ones (``pickle.dumps`` of many shapes at
every protocol, networkx-like graphs, the real-library fixtures written by torch, joblib and numpy), hostile
ones (globals and calls, memo/DUP expansion, FRAME straddles, nested loaders, joblib arrays, dunder strings) and
random mutations and opcode soups of all of them. Nothing is ever unpickled.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import mmap
import os
import pickle
import random
import zipfile
import zlib
from pathlib import Path
from typing import Any

import model19_ref_stream as ref
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast.buffers import LargeFile
from veritensor_fast.models.base import ModelLimits
from veritensor_fast.models.pickle_scan import PickleWalker
from veritensor_fast.models.pickle_stream import decode_stream
from veritensor_fast.randread import PreadView

FIXTURES = Path(__file__).parent / "fixtures"
_TIGHT = [ModelLimits(), ModelLimits(max_ops=40, max_stack=6, max_memo=5, max_marks=3, max_expansion=50),
          ModelLimits(max_ops=1000, max_stack=40, max_memo=30, max_marks=8, max_expansion=400)]


def _norm(res: Any) -> Any:
    """The result compared; the one verdict that changed on purpose since the copy, the judgement of
    ``builtins.getattr`` by what it is applied to (pdtz20, tested in ``test_pdtz20_getattr``), is left out: the
    getattr global itself and the globals its calls yield; and the tensor memory-corruption rule (rt21b,
    CVE-2026-24747, tested in ``test_rt21b_torch_cve_2026_24747``: mutations build such tensors)."""
    uses, issues, pos, ok, straddles, calls = res
    uses = {k: v for k, v in uses.items()
            if (v.module, v.name) != ("builtins", "getattr") and not v.how.startswith("getattr(")}
    return (sorted((k, sorted(vars(v).items()) if hasattr(v, "__dict__") else repr(v)) for k, v in uses.items()),
            [(i.rule_id, i.severity, i.message, i.evidence, i.location, i.error) for i in issues
             if i.rule_id != "model.pickle.memory-corruption"],
            pos, ok, list(straddles), calls)


def _same(data: Any, start: int = 0, end: int | None = None, limits: ModelLimits | None = None) -> None:
    end = len(data) if end is None else end
    for discard in (False, True):
        got = _norm(decode_stream(PickleWalker(limits=limits), data, start, end, discard=discard, where="w"))
        want = _norm(ref.decode_stream(PickleWalker(limits=limits), data, start, end, discard=discard, where="w"))
        assert got == want, (discard, start, end, bytes(data[start:start + 80]))


def _all_ways(data: bytes, rng: random.Random, tmp: Path | None = None) -> None:
    for lim in _TIGHT:
        _same(data, limits=lim)
    for _ in range(3):
        a = rng.randrange(len(data)) if data else 0
        _same(data, a, rng.randint(a, len(data)))
    if tmp is not None and data:
        p = tmp / "s.bin"
        p.write_bytes(data)
        with p.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            _same(mm)
        fd = os.open(p, os.O_RDONLY)
        big = LargeFile(fd, os.fstat(fd))
        try:
            _same(PreadView(big))
        finally:
            big.close()


class _Evil:
    def __reduce__(self) -> Any:
        import os

        return (os.system, ("echo hi",))  # pickled only, never loaded


class _Obj:
    def __init__(self) -> None:
        self.a, self.b = [1, 2], {"__class__": 3}


def _graph(n: int, seed: int) -> dict[str, Any]:
    """The shape of a networkx ``DiGraph``'s state: dicts of dicts sharing attribute dicts (memo references)."""
    rng = random.Random(seed)
    node = {i: {"demand": rng.randint(-2**20, 2**20)} for i in range(n)}
    succ: dict[int, dict[int, Any]] = {i: {} for i in range(n)}
    pred: dict[int, dict[int, Any]] = {i: {} for i in range(n)}
    for _ in range(3 * n):
        u, v = rng.randrange(n), rng.randrange(n)
        d = {"capacity": rng.randint(0, 70000), "weight": rng.randint(-300, 300)}
        succ[u][v] = pred[v][u] = d
    return {"graph": {}, "_node": node, "_adj": succ, "_succ": succ, "_pred": pred}


def _objects() -> list[Any]:
    shared = [1, 2]
    return [
        {"a": 1, "b": [1, 2, 3], "c": (1, 2), "d": {1, 2}, "e": frozenset([3]), "f": b"xx" * 50, "h": 2**100,
         "i": -5, "j": 3.5, "k": "s" * 300, "l": None, "m": True, "n": 70000, "o": -70000, "p": 300,
         "q": bytearray(b"ab"), "r": "é" * 600, "s": "x" * 2000, "t": b"z" * 300},
        [list(range(1100)), {str(i): i for i in range(200)}, tuple(range(5)), ((1,), (2, (3,)))],
        [(i, "x" * i, b"y" * i) for i in range(0, 1300, 13)],
        [_Evil(), {"x": _Evil()}, _Obj(), "__globals__", "__subclasses__"],
        [shared, shared, {"k": shared}, [shared] * 120, (shared, shared)],
        _graph(40, 1), _graph(7, 2),
    ]


def _hostile() -> list[bytes]:
    out = [
        b"cos\nsystem\n(S'echo hi'\ntR.",
        b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.",
        b"(cos\nsystem\nS'id'\no.", b"(S'id'\nios\nsystem\n.", b"\x80\x02\x82\x01)R.",
        b"cbuiltins\nbytes\nJ\x00\x00\x00\x7f\x85R.",
        b"cpickle\nloads\nC\x0ccos\nsystem\n.\x85R.",
        b"c_codecs\nencode\n(X\x04\x00\x00\x00abcdX\x06\x00\x00\x00latin1tRcpickle\nloads\n(h\x00tR.",
        b"cbuiltins\ngetattr\n(cbuiltins\nobject\nX\x0e\x00\x00\x00__subclasses__tR.",
        b"cos\nsystem\n}b.", b"cos\nsy stem\n.", b"cmath\nsqrt\n.",
        # memo/DUP expansion ("billion laughs")
        b"]q\x00" + b"(h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00lq\x00" * 12 + b".",
        b"]" + b"2\x86" * 30 + b".",
        b"}q\x00" + b"h\x00h\x00s" * 5 + b"(K\x01h\x00K\x02h\x00u" * 10 + b".",
        # FRAME straddles: a BINBYTES that runs past its frame hides an opcode from the linear reader
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00C\x08cos\nsystem\n\x95\x02\x00\x00\x00\x00\x00\x00\x00)R.",
        b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x01M\x02\x00J\x03\x00\x00\x00.",
        b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N.",
        b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.",
        # malformed / truncated / limits
        b"s.", b"a.", b"u.", b"(u.", b"(e.", b"N(K\x01u.", b"q\x00.", b"h\x05.", b"j\x05\x00\x00\x00.", b"0.",
        b"1.", b"2.", b"t.", b"\x85.", b"\x93.", b"R.", b"b.", b"o.", b"\x80\x09.", b"\xff.", b"K", b"M\x01",
        b"J\x01\x02", b"r\x01\x00", b"X\xff\xff\xff\xff", b"\x8d" + b"\xff" * 8, b"T\xff\xff\xff\xff",
        b"S'abc\n.", b"S'\\x4'\n.", b"Vabc\\u12\n.", b"I01\n.", b"I00\nL5L\n.", b"F1.5\n.", b"p0\n.",
        b"Np0\ng0\ng9\n.", b"Np12x\n.", b"(" * 40 + b".", b"N" * 40 + b".", b"\x94\x94.", b"N\x94\x94h\x01.",
        b"\x97\x98.", b"\x98.", b"Pid\n.", b"N\x51.", b"\x8a\x09" + b"\x01" * 9 + b".", b"\x8b\x04\x00\x00\x00abcd.",
        b"X\x03\x00\x00\x00\xff\xfe\xfd.", b"\x8c\x0b__globals__.", b"U\x08__code__.",
    ]
    # joblib wrappers whose state dict is built one SETITEM at a time (what the walker keeps of it decides)
    def x(t: str) -> bytes:
        return b"X" + len(t).to_bytes(4, "little") + t.encode()
    out.append(b"cjoblib.numpy_pickle\nNDArrayWrapper\n)\x81}" + x("filename") + x("/etc/passwd") + b"sb.")
    dtype = b"cnumpy\ndtype\n" + x("f8") + b"\x89\x88\x87R"
    for shape in (b"K\x02K\x03\x86", b"M\x02\x00J\x01\x00\x00\x00\x86", b"M\x01\x01K\x00\x86"):
        out.append(b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}" + x("shape") + shape + b"s"
                   + x("dtype") + dtype + b"sb" + bytes(48) + b"N.")
    # a dtype whose BUILD state flags (NEWTRUE) say it holds objects: a pickle follows the wrapper, not raw bytes
    odt = dtype + b"(K\x03" + x("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff\x88tb"
    out.append(b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}" + x("shape") + b"K\x02\x85s" + x("dtype")
               + odt + b"sb\x80\x02cos\nsystem\n.N" + bytes(16) + b".")
    # a FRAME that ends after a string opcode, or inside its length: the length straddles, then the text
    frame1 = b"\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00"
    out += [frame1 + b"\x8c\x02ab.", frame1 + b"X\x02\x00\x00\x00ab.", frame1[:-8] + b"\x02" + bytes(7) + b"X\x02\x00\x00\x00ab."]
    # integer arguments of allocating builtins (BININT1, BININT2, BININT): their values decide a finding
    out += [b"cbuiltins\nbytearray\n" + n + b"\x85R." for n in (b"M\xff\xff", b"M\x40\x9c", b"J\x00\x00\x01\x00",
                                                              b"K\xff", b"J\xff\xff\xff\x7f")]
    big = pickle.dumps(list(range(300)), protocol=2)
    out.append(big + big + b"junk")  # stacked streams and trailing data
    return out


def _fixture_streams() -> list[bytes]:
    """Pickle bytes from the real-library fixtures: torch zips' members, decompressed joblib/pandas files, the
    pickle after a ``.npy`` header, the legacy torch stream; each also fed whole (the walker starts anywhere)."""
    out: list[bytes] = []
    for p in sorted(FIXTURES.rglob("*")):
        if not p.is_file() or p.stat().st_size > 4 << 20 or "bombs" in p.parts:
            continue
        raw = p.read_bytes()
        out.append(raw[:200_000])
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                out += [z.read(n)[:200_000] for n in z.namelist()[:20] if z.getinfo(n).file_size < 4 << 20]
        for dec in (gzip.decompress, bz2.decompress, lzma.decompress, zlib.decompress):
            try:
                out.append(dec(raw)[:200_000])
            except Exception:  # noqa: BLE001 - not that codec
                pass
        if raw[:2] == b"ZF":  # joblib's zlib header
            try:
                out.append(zlib.decompress(raw[raw.index(b"x"):])[:200_000])
            except Exception:  # noqa: BLE001
                pass
        i = raw.find(b"\x80\x02")
        if i > 0:
            out.append(raw[i:200_000])
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    m = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        k = rng.random()
        i = rng.randrange(len(m) + 1)
        if k < 0.4 and m:
            m[min(i, len(m) - 1)] = rng.choice(_ALPHABET)
        elif k < 0.7:
            m[i:i] = rng.choice(_PIECES)
        elif m:
            del m[i:i + rng.randint(1, 8)]
    return bytes(m)


_ALPHABET = [0x4B, 0x4D, 0x4A, 0x71, 0x72, 0x68, 0x6A, 0x28, 0x7D, 0x73, 0x75, 0x65, 0x61, 0x5D, 0x29, 0x2E,
             0x30, 0x31, 0x32, 0x4E, 0x85, 0x86, 0x87, 0x74, 0x94, 0x95, 0x8C, 0x58, 0x43, 0x42, 0x52, 0x93, 0x62,
             0x00, 0xFF]
_PIECES = [b"K\x07", b"M\x01\x02", b"J\xff\xff\xff\xff", b"q\x00", b"r\x00\x00\x00\x00", b"h\x00",
           b"j\x00\x00\x00\x00", b"(", b"}", b"s", b"u", b"e", b"a", b"]", b")", b"2", b"0", b"1", b"\x94",
           b"\x95\x03\x00\x00\x00\x00\x00\x00\x00", b"\x95\x40\x00\x00\x00\x00\x00\x00\x00", b"\x8c\x02os",
           b"\x8c\x06system", b"\x93", b"R", b"b", b"cos\nsystem\n", b"C\x03abc", b"X\x02\x00\x00\x00ab",
           b"\x8c\x08__code__", b"t", b"\x85", b"\x86", b"\x87", b"l", b"d", b"\x91", b"\x90", b"\x8f"]


def test_real_streams_every_protocol(tmp_path: Path) -> None:
    rng = random.Random(19)
    for obj in _objects():
        for proto in range(6):
            data = pickle.dumps(obj, protocol=proto)
            _all_ways(data, rng, tmp_path if proto in (2, 5) else None)
            for _ in range(6):
                _same(_mutate(data, rng))


def test_hostile_streams(tmp_path: Path) -> None:
    rng = random.Random(7)
    for data in _hostile():
        _all_ways(data, rng, tmp_path)
        _same(data, 0, len(data) + 3)  # an end past the buffer (the walker's callers never pass one) breaks alike
        for _ in range(20):
            _all_ways(_mutate(data, rng), rng)


def test_real_library_fixtures() -> None:
    rng = random.Random(5)
    streams = _fixture_streams()
    assert len(streams) > 40
    for data in streams:
        _same(data)
        _same(data, limits=_TIGHT[2])
        for _ in range(4):  # from arbitrary offsets: garbage must break the same way
            _same(data, rng.randrange(len(data)) if data else 0)
        for _ in range(4):
            _same(_mutate(data[:5000], rng))


def test_billion_laughs_and_limits_still_reported() -> None:
    """Ground truth, not only agreement: the expansion, the memo/stack/MARK/opcode limits and a straddle."""
    laughs = b"]q\x00" + b"(h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00lq\x00" * 12 + b"."
    issues = decode_stream(PickleWalker(), laughs, 0, len(laughs), discard=False, where="w")[1]
    assert [i.evidence for i in issues if i.rule_id == "model.pickle.dos"] == ["expansion"]
    lim = ModelLimits(max_ops=40, max_stack=6, max_memo=5, max_marks=3)
    for data, reason in [(b"K\x01" * 7 + b".", "stack or memo limit"), (b"K\x01q\x00q\x01q\x02q\x03q\x04q\x05.",
                          "stack or memo limit"), (b"((((.", "MARK nesting limit"), (b"K\x010" * 30, "opcodes")]:
        issues = decode_stream(PickleWalker(limits=lim), data, 0, len(data), discard=False, where="w")[1]
        assert any(i.rule_id == "model.pickle.limit" and reason in i.message for i in issues), (data, issues)
    fr = _hostile()[15]
    assert decode_stream(PickleWalker(), fr, 0, len(fr), discard=False, where="w")[4]


_OP = st.one_of(st.sampled_from(_PIECES), st.binary(min_size=1, max_size=3))


@settings(max_examples=200, deadline=None)
@given(st.lists(_OP, max_size=40), st.sampled_from(_TIGHT))
def test_opcode_soup(pieces: list[bytes], lim: ModelLimits) -> None:
    data = b"\x80\x04" + b"".join(pieces) + b"."
    _same(data, limits=lim)


@pytest.mark.parametrize("proto", [2, 4])
def test_big_graph_pickle(proto: int) -> None:
    data = pickle.dumps(_graph(600, 3), protocol=proto)
    _same(data)
    _same(data, limits=ModelLimits(max_expansion=1000))
    cut = data[: len(data) // 2]
    _same(cut)


def test_expansion_at_every_limit_around_the_crossing() -> None:
    """A dict that SETITEM grows past the expansion limit: the finding appears exactly where it did."""
    laughs = b"]q\x00" + b"(h\x00h\x00h\x00h\x00h\x00h\x00h\x00h\x00lq\x00" * 5
    for tail in (b"}K\x01h\x00s.", b"}(K\x01h\x00K\x02h\x00u.", b"](h\x00h\x00e.", b"}h\x00K\x01s."):
        data = laughs + tail
        for lim in (*range(37440, 37464), *range(74885, 74910)):  # the tails build 37,451 and ~74,900 elements
            _same(data, limits=ModelLimits(max_expansion=lim))
