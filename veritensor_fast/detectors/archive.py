"""Archive members: secrets inside compressed zip / tar.gz / 7z members and plain gzip files.

Compressed members are decompressed with hard limits (the lenient readers of
``veritensor_fast.models.containers``); stored text members are scanned in place too, because the raw text
pass sees them glued to their header (a token right after the member name has no word boundary). Binary or
oversized stored members (tensor storages of a checkpoint) are left to the raw pass. Each member is scanned
by the same detectors as a file of that name
(a notebook inside a zip is parsed, a ``.yaml`` member gets the Kubernetes decoding, a nested archive is
expanded up to ``MAX_DEPTH``). Model analysis of members is left to the model detector, which already walks
archives. Findings keep the archive's path; ``location.member`` names the member (``outer.zip!inner.tgz!a``)
and ``line``/``column`` are within it.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Finding, Item, ScanError

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Nesting of archives inside archives that is expanded.
MAX_DEPTH = 3
#: Decompressed bytes scanned per member and per top-level archive; beyond that the member is reported in
#: ``errors`` (kind ``limit``) so the scan says it is incomplete.
MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 512 << 20
#: Members listed per archive.
MAX_MEMBERS = 20_000


def archive_kind(head: bytes) -> str | None:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    return None


class ArchiveSecrets:
    name = "archive"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        kind = archive_kind(head)
        if kind is None:
            return
        depth = item.path.count("!") if item.kind == "member" else 0
        if depth >= MAX_DEPTH:
            return
        _Expander(self.ctx, item, scan).run(buf, kind)


class _Expander:
    def __init__(self, ctx: WorkerContext, item: Item, scan: ItemScan) -> None:
        from veritensor_fast.models.base import ModelLimits

        self.ctx = ctx
        self.item = item
        self.scan = scan
        self.left = MAX_TOTAL_BYTES
        self.limits = ModelLimits(max_members=MAX_MEMBERS, max_member_bytes=MAX_MEMBER_BYTES)
        self.prefix = item.path + "!" if item.kind == "member" else ""

    def run(self, buf: Any, kind: str) -> None:
        from veritensor_fast.models.containers import ArchiveError, LimitExceeded

        try:
            if kind == "zip":
                self._zip(buf)
            elif kind == "gzip":
                self._gzip(buf)
            else:
                self._7z(buf)
        except LimitExceeded as exc:
            self.scan.error(f"archive only partly scanned for secrets: {exc}", "limit")
        except ArchiveError as exc:
            self.scan.error(f"archive members could not be read: {exc}", "corrupt")

    def _zip(self, buf: Any) -> None:
        from veritensor_fast.models.containers import ArchiveError, LimitExceeded, zip_members, zip_read

        members, _anomalies = zip_members(buf, self.limits)  # anomalies are the model detector's business
        for m in members:
            if m.is_dir:
                continue
            if m.method == 0:
                if m.csize > MAX_MEMBER_BYTES or b"\x00" in bytes(buf[m.data_start:m.data_start + min(1024, m.csize)]):
                    continue  # binary or huge stored member: the raw text pass covers it
                self._member(m.name, buf[m.data_start:m.data_start + m.csize], stored=True)
                continue
            try:
                data, _ = zip_read(buf, m, min(MAX_MEMBER_BYTES, self.left))
            except (LimitExceeded, ArchiveError) as exc:
                self.scan.error(f"not scanned for secrets: {_reason(exc, m.name)}", "limit")
                continue
            self._member(m.name, data)

    def _gzip(self, buf: Any) -> None:
        from veritensor_fast.models.containers import ArchiveError, LimitExceeded, tar_members

        name = self.item.path.rsplit("/", 1)[-1]
        if name.lower().endswith((".tar.gz", ".tgz")) or _looks_like_tar(buf):
            for mname, _head, read in tar_members(buf, self.limits):
                try:
                    data = read(min(MAX_MEMBER_BYTES, self.left))
                except (LimitExceeded, ArchiveError) as exc:
                    self.scan.error(f"not scanned for secrets: {_reason(exc, mname)}", "limit")
                    continue
                self._member(mname, bytes(data))
            return
        data = _gunzip(buf, min(MAX_MEMBER_BYTES, self.left))
        if data is None:
            self.scan.error(f"gzip content larger than {MAX_MEMBER_BYTES} bytes not scanned for secrets", "limit")
            return
        self._member(name[:-3] if name.lower().endswith(".gz") else name, data)

    def _7z(self, buf: Any) -> None:
        from veritensor_fast.models.containers import sevenzip_members

        for mname, data in sevenzip_members(buf, self.limits):
            self._member(mname, data)

    def _member(self, name: str, data: Any, stored: bool = False) -> None:
        from veritensor_fast.worker import ItemScan

        if not stored:
            self.left -= len(data)
        sub_item = Item("member", self.item.key, self.prefix + name, len(data), self.item.origin)
        sub = ItemScan(self.ctx, sub_item)
        self.ctx.scan_buffer(data, sub_item, sub, skip=("model",))
        where = self.prefix + name
        found = sub.finish(data)  # de-duplicated, inline ignores applied against the member's own lines
        if found:  # the raw pass may have seen the same secret (stored data): keep the member's location only
            fps = {f.fingerprint for f in found}
            self.scan.findings[:] = [f for f in self.scan.findings if f.fingerprint not in fps]
        self.scan.finished.extend(_rehome(f, self.item.path, where) for f in found)
        for e in sub.errors:
            self.scan.errors.append(ScanError(self.item.path, f"member {where!r}: {e.reason}", e.kind))


def _rehome(f: Finding, path: str, member: str) -> Finding:
    loc = dict(f.location or {})
    loc.setdefault("member", member)
    return replace(f, path=path, location=loc)


def _reason(exc: Exception, member: str) -> str:
    msg = str(exc)
    return msg if repr(member) in msg else f"member {member!r}: {msg}"


def _looks_like_tar(buf: Any) -> bool:
    head = _gunzip(buf, 512, partial=True)
    return head is not None and len(head) >= 262 and head[257:262] == b"ustar"


def _gunzip(buf: Any, limit: int, partial: bool = False) -> bytes | None:
    """Decompress a gzip stream up to ``limit`` bytes; ``None`` when it is larger (unless ``partial``)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    pos, n = 0, len(buf)
    try:
        while pos < n and not d.eof:
            chunk = bytes(buf[pos:pos + (1 << 20)])
            pos += len(chunk)
            out += d.decompress(chunk, limit + 1 - len(out))
            while d.unconsumed_tail and len(out) <= limit:
                out += d.decompress(d.unconsumed_tail, limit + 1 - len(out))
            if len(out) > limit:
                return bytes(out[:limit]) if partial else None
    except zlib.error:
        return bytes(out) if partial else None
    return bytes(out)
