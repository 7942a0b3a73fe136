"""PyTorch's storage references and tensor rebuilds in the pickle walker (``pickle_stream``): what a tensor's
literal arguments say about memory (CVE-2026-24747, GHSA-63cw-57p8-fm3p).

``torch.load(weights_only=True)`` before 2.10 built a tensor on its storage from the rebuild call's arguments
(``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...)``) without checking that the
elements reach no further than the storage's element count (the ``numel`` of the storage's persistent id
``('storage', type, key, location, numel)``), and applied ``SETITEM``/``SETITEMS`` to whatever was on the stack, a
tensor too: heap corruption, possibly code execution. ``torch.save`` never writes either: a tensor (or view)
lies inside its storage, and a pickler sets items only on mappings. Both are decided exactly, from literals only:
a storage whose element count, or an offset, size or stride, is no literal integer is never judged.
"""

from __future__ import annotations

from typing import Any

from veritensor_fast.models.base import ModelIssue
from veritensor_fast.models.pickle_issues import loc
from veritensor_fast.models.pickle_values import Call, Global, Opaque

RULE = "model.pickle.memory-corruption"
#: The rebuild functions whose first four arguments are (storage, storage_offset, size, stride).
_STRIDED = frozenset(("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"))
_ADVISORY = "torch.load(weights_only=True) before 2.10 corrupts memory (CVE-2026-24747)"


class StorageRef(Opaque):
    """A storage's persistent id with a literal element count."""

    __slots__ = ("numel",)

    def __init__(self, numel: int) -> None:
        self.what = "persistent id"
        self.numel = numel


def persistent_id(pid: Any) -> Opaque:
    """The walker's value for a BINPERSID of ``pid``: a :class:`StorageRef` when ``pid`` is a torch storage id
    (a plain tuple: ``pickle_values.tup`` keeps one of scalars as such)."""
    if type(pid) is tuple and (len(pid) == 5 or len(pid) == 6 and pid[5] is None) and pid[0] == "storage" \
            and type(pid[4]) is int:  # (legacy torch.save: a sixth item, the view's metadata, None for a whole one)
        return StorageRef(pid[4])
    return Opaque("persistent id")


def rebuild_issue(func: Global, args: Any, at: int, where: str) -> ModelIssue | None:
    """The finding of a strided tensor rebuild whose literal offset, size and stride reach past (or before) its
    storage's literal element count, else None (sizes and strides of integers are plain tuples: ``tup``)."""
    if func.name not in _STRIDED or not isinstance(args, tuple) or len(args) < 4:
        return None
    storage, offset, size, stride = args[:4]
    if type(storage) is not StorageRef or type(offset) is not int or type(size) is not tuple \
            or type(stride) is not tuple:
        return None
    if len(size) != len(stride):
        return _issue(f"a tensor of {len(size)} dimensions with {len(stride)} strides", at, where)
    reach = offset
    bad = offset < 0
    for n, st in zip(size, stride, strict=True):
        if type(n) is not int or type(st) is not int:
            return None
        if n <= 0 or st < 0:
            if n == 0 and not bad:
                return None  # an empty tensor reads nothing
            bad = True
        reach += (n - 1) * st
    if bad:
        return _issue(f"a tensor with a negative offset, size or stride ({offset}, {size}, {stride})", at, where)
    if reach < storage.numel:
        return None
    return _issue(f"a tensor that reaches element {reach + 1:,} of a storage of {storage.numel:,} elements "
                  f"(offset {offset}, size {size}, stride {stride})", at, where)


def setitem_issue(tgt: Any, at: int, where: str) -> ModelIssue | None:
    """The finding of SETITEM/SETITEMS applied to a rebuilt tensor (never a mapping), else None."""
    if type(tgt) is not Call or type(tgt.func) is not Global or tgt.func.module != "torch._utils" \
            or not tgt.func.name.startswith("_rebuild_"):
        return None
    return _issue(f"SETITEM on the tensor {tgt.func.name} returns", at, where)


def _issue(what: str, at: int, where: str) -> ModelIssue:
    return ModelIssue(RULE, "critical", f"pickle builds {what}: {_ADVISORY}", "memory corruption", loc(where, at))
