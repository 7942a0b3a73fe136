"""``builtins.getattr`` in a pickle, judged by what it is applied to rather than by its presence.

Pickle writes every bound method and method descriptor as ``getattr(<class>, "<name>")`` (``method.__reduce__``):
a timezone-aware pandas column or ``datetime`` holds ``getattr(zoneinfo.ZoneInfo, "_unpickle")``. A REDUCE that
calls the getattr global with exactly (a global resolved from the stream itself, a literal identifier that does
not start with ``__``) yields the global ``<module>.<qualname>.<name>``: what protocol 4's STACK_GLOBAL of a dotted
qualname yields, and it is judged like one (allowlist, denylist, ``--allow-global``).

Everything else stays the CRITICAL ``builtins.getattr`` finding (fail closed): the walker counts every time a
getattr value is put on the stack (its GLOBAL, STACK_GLOBAL or INST, each GET of it from the memo, each DUP) and
every time one is consumed by such a REDUCE; unless the two counts match, some getattr value was passed as an
argument, stored in a container, given to BUILD, returned, dropped, called by INST/OBJ/NEWOBJ, called with a
non-literal or dunder name, or applied to a call result (an instance) or to another getattr's result.
"""

from __future__ import annotations

from typing import Any

from veritensor_fast.models.pickle_issues import GlobalUse
from veritensor_fast.models.pickle_values import Global


class Derived(Global):
    """The result of ``getattr(<global>, "<name>")``: a global itself, but never the target of another getattr."""

    __slots__ = ()


class GetattrCount:
    """Per stream: getattr values put on the stack (``pushes``) and those consumed by a reviewed REDUCE."""

    __slots__ = ("pushes", "judged")

    def __init__(self) -> None:
        self.pushes = 0
        self.judged = 0


def is_getattr(v: Any) -> bool:
    """Whether ``v`` is the (resolved) ``builtins.getattr`` global."""
    return type(v) is Global and v.name == "getattr" and v.module == "builtins" and v.resolved


def target(args: Any) -> Derived | None:
    """The global that ``getattr(*args)`` yields when args are (a global of the stream, a plain literal name)."""
    if type(args) is not tuple or len(args) != 2:
        return None
    owner, name = args
    if type(owner) is not Global or not owner.resolved or type(name) is not str:
        return None
    if not name.isidentifier() or name.startswith("__"):
        return None
    return Derived(owner.module, f"{owner.name}.{name}")


def settle(count: GetattrCount, uses: dict[str, GlobalUse]) -> None:
    """At the end of a stream: drop the getattr finding if every getattr value went to a reviewed REDUCE."""
    if count.pushes and count.judged == count.pushes:
        for k in [k for k, u in uses.items() if u.module == "builtins" and u.name == "getattr"]:
            del uses[k]
