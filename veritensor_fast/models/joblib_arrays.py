"""joblib's inline numpy arrays: where the raw bytes that ``joblib.dump`` writes into the pickle stream end.

``joblib.dump`` pickles a ``NumpyArrayWrapper`` (state: shape, order, dtype, allow_mmap and, since joblib 1.2,
numpy_array_alignment_bytes) and writes the array right after the wrapper's BUILD opcode, outside the pickle
format: with alignment, one byte giving a padding length and that many padding bytes, then prod(shape) x
itemsize raw bytes; for a dtype holding Python objects, a nested pickle stream instead. ``layout`` reads the
same fields joblib's ``NumpyArrayWrapper.read_array`` reads, so the walker skips exactly what joblib skips and
goes on analysing what follows. Older headers (``NDArrayWrapper``, ``ZNDArrayWrapper``) keep their arrays in
separate files: nothing inline to skip.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from veritensor_fast.models.pickle_values import Call, Dict, Global

#: Wrappers whose array bytes follow inline.
INLINE: frozenset[tuple[str, str]] = frozenset({
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
})
#: Wrappers whose array is a separate file next to the pickle (``np.load(path, allow_pickle=True)``).
EXTERNAL: frozenset[tuple[str, str]] = frozenset(
    (m, c) for m in ("joblib.numpy_pickle", "joblib.numpy_pickle_compat") for c in ("NDArrayWrapper", "ZNDArrayWrapper"))
_DESCR = re.compile(r"[<>|=]?([A-Za-z]+)(\d*)")
_NUMPY_DTYPE = frozenset({("numpy", "dtype"), ("numpy.core.multiarray", "dtype"), ("numpy._core.multiarray", "dtype")})


@dataclass(frozen=True)
class Layout:
    nbytes: int  # raw array bytes (0 when ``nested_pickle``)
    aligned: bool  # a padding-length byte (and padding) precedes them
    nested_pickle: bool  # object dtype: a pickle stream follows instead


def is_inline_wrapper(v: Any) -> bool:
    return isinstance(v, Call) and isinstance(v.func, Global) and (v.func.module, v.func.name) in INLINE


def _dtype(v: Any) -> tuple[int, bool] | str:
    """(itemsize, holds objects) of a pickled ``numpy.dtype(descr, False, True)`` + BUILD state."""
    if not (isinstance(v, Call) and isinstance(v.func, Global) and (v.func.module, v.func.name) in _NUMPY_DTYPE):
        return "dtype is not a numpy.dtype call"
    if not v.args or not isinstance(v.args[0], str):
        return "dtype descriptor is not a string"
    m = _DESCR.fullmatch(v.args[0])
    if not m:
        return f"dtype descriptor {v.args[0][:20]!r} not understood"
    kind, digits = m.group(1), m.group(2)
    st = v.state if isinstance(v.state, tuple) else ()
    flags = st[7] if len(st) > 7 and isinstance(st[7], int) else 0
    hasobject = kind == "O" or bool(flags & 1)
    elsize = st[5] if len(st) > 5 and isinstance(st[5], int) and not isinstance(st[5], bool) else -1
    if elsize > 0:
        return elsize, hasobject
    if not digits:
        return f"dtype descriptor {v.args[0][:20]!r} has no size"
    return int(digits) * (4 if kind == "U" else 1), hasobject


def layout(state: Any) -> Layout | str:
    """What follows a wrapper's BUILD, or why that cannot be known (then joblib itself would fail to load)."""
    if not isinstance(state, Dict):
        return "wrapper state is not a dict"
    st = state.items
    shape, dt = st.get("shape"), st.get("dtype")
    if not isinstance(shape, tuple) or len(shape) > 64 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        return "shape is not a tuple of sizes"
    info = _dtype(dt)
    if isinstance(info, str):
        return info
    itemsize, hasobject = info
    align = st.get("numpy_array_alignment_bytes")
    if hasobject:
        return Layout(0, False, True)
    return Layout(math.prod(shape) * itemsize, align is not None, False)


def external_file(v: Any, state: Any) -> str | None:
    """The file an old-style wrapper makes joblib load when it lies outside the pickle's directory, else None."""
    if not (isinstance(v, Call) and isinstance(v.func, Global) and (v.func.module, v.func.name) in EXTERNAL
            and isinstance(state, Dict)):
        return None
    name = state.items.get("filename")
    if not isinstance(name, str):
        return None
    parts = re.split(r"[\\/]", name)
    if name[:1] in ("/", "\\") or re.match(r"[A-Za-z]:", name) or ".." in parts:
        return name
    return None
