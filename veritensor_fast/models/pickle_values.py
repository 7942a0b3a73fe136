"""Symbolic values of the pickle walker (``pickle_scan``): what the stack and memo hold instead of objects.

Containers remember their *expanded size* ``n`` (elements counted as if every shared reference were copied),
so a memo/``DUP`` expansion ("billion laughs": a few opcodes, a structure of 2**30 elements that hashing,
comparing or copying walks in full) is measurable. Dicts keep up to ``KEEP`` string-keyed entries and tuples
their first ``KEEP`` items: enough to read the state of a joblib array header.
"""

from __future__ import annotations

from typing import Any

KEEP = 64
CAP = 1 << 62


class Opaque:
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


class Global:
    __slots__ = ("module", "name", "key", "resolved")

    def __init__(self, module: str, name: str, resolved: bool = True) -> None:
        self.module = module
        self.name = name
        self.key = f"{module}.{name}" if resolved else "<unresolved>"
        self.resolved = resolved


class Call:
    """The result of calling ``func``; ``args``/``state`` are kept for the few calls whose result matters."""

    __slots__ = ("func", "value", "args", "state")

    def __init__(self, func: Any, value: Any = None, args: tuple[Any, ...] = ()) -> None:
        self.func = func
        self.value = value
        self.args = args
        self.state: Any = None


class Bytes:
    __slots__ = ("a", "b")

    def __init__(self, a: int, b: int) -> None:
        self.a = a
        self.b = b


class Tup(tuple):
    """A tuple of the first ``KEEP`` items with the expanded size of all of them in ``n``."""

    n: int


class List:
    """A list, set or frozenset: only its expanded size is kept."""

    __slots__ = ("n",)

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def add(self, items: list[Any] | tuple[Any, ...]) -> None:
        self.n = grown(self.n, items)


class Dict:
    """A dict: its expanded size and its first ``KEEP`` entries with string keys."""

    __slots__ = ("n", "items")

    def __init__(self) -> None:
        self.n = 1
        self.items: dict[str, Any] = {}

    def add(self, pairs: list[Any]) -> None:
        self.n = grown(self.n, pairs)
        if len(self.items) < KEEP and str in map(type, pairs[0:min(len(pairs) - 1, 2 * KEEP):2]):
            for i in range(0, min(len(pairs) - 1, 2 * KEEP), 2):
                k = pairs[i]
                if type(k) is str and len(self.items) < KEEP:
                    self.items[k] = pairs[i + 1]

    def set(self, k: Any, v: Any) -> None:
        """``add([k, v])`` (SETITEM, the commonest dict opcode) without the list and the loops."""
        n = self.n + 2
        t = type(k)
        if t is Tup or t is List or t is Dict:
            n += k.n - 1
        t = type(v)
        if t is Tup or t is List or t is Dict:
            n += v.n - 1
        self.n = n if n < CAP else CAP
        if type(k) is str and len(self.items) < KEEP:
            self.items[k] = v


SIZED = frozenset({Tup, List, Dict})  # the values that carry an expanded size ``n``


def grown(n: int, items: list[Any] | tuple[Any, ...]) -> int:
    """A container's expanded size ``n`` after ``items`` are added: one each, plus what every ``Tup``, ``List``
    or ``Dict`` among them expands to beyond one (capped at ``CAP``)."""
    n += len(items)
    if not SIZED.isdisjoint(map(type, items)):  # (a C-level test: most items are no container)
        for v in items:
            if type(v) in SIZED:
                n += v.n - 1
    return n if n < CAP else CAP


def tup(items: list[Any] | tuple[Any, ...]) -> Any:
    """A plain tuple when no item is a container (its size is ``1 + len``), else a ``Tup`` with its size."""
    n = 1 + len(items)
    composite = False
    for v in items:
        t = type(v)
        if t is Tup or t is List or t is Dict:
            n += v.n - 1
            composite = True
        elif t is tuple:
            n += len(v)
            composite = True
    if not composite:
        return tuple(items[:KEEP])
    r = Tup(items[:KEEP])
    r.n = min(CAP, n)
    return r


def size(v: Any) -> int:
    t = type(v)
    if t is Tup or t is List or t is Dict:
        return int(v.n)
    if t is tuple:
        return 1 + len(v)
    return 1


def desc(v: Any) -> str:
    if isinstance(v, str):
        return repr(v[:40])
    if isinstance(v, Global):
        return f"global {v.key}"
    if isinstance(v, Call):
        return "call result"
    if isinstance(v, Opaque):
        return v.what
    if isinstance(v, Bytes):
        return "bytes"
    if isinstance(v, List | Dict):
        return "container"
    return type(v).__name__
