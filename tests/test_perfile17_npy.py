""".npy headers in numpy's own canonical form are decided by one regex (``formats._NPY_CANONICAL``) instead of
``ast.literal_eval`` (~50 us each; scipy's test ``.npz`` files hold hundreds). Ground truth is the general
parse: with the fast path switched off, every header (numpy-written, object arrays, structured dtypes, Python 2
long shapes, mangled near-canonical text) must give the same issues and pickle offset."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast.models import formats


def _npy(arr: Any) -> bytes:
    f = io.BytesIO()
    np.save(f, arr, allow_pickle=True)  # written only: nothing here is ever loaded
    return f.getvalue()


def _both(buf: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = formats.npy_header(buf, "a.npy")
    with monkeypatch.context() as m:
        m.setattr(formats, "_NPY_CANONICAL", re.compile(r"(?!)"))  # never matches: the general parse
        slow = formats.npy_header(buf, "a.npy")
    key = [(i.rule_id, i.message) for i in fast[0]], fast[1]
    return key, ([(i.rule_id, i.message) for i in slow[0]], slow[1])


_ARRAYS: list[Any] = [
    np.zeros(3), np.zeros((2, 3), dtype="<i4"), np.zeros((2, 3, 4), order="F"), np.array(5.0), np.zeros(0),
    np.zeros(4, dtype="|b1"), np.zeros(2, dtype="<U7"), np.zeros(2, dtype="|S3"), np.zeros(2, dtype="<M8[ns]"),
    np.zeros(2, dtype="<m8[s]"), np.zeros(3, dtype=">f8"), np.zeros(2, dtype="complex64"),
    np.array([1, "a", None], dtype=object), np.array([[1, 2]], dtype=object),
    np.zeros(2, dtype=[("a", "<i8"), ("b", "O")]), np.zeros(2, dtype=[("a", "<i8"), ("b", "<f4")]),
]


@pytest.mark.parametrize("arr", _ARRAYS, ids=lambda a: str(a.dtype))
def test_numpy_written_headers(arr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _both(_npy(arr), monkeypatch)
    assert fast == slow
    assert (fast[1] >= 0) == arr.dtype.hasobject


def test_object_array_is_still_handed_to_the_pickle_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = _npy(np.array([1, "a"], dtype=object))
    issues, at = formats.npy_header(buf, "a.npy")
    assert issues == [] and at > 0 and buf[at] == 0x80  # the pickle's PROTO opcode
    assert formats._NPY_CANONICAL.match(buf[10:at].decode("latin-1")) is not None  # decided by the fast path


def _header(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw


_BASE = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }          \n"


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_BASE) - 1), st.sampled_from(list("'{}(),: L0O|<x\n\"[]")), st.booleans())
def test_mangled_headers_agree(at: int, ch: str, insert: bool) -> None:
    text = _BASE[:at] + ch + _BASE[at + (0 if insert else 1):]
    with pytest.MonkeyPatch.context() as mp:
        fast, slow = _both(_header(text), mp)
    assert fast == slow, text


@pytest.mark.parametrize("text", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }   \n",  # Python 2
    "{'descr': '|O', 'fortran_order': False, 'shape': (), }\n",
    "{'descr': 'O', 'fortran_order': True, 'shape': (1, 2,), }\n",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'extra': 1, }\n",
    "{'descr': '<f8', 'shape': (3,), }\n",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), } # comment\n",
])
def test_edge_headers_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _both(_header(text), monkeypatch)
    assert fast == slow
