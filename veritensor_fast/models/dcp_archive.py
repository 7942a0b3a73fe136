"""Distributed Checkpoint storage read the way ``dcp.load`` reads it, for the model analyser (``analyzer``).

``FileSystemReader`` ``torch.load``s the (offset, length) slice its ``.metadata`` names in any file of the
checkpoint directory, so such a file's every complete zip archive and every legacy ``torch.save`` stream, at any
offset, is analysed (:func:`slices`): for a file on disk (``models.sniff.DcpDirs``) and for a member of a zip that
packs a checkpoint directory (:func:`folders`, :func:`member`). ``an`` is the calling ``Analyzer``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from veritensor_fast.models import containers
from veritensor_fast.models.base import ModelIssue
from veritensor_fast.models.sniff import is_metadata_name

#: The pickle of torch's legacy magic number: where a legacy ``torch.save`` stream starts.
TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."


def _loc(where: str) -> dict[str, Any] | None:
    return {"member": where} if where else None


def slices(an: Any, buf: Any, name: str, kind: str, depth: int = 0, where: str = "") -> list[ModelIssue]:
    """A Distributed Checkpoint storage file under any name (``models.sniff.DcpDirs``): ``dcp.load`` ``torch.load``s
    the slice its ``.metadata`` names, so every complete zip archive (unless ``_zip`` read them all already)
    and every legacy ``torch.save`` stream (its magic-number pickle) at any offset is analysed."""
    out: list[ModelIssue] = []
    from veritensor_fast.models.analyzer import in_memory  # the analyser imports this module

    lim = an.limits
    if not an._dcp_zipped:
        try:
            found = containers.embedded_archives(buf, set(), lim.max_members)
        except containers.LimitExceeded as exc:
            return [ModelIssue("model.archive.limit", "high", f"zip: {exc}; not analysed", "member limit",
                               _loc(where))]
        for start, end in found:
            out += an._zip_one(buf, name, depth, f"{where}!zip@{start}" if where else f"zip@{start}", end, True)
    at = buf.find(TORCH_MAGIC, 1 if kind in ("pickle", "pickle?") else 0)
    data = in_memory(buf) if at >= 0 else buf
    n = 0
    while at >= 0:
        n += 1
        if n > lim.max_members:
            return out + [ModelIssue("model.archive.limit", "high", f"more than {lim.max_members} legacy "
                                     "torch.save streams inside one file; not analysed", "member limit",
                                     _loc(where))]
        out += an.walker.analyze(data, at, where=f"{where}!pickle@{at}" if where else f"pickle@{at}",
                                   max_streams=5, trailing_is_data=True).issues
        at = buf.find(TORCH_MAGIC, at + 1)
    return out


def member(an: Any, data: Any, mname: str, kind: str, depth: int, where: str) -> list[ModelIssue]:
    """A storage file of a checkpoint directory inside an archive, whatever its name (as on disk,
    ``models.sniff.DcpDirs``): analysed as a member unless it is a zip or nothing, then every complete archive
    and legacy ``torch.save`` stream in it at any offset (``_dcp_slices``)."""
    sub = f"{where}!{mname}" if where else mname
    if depth + 1 > an.limits.max_depth:
        return an._member(data, mname, depth, where)  # the depth finding
    out = [] if kind in ("zip", "none") else an._member(data, mname, depth, where)
    zipped, an._dcp_zipped = an._dcp_zipped, False
    try:
        return out + slices(an, data, mname, kind, depth + 1, sub)
    finally:
        an._dcp_zipped = zipped


def folders(buf: Any, members: list[containers.ZipMember], limit: int) -> set[str]:
    """The folders of a zip holding a ``.metadata``/``__N.metadata`` member that starts as a pickle of protocol 2 or
    later (``models.sniff.holds_metadata`` for a directory on disk)."""
    out: set[str] = set()
    for m in members:
        if m.is_dir or not is_metadata_name(posixpath.basename(m.name)):
            continue
        try:
            head = bytes(containers.zip_read(buf, m, limit, head_only=True)[0][:2])
        except (containers.LimitExceeded, containers.ArchiveError):
            continue
        if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            out.add(posixpath.dirname(m.name))
    return out
