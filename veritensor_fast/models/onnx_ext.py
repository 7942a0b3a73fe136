"""ONNX external data that a loader would read (or write) outside the model's directory.

A ``TensorProto`` whose ``data_location`` is ``EXTERNAL`` keeps its bytes in a file named by its ``external_data``
entry ``location``, relative to the model's directory. A location that is absolute or climbs out with ``..``
makes a loader that joins the two itself read any file the user can read into the model (``onnx`` before 1.16,
CVE-2024-27318, after CVE-2022-25882's incomplete fix; a converter or runtime that resolves the path on its own),
and ``onnx.save`` / ``convert_model_to_external_data`` of such a model write there. ``onnx`` 1.16 and later refuse
to load it (``ValidationError``); nothing a producer writes looks like that.

The protobuf is walked without ``onnx`` or ``protobuf`` (neither is a dependency, and neither is needed to read
five message types): ``ModelProto`` -> ``graph``, ``functions``, ``training_info`` -> ``GraphProto`` ->
``initializer``, ``sparse_initializer``, every node's attributes (``t``, ``g``, ``tensors``, ``graphs``, sparse
tensors: subgraphs of ``If``/``Loop``/``Scan`` at any depth) -> ``TensorProto.external_data``. Tensor bytes are
skipped by their length; the walk is bounded in depth and in fields read, and never follows a path it reads.
"""

from __future__ import annotations

import re
from typing import Any

from veritensor_fast.models.base import ModelIssue, shown_path

MAX_DEPTH = 64
MAX_FIELDS = 5_000_000


class _Stop(Exception):
    pass


# message kind -> {field number: child kind}; only length-delimited fields that lead to a TensorProto
_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _FUNC, _TRAIN, _ENTRY = range(9)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAIN, 25: _FUNC},
    _TRAIN: {1: _GRAPH, 2: _GRAPH},
    _FUNC: {7: _NODE},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _TENSOR: {13: _ENTRY},
}

_DRIVE = re.compile(r"^[A-Za-z]:")


def escapes(location: str) -> str | None:
    """Why ``location`` reaches outside the model's directory, or None."""
    if location.startswith(("/", "\\")) or _DRIVE.match(location):
        return "an absolute path"
    if any(part == ".." for part in re.split(r"[/\\]", location)):
        return "a path that climbs out with '..'"
    return None


def external_data_issues(buf: Any, where: str) -> list[ModelIssue]:
    """A finding for each tensor whose external data ``location`` leaves the model's directory."""
    out: list[ModelIssue] = []
    seen: set[str] = set()
    budget = [MAX_FIELDS]
    view = memoryview(buf) if isinstance(buf, bytes | bytearray) else buf
    try:
        _walk(view, 0, len(buf), _MODEL, 0, budget, out, seen, where)
    except _Stop as exc:
        if out or str(exc) == "limit":
            out.append(ModelIssue("model.onnx.invalid", "high", f"ONNX model not fully analysed: {exc}",
                                  "onnx", {"member": where} if where else None))
    return out


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Stop("a varint runs past its message")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _walk(buf: Any, pos: int, end: int, kind: int, depth: int, budget: list[int], out: list[ModelIssue],
          seen: set[str], where: str) -> None:
    if depth > MAX_DEPTH:
        raise _Stop("limit")
    children = _CHILDREN.get(kind, {})
    key = value = None
    while pos < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Stop("limit")
        tag, pos = _varint(buf, pos, end)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise _Stop("a field runs past its message")
            child = children.get(field)
            if kind == _ENTRY and field in (1, 2):
                text = bytes(buf[pos:pos + min(n, 4096)]).decode("utf-8", "replace")
                key, value = (text, value) if field == 1 else (key, text)
            elif child is not None:
                _walk(buf, pos, pos + n, child, depth + 1, budget, out, seen, where)
            pos += n
        else:
            raise _Stop(f"wire type {wire} is not protobuf")
        if pos > end:
            raise _Stop("a field runs past its message")
    if kind == _ENTRY and key == "location" and value is not None and value not in seen:
        why = escapes(value)
        if why:
            seen.add(value)
            shown = shown_path(value)
            out.append(ModelIssue(
                "model.onnx.external-path", "high",
                f"ONNX tensor external data location {shown!r} is {why}: a loader that joins it to the model's "
                "directory reads (or onnx.save writes) a file outside it (CVE-2024-27318; onnx >= 1.16 refuses it)",
                shown, {"member": where, "external": shown} if where else {"external": shown}))
