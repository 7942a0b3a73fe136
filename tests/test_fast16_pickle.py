"""The pickle opcode loop's fast path (issue 16): the commonest opcodes (BININT*, BINPUT/LONG_BINPUT,
BINGET/LONG_BINGET) are decoded inline in the *linear* model, and the opcode byte is fetched without
``Reader.read``. The *discard* model still takes the generic branches, and on a stream without FRAME the two
models read the same bytes, so comparing them is a differential test of the fast path against the generic
code: every result (globals, issues, stop offset, STOP, straddles, calls) must be identical."""

from __future__ import annotations

import pickle
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from veritensor_fast.models.base import ModelLimits
from veritensor_fast.models.pickle_scan import PickleWalker
from veritensor_fast.models.pickle_stream import decode_stream


def _both(data: bytes, limits: ModelLimits | None = None) -> tuple[Any, Any]:
    w = PickleWalker(limits=limits)
    out = []
    for discard in (False, True):
        uses, issues, pos, ok, straddles, calls = decode_stream(w, data, 0, len(data), discard=discard, where="f")
        out.append((sorted((k, vars(v) if hasattr(v, "__dict__") else repr(v)) for k, v in uses.items()),
                    [(i.rule_id, i.severity, i.message, i.evidence, i.location) for i in issues],
                    pos, ok, straddles, calls))
    return out[0], out[1]


class _Evil:
    def __reduce__(self) -> Any:
        import os

        return (os.system, ("echo hi",))  # pickled only, never loaded


_OBJS: list[Any] = [
    {"a": 1, "b": [1, 2, 3], "c": (1, 2), "d": {1, 2}, "e": frozenset([3]), "f": b"xx" * 50, "h": 2**100, "i": -5,
     "j": 3.5, "k": "s" * 300, "l": None, "m": True, "n": 70000, "o": -70000, "p": 300},
    [list(range(1000)), {str(i): i for i in range(600)}],
    [(i, "x" * i, b"y" * i) for i in range(300)],
    [_Evil(), {"x": _Evil()}],
]
_shared = [1, 2]
_OBJS.append([_shared, _shared, {"k": _shared}, [_shared] * 300])


def test_fast_path_matches_generic_on_real_streams() -> None:
    rng = random.Random(16)
    n = 0
    for obj in _OBJS:
        for proto in range(4):  # protocols 0-3 write no FRAME
            data = pickle.dumps(obj, protocol=proto)
            variants = [data, *(data[:rng.randrange(len(data))] for _ in range(8))]
            for _ in range(24):
                m = bytearray(data)
                for _ in range(rng.randint(1, 4)):
                    m[rng.randrange(len(m))] = rng.choice([0x4B, 0x4D, 0x4A, 0x71, 0x72, 0x68, 0x6A, 0x28,
                                                           0x7D, 0x73, 0x75, rng.randrange(256)])
                variants.append(bytes(m))
            for v in variants:
                if b"\x95" in v:  # a mutation made a FRAME: the models may differ there, by design
                    continue
                lin, dis = _both(v)
                assert lin == dis, (proto, v[:64])
                n += 1
    assert n > 400


def test_fast_path_reports_the_dangerous_global() -> None:
    lin, dis = _both(pickle.dumps([_Evil()], protocol=2))
    assert lin == dis
    assert any("system" in k for k, _ in lin[0])


def test_fast_path_respects_stack_and_memo_limits() -> None:
    data = pickle.dumps([[i] for i in range(2000)], protocol=2)  # BINPUT, LONG_BINPUT, BININT* throughout
    for lim in (ModelLimits(max_memo=3), ModelLimits(max_stack=4), ModelLimits(max_ops=50)):
        lin, dis = _both(data, lim)
        assert lin == dis
        assert not lin[3] and lin[1]  # stopped at the limit, with an issue saying so


_HOT = [b"K\x05", b"M\x01\x02", b"J\x01\x02\x03\x04", b"q\x00", b"r\x01\x00\x00\x00", b"h\x00",
        b"j\x01\x00\x00\x00", b"(", b"}", b"]", b"s", b"u", b"a", b"e", b"t", b"0", b"2", b"N", b"."]


@given(st.lists(st.sampled_from(_HOT) | st.binary(min_size=1, max_size=3), max_size=40))
def test_fast_path_matches_generic_on_opcode_soup(parts: list[bytes]) -> None:
    data = b"".join(parts).replace(b"\x95", b"N")
    lin, dis = _both(data)
    assert lin == dis


_FRAME_CASES = [  # (what the frame holds before the opcode, opcode, its operand)
    (b"", b"K", b"\x05"), (b"", b"M", b"\x01\x02"), (b"", b"J", b"\x01\x02\x03\x04"),
    (b"N", b"q", b"\x00"), (b"N", b"r", b"\x00\x00\x00\x00"),
    (b"Nq\x00", b"h", b"\x00"), (b"Nq\x00", b"j", b"\x00\x00\x00\x00"),
]


def test_fast_path_records_an_operand_that_straddles_the_frame() -> None:
    """FRAME ends one byte into the operand: the opcode's read runs past the frame (a straddle, reported)."""
    for pre, op, arg in _FRAME_CASES:
        body = pre + op + arg[:-1]
        data = b"\x80\x04\x95" + len(body).to_bytes(8, "little") + body + arg[-1:] + b"."
        uses, issues, pos, ok, straddles, calls = decode_stream(PickleWalker(), data, 0, len(data), discard=False,
                                                                where="f")
        assert straddles == [11 + len(pre) + 1], (op, straddles)
        assert ok and pos == len(data)
        # fitting in the frame: no straddle
        body = pre + op + arg
        fits = b"\x80\x04\x95" + len(body).to_bytes(8, "little") + body + b"."
        assert decode_stream(PickleWalker(), fits, 0, len(fits), discard=False, where="f")[4] == []


def test_fast_path_reads_integer_operands_exactly() -> None:
    """The value of a BININT1/BININT2/BININT operand decides an allocation finding (``bytearray(n)``)."""
    lim = ModelLimits(max_expansion=10)  # an allocation of more than 1,000 elements is reported
    for arg, big in ((b"K\xff", False), (b"M\xff\xff", True), (b"M\xe7\x03", False), (b"M\xe9\x03", True),
                     (b"J\xff\xff\xff\xff", False), (b"J\x00\x00\x01\x00", True)):
        data = b"\x80\x02cbuiltins\nbytearray\n" + arg + b"\x85R."
        for discard in (False, True):
            issues = decode_stream(PickleWalker(limits=lim), data, 0, len(data), discard=discard, where="f")[1]
            assert any(i.rule_id == "model.pickle.dos" for i in issues) == big, (arg, discard)
