"""Shannon entropy of candidate tokens, vectorised with numpy; ``below`` compares tokens with entropy floors
without importing numpy (a scan's only use of it), with numpy's answer wherever rounding could matter.

Entropy is computed on confirmed candidate secrets only: a sliding window over whole buffers is far too slow
(measured 7.7 MB/s) and is never needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from math import log2
from typing import Any

_np: Any = None
#: ``below`` decides in pure Python unless a token's entropy lies this close to its floor. Both computations
#: sum at most 256 terms of relative error ~1e-16 (bits per byte <= 8): they differ by far less than this.
_EPS = 1e-9


def _numpy() -> Any:
    global _np
    if _np is None:  # imported lazily: keeps CLI start-up fast when nothing is found
        import numpy

        _np = numpy
    return _np


def shannon(token: bytes) -> float:
    """Bits per byte of ``token`` (0.0 for an empty token)."""
    return float(shannon_many([token])[0]) if token else 0.0


def shannon_many(tokens: Sequence[bytes]) -> Any:
    """Entropy of each token, as a float64 numpy array, in one vectorised pass."""
    np = _numpy()
    n = len(tokens)
    out = np.zeros(n, dtype=np.float64)
    if n == 0:
        return out
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=n)
    data = np.frombuffer(b"".join(tokens), dtype=np.uint8).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    counts = np.bincount(owner * 256 + data, minlength=n * 256).reshape(n, 256).astype(np.float64)
    safe = np.maximum(lengths, 1).astype(np.float64)[:, None]
    p = counts / safe
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    out = terms.sum(axis=1)
    out[lengths == 0] = 0.0
    return out


def _shannon_py(token: bytes) -> float:
    n = len(token)
    h = 0.0
    for c in Counter(token).values():
        p = c / n
        h -= p * log2(p)
    return h


def below(tokens: Sequence[bytes], floors: Sequence[float | None]) -> list[bool]:
    """Whether each token's entropy is below its floor (``None``: no floor, never below), decided exactly as
    ``shannon_many(tokens)[i] < floors[i]`` decides it. Computed in pure Python: numpy is imported (~0.13 CPU-s,
    measured) only for a token within ``_EPS`` of its floor, where the two roundings could disagree."""
    out: list[bool] = []
    near: list[int] = []
    for i, (tok, floor) in enumerate(zip(tokens, floors, strict=True)):
        if floor is None:
            out.append(False)
            continue
        h = _shannon_py(tok) if tok else 0.0
        if abs(h - floor) <= _EPS:
            near.append(i)
        out.append(h < floor)
    if near:
        exact = shannon_many([tokens[i] for i in near])
        for j, i in enumerate(near):
            out[i] = bool(exact[j] < floors[i])
    return out


def sequential_fraction(token: bytes) -> float:
    """Fraction of adjacent byte pairs that step by +1 or -1 (``abcdef…``, ``987654…`` placeholders)."""
    if len(token) < 2:
        return 0.0
    steps = sum(1 for a, b in zip(token, token[1:], strict=False) if b - a in (1, -1))
    return steps / (len(token) - 1)
