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


#: Bytes per element of each storage class ``torch.save`` names in a persistent id (torch 2.13: every dtype's
#: ``TypedStorage._pickle_storage_type()`` and ``torch._utils._element_size``; dtypes without a typed storage
#: class, float8 and the like, are written as ``torch.storage.UntypedStorage`` with a count of bytes).
_ITEMSIZE = {
    "BFloat16Storage": 2, "BoolStorage": 1, "ByteStorage": 1, "CharStorage": 1, "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8, "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "IntStorage": 4,
    "LongStorage": 8, "QInt32Storage": 4, "QInt8Storage": 1, "QUInt2x4Storage": 1, "QUInt4x2Storage": 1,
    "QUInt8Storage": 1, "ShortStorage": 2, "UntypedStorage": 1,
}
#: Storages of one pickle remembered for :func:`short_records` at most (then the rest are not judged).
MAX_STORAGES = 100_000


def persistent_id(pid: Any, seen: dict[str, int] | None = None) -> Opaque:
    """The walker's value for a BINPERSID of ``pid``: a :class:`StorageRef` when ``pid`` is a torch storage id
    (a plain tuple: ``pickle_values.tup`` keeps one of scalars as such). With ``seen``, the bytes a zip
    checkpoint's storage ``key`` must hold (``numel`` times its class's element size) are recorded there."""
    if type(pid) is tuple and (len(pid) == 5 or len(pid) == 6 and pid[5] is None) and pid[0] == "storage" \
            and type(pid[4]) is int:  # (legacy torch.save: a sixth item, the view's metadata, None for a whole one)
        if seen is not None and type(pid[2]) in (str, int) and type(pid[1]) is Global and len(seen) < MAX_STORAGES:
            # torch reads the record ``data/{key}`` (an int key too) with the class's dtype, whatever its module
            # (``torch.cuda.FloatStorage``): a class of no known size counts one byte an element, a lower bound
            key = str(pid[2])
            seen[key] = max(seen.get(key, 0), pid[4] * _ITEMSIZE.get(pid[1].name, 1))
        return StorageRef(pid[4])
    return Opaque("persistent id")


def short_records(pkl: str, seen: dict[str, int], sizes: dict[str, int], where: str) -> list[ModelIssue]:
    """A finding for each storage of the zip checkpoint's pickle member ``pkl`` (``<archive>/data.pkl``) whose
    record ``<archive>/data/<key>`` (``sizes``: member name -> uncompressed size) holds fewer bytes than its
    persistent id declares (``seen``, from :func:`persistent_id`). ``torch.load`` before 2.10 built the storage
    with the declared size over the record's buffer (reads and writes past it); 2.10 and later refuse the file
    ("record size ... does not match expected size"). A missing record is no finding (every torch refuses it)."""
    prefix = pkl[:-len("data.pkl")]
    out: list[ModelIssue] = []
    for key, nbytes in seen.items():
        name = f"{prefix}data/{key}"
        have = sizes.get(name, -1)
        if 0 <= have < nbytes:
            sub = f"{where}!{name}" if where else name
            out.append(ModelIssue(RULE, "critical", f"pickle declares a storage of {nbytes:,} bytes on the record "
                                  f"{name!r} of {have:,} bytes: {_ADVISORY}", "memory corruption", {"member": sub}))
    return out


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
