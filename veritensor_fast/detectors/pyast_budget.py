"""The memory budget of one ``ast.parse``, decided before parsing from what is cheap to count.

``ast.parse`` holds every token, the C parser's tree and then one Python object per node (with its
``__dict__``) at once: its peak grows with the number of tokens, not with the file's size. Ordinary code costs
40-200 bytes per source byte (a 1.4 MB test module of torch: 100 MB), but dense, hostile code costs far more:
a 1 MB file of ``a\\n`` lines peaks at 880 MB, so a 5 MiB file (inside ``pyast.MAX_SOURCE``) could drive a
worker to about 4.6 GB.

:func:`parse_units` is an upper bound on the tokens (C speed: one ``translate`` and three ``count``): every
byte that is neither a word byte (``[A-Za-z0-9_]``, non-ASCII) nor a blank (space, tab, form feed) counts
(operators, brackets, quotes, line breaks), and so does the start of every word. Each unit was measured to
cost at most ~922 bytes of peak (``a\\n`` lines and ``a;``; 24 shapes, 1 MB each, ``ru_maxrss`` in a fresh
process) when the source parses, and up to ~1,632 when it ends in a syntax error: CPython then parses the whole
source a second time with its error rules on, keeping more per token (``a\\n`` lines then ``a a``; 34 shapes
with an error at the end); :data:`UNIT_COST` rounds that up. A source whose ``parse_units * UNIT_COST`` exceeds the budget is not
parsed: the text and encoded passes still scan it, and the skipped AST pass is reported as a ``limit`` error.
``units <= len(source)``, so a source of at most ``budget // UNIT_COST`` bytes (384 KiB by default: the default
budget is 384 Ki units of 1,664 bytes, 624 MiB) is never counted. The estimate over-counts words inside strings and comments (ordinary code: ~0.2-0.4 units per byte),
so an ordinary module up to about 1-1.5 MiB of source stays under the default budget.
"""

from __future__ import annotations

import ast
import gc
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from veritensor_fast.findings import OUT_OF_MEMORY

#: Default per-worker budget of one parse (bytes above the worker's own use); ``VERITENSOR_FAST_AST_BUDGET``
#: (bytes) overrides it.
DEFAULT_BUDGET = 624 << 20
#: Peak bytes per unit of :func:`parse_units` (worst measured: 922 for a source that parses, 1,632 for one that
#: ends in a syntax error, which CPython parses twice), rounded up.
UNIT_COST = 1664

_T = bytearray(b"." * 256)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _T[_c] = ord("a")
for _c in range(0x80, 0x100):
    _T[_c] = ord("a")
for _c in b" \t\f":
    _T[_c] = ord(" ")
_TABLE = bytes(_T)
del _T, _c


def budget() -> int:
    """The parse budget in bytes (at least 1 MiB)."""
    try:
        return max(1 << 20, int(os.environ.get("VERITENSOR_FAST_AST_BUDGET", DEFAULT_BUDGET)))
    except ValueError:
        return DEFAULT_BUDGET


def translate(source: Any) -> bytes:
    """``source`` (bytes-like) with each byte mapped to its class: ``a`` a word byte, a space a blank, ``.`` any
    other (what :func:`units_between` counts)."""
    return bytes(source).translate(_TABLE)


def units_between(t: bytes, start: int, end: int) -> int:
    """:func:`parse_units` of ``source[start:end]``, from ``t = translate(source)`` (no copy of the slice)."""
    return (t.count(b".", start, end) + t.count(b" a", start, end) + t.count(b".a", start, end)
            + (t[start:start + 1] == b"a") + 1)


def parse_units(source: Any) -> int:
    """Upper bound on the tokens of ``source`` (bytes-like): punctuation and line-break bytes plus word starts."""
    return units_between(translate(source), 0, len(source))  # + 1: the last NEWLINE


def parse_cost(source: Any, limit: int | None = None) -> int:
    """Estimated peak bytes of parsing ``source``; 0 when it is too short to matter (not counted) under the budget
    (``limit``, default :func:`budget`)."""
    if len(source) * UNIT_COST <= (budget() if limit is None else limit):
        return 0
    return parse_units(source) * UNIT_COST


def over_budget_reason(source: Any, limit: int | None = None) -> str | None:
    """Why ``source`` is not parsed whole (its estimated peak is over the budget: ``limit``, default :func:`budget`),
    or ``None`` when it fits."""
    b = budget() if limit is None else limit
    cost = parse_cost(source, b)
    if cost <= b:
        return None
    return (f"Python source too dense to parse within the AST memory budget (~{cost >> 20} MiB estimated, "
            f"budget {b >> 20} MiB; VERITENSOR_FAST_AST_BUDGET): the Python-AST pass skipped it, the text and "
            "encoded passes scanned it")


#: One ``ast.parse`` at a time per process. CPython 3.11 keeps the AST converter's recursion depth in
#: interpreter-wide state: two threads converting at once (a Dask worker's threads; the GIL can switch inside
#: a gc callback) fail with "SystemError: AST constructor recursion depth mismatch". ``catch_warnings`` is
#: not thread-safe either.
_PARSE_LOCK = threading.Lock()


def parse_python(source: str | bytes) -> ast.Module | None:
    """``ast.parse`` that returns ``None`` for anything that is not valid Python (nesting too deep included); raises
    ``MemoryError`` only when the parse ran out of memory (:func:`pyast_budget.parse_starved`)."""
    try:
        with _PARSE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in scanned code
            return ast.parse(source)
    except MemoryError:
        if parse_starved(source):
            raise MemoryError(f"{OUT_OF_MEMORY} parsing Python source") from None
        return None
    except (SyntaxError, ValueError, RecursionError, OverflowError):
        return None


def parse_starved(source: str | bytes) -> bool:
    """Whether a ``MemoryError`` that parsing ``source`` just raised was an allocation that failed: there is no
    room now (``memroom.room``) for the parse's estimated peak (``parse_units * UNIT_COST``, an upper bound). With
    that room free the parse would have fit, so the error was CPython's parser refusing hostile nesting (CPython
    3.11 raises a bare ``MemoryError`` past ~6,000 levels: ``-`` * 10,000 + ``1``): the source is then no Python
    it can parse, not a scan that ran out of memory. Without an address-space limit there is nothing to check
    (``memroom.GUARDED``): a failed allocation is the OOM killer's, never a ``MemoryError``."""
    from veritensor_fast import memroom

    if not memroom.GUARDED:
        return False
    raw = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
    return not memroom.has_room(parse_units(raw) * UNIT_COST)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off while a tree is built, walked and dropped: an AST holds no cycle (refcounting
    frees it), but building one allocates a container per node, and collections during that time, then of the
    whole tree, cost ~40 % of parsing a module of many small statements. Nested uses leave it to the outer one."""
    collect = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collect:
            gc.enable()
