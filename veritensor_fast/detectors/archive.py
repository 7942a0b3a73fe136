"""Archive members: secrets inside zip / tar / 7z members and compressed files (gzip, bzip2, xz, zstd, lz4, zlib).

Everything compressed is read through the shared bounded layer (``veritensor_fast.decompress``): one
decompression budget per top-level file pays for every level of nesting, so a bomb, a 42.zip-style nest or a zip
whose entries overlap stops at the budget with an ``errors`` entry (kind ``limit``) instead of exhausting memory
or time. Nothing left unscanned because of a limit is silent. Archives are recognised by content, not by name.

Stored zip members are scanned in place too, because the raw text pass sees them glued to their header (a
token right after the member name has no word boundary); binary or oversized stored members (tensor storages of
a checkpoint) are left to the raw pass unless they are archives themselves. Member names are scanned as well. Each
member is scanned by the same detectors as a file of that name (a notebook inside a zip is parsed, a ``.yaml``
member gets the Kubernetes decoding, a nested archive is expanded). A member over ``MAX_MEMBER_BYTES`` is scanned
up to that size and reported. Model analysis of members is left to the model detector, which already walks
archives. Findings keep the archive's path; ``location.member`` names the member (``outer.zip!inner.tgz!a``) and
``line``/``column`` are within it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from veritensor_fast import decompress
from veritensor_fast.decompress import ArchiveError, BudgetExhausted, LimitExceeded
from veritensor_fast.findings import Finding, Item, ScanError
from veritensor_fast.models.sniff import compression_of

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Nesting that is expanded at all (the budget bounds the work; this only stops a stored archive that holds
#: itself). Deeper archives are reported in ``errors`` (kind ``limit``).
MAX_DEPTH = 16
#: Decompressed bytes of one member that are scanned; the rest of a bigger member is reported (kind ``limit``).
MAX_MEMBER_BYTES = 64 << 20
#: Members listed per archive.
MAX_MEMBERS = 20_000
_NAMES = "(member names)"


def archive_kind(head: bytes) -> str | None:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x06\x06"):
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[257:262] == b"ustar":
        return "tar"
    return "compressed" if compression_of(head) is not None else None


#: The first bytes of every head :func:`archive_kind` names: zip, 7z, and each codec of ``compression_of``.
_KIND_FIRST = frozenset(b"P7\x1f\x42\xfd\x28\x04\x78\x5d")


def zip_end(buf: Any) -> bool:
    """Whether ``buf`` ends with a zip's end record (without a comment): a zip after a prefix, such as a Python
    zipapp (``#!/usr/bin/env python3`` then the zip), a PEX or a self-extracting script. One 4-byte compare."""
    n = len(buf)
    return n >= 22 and bytes(buf[n - 22:n - 18]) == _EOCD


_EOCD = b"PK\x05\x06"


def _prefixed_zip(buf: Any, limits: Any) -> bool:
    """Whether a file whose head is no archive but :func:`zip_end` holds is a zip a reader opens (its central
    directory parses and lists a member); anything else is no archive (no error for it)."""
    from veritensor_fast.models.containers import zip_members

    try:
        members, _ = zip_members(buf, limits, all_entries=True)
    except MemoryError:  # no room to list it: an out-of-memory error (the worker's), not "no archive" (silent)
        raise
    except Exception:  # noqa: BLE001 - bytes that only look like an end record: not an archive
        return False
    return bool(members)


class ArchiveSecrets:
    name = "archive"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def quiet_test(self) -> Any:
        """The batch gate's question (``batch_gate``): :meth:`quiet`."""
        return self.quiet

    @staticmethod
    def quiet(item: Item, data: bytes, head: bytes) -> bool:
        """True when ``data`` is no archive or compressed stream (:meth:`scan` returns at once)."""
        return archive_kind(head) is None and not zip_end(data)

    @staticmethod
    def quiet_batch(items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        """:meth:`quiet` for each item of a batch, in one call (``batch_gate``): a head whose first byte starts no
        magic and without ``ustar`` at 257 is no archive, without calling :func:`archive_kind`."""
        first, eocd = _KIND_FIRST, _EOCD
        # ``d[-22:-18] != eocd``: :func:`zip_end` inline (under 22 bytes the slice is shorter than the record)
        return [((not h or h[0] not in first) and not h.startswith(b"ustar", 257) or archive_kind(h) is None)
                and d[-22:-18] != eocd for h, d in zip(heads, datas, strict=True)]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        kind = archive_kind(head)
        if kind is None:
            if not zip_end(buf):
                return
            from veritensor_fast.models.base import ModelLimits

            if not _prefixed_zip(buf, ModelLimits(max_members=MAX_MEMBERS, max_member_bytes=MAX_MEMBER_BYTES)):
                return
            kind = "zip"  # a zip after a prefix: its members are as hidden from the raw pass as any zip's
        depth = item.path.count("!") if item.kind == "member" else 0
        if depth >= MAX_DEPTH:
            scan.error(f"archive nested more than {MAX_DEPTH} levels deep not expanded", "limit")
            return
        _Expander(self.ctx, item, scan, buf if item.kind != "member" else None).run(buf, kind)


class _Expander:
    def __init__(self, ctx: WorkerContext, item: Item, scan: ItemScan, top: Any = None) -> None:
        from veritensor_fast.models.base import ModelLimits

        self.ctx = ctx
        self.item = item
        self.scan = scan
        self.budget = decompress.for_scan(scan, "secrets", top)  # ``top``: reads shared with model analysis
        self.limits = ModelLimits(max_members=MAX_MEMBERS, max_member_bytes=MAX_MEMBER_BYTES)
        self.prefix = item.path + "!" if item.kind == "member" else ""
        self.name = item.path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]

    def run(self, buf: Any, kind: str) -> None:
        try:
            with decompress.scope(self.budget):
                if kind == "zip":
                    self._zip(buf)
                elif kind == "tar":
                    self._tar(buf)
                elif kind == "7z":
                    self._7z(buf)
                else:
                    self._compressed(buf)
        except BudgetExhausted as exc:
            self.scan.error(f"archive only partly scanned for secrets: {exc}", "limit")
        except LimitExceeded as exc:
            self.scan.error(f"archive only partly scanned for secrets: {exc}", "limit")
        except ArchiveError as exc:
            self.scan.error(f"corrupt archive, scanned up to the damage: {exc}", "corrupt")

    # ---- containers -------------------------------------------------------------------------------------------
    def _zip(self, buf: Any) -> None:
        """Every archive of a file made of complete zips one after the other (``cat a.zip b.zip``, a ``.distcp``):
        a zip reader sees only the last, whose members keep their names; an earlier one's are ``zip@OFFSET!name``."""
        from veritensor_fast.models.containers import zip_segments

        try:
            segments = zip_segments(buf, MAX_MEMBERS)
        except LimitExceeded as exc:
            self.scan.error(f"only the last of the concatenated zip archives scanned for secrets: {exc}", "limit")
            segments = [(0, len(buf))]
        names: list[str] = []
        try:
            for k, (start, end) in enumerate(segments):
                self._zip_one(buf, None if k == 0 else end, "" if k == 0 else f"zip@{start}!", names)
        finally:
            self._names(names)

    def _zip_one(self, buf: Any, end: int | None, label: str, names: list[str]) -> None:
        from veritensor_fast.models.containers import zip_members, zip_read_partial

        members, _anomalies = zip_members(buf, self.limits, all_entries=True, end=end)  # anomalies: the model's
        for m in members:
            m.name = label + m.name
        names.extend(m.name for m in members)
        for m in members:
            self.budget.check()  # spent: one error for the rest of this archive, not one per member
            if m.is_dir or m.shared_with:
                continue  # an entry sharing another's data: that data is scanned once
            if m.encryption in ("model", "other"):
                self.scan.error(f"member {m.name!r} is encrypted; not scanned for secrets", "unreadable")
                continue
            if m.method == 0:
                head = bytes(buf[m.data_start:m.data_start + min(4096, max(m.csize, 0))])
                if archive_kind(head) is None and (m.csize > MAX_MEMBER_BYTES or b"\x00" in head[:1024]):
                    continue  # binary or huge stored member: the raw text pass covers it
                if archive_kind(head) is not None or m.overlaps:
                    # re-reading stored bytes as an archive, or bytes another entry covers too, costs budget
                    self.budget.charge(max(m.csize, 0))
            try:
                data, problem = zip_read_partial(buf, m, MAX_MEMBER_BYTES)
            except (LimitExceeded, ArchiveError) as exc:
                if isinstance(exc, BudgetExhausted):
                    raise
                self.scan.error(f"member {m.name!r} not scanned for secrets: {exc}", "corrupt")
                continue
            self._report(m.name, problem, len(data))
            self._member(m.name, data, stored=m.method == 0)

    def _tar(self, buf: Any) -> None:
        from veritensor_fast.models.containers import tar_entries

        plain = compression_of(bytes(buf[:16])) is None
        names: list[str] = []
        try:
            for mname, size, head, read in tar_entries(buf, self.limits):
                self.budget.check()
                names.append(mname)
                if plain and archive_kind(head) is None and (size > MAX_MEMBER_BYTES or b"\x00" in head[:1024]):
                    continue  # binary or huge member of a plain tar: the raw text pass covers it (as for zip)
                # a text member is scanned as the file it is, like a stored zip member (a notebook's JSON escapes,
                # a Kubernetes document, Python source): the raw pass alone sees none of that structure
                data = read(MAX_MEMBER_BYTES, partial=True)
                self._report(mname, f"limit: larger than {MAX_MEMBER_BYTES} bytes" if size > len(data) else None,
                             len(data))
                self._member(mname, bytes(data) if not plain else data, stored=plain)
        finally:
            if not plain:
                self._names(names)

    def _7z(self, buf: Any) -> None:
        from veritensor_fast.models.containers import sevenzip_walk

        names: list[str] = []

        def member(mname: str, data: bytes, size: int) -> None:
            names.append(mname)
            self._report(mname, f"limit: larger than {MAX_MEMBER_BYTES} bytes" if size > len(data) else None,
                         len(data))
            self._member(mname, data)

        try:
            sevenzip_walk(buf, self.limits, member, MAX_MEMBER_BYTES)
        finally:
            self._names(names)

    def _compressed(self, buf: Any) -> None:
        codec = compression_of(bytes(buf[:16]))
        assert codec is not None
        h, problem = decompress.read(buf, codec, 4096, partial=True)
        if not h and problem:
            if codec in decompress.STRONG:
                raise ArchiveError(f"{codec} stream unreadable ({problem})")
            return  # zlib / lzma-alone magic by coincidence: not compressed after all
        if len(h) >= 262 and h[257:262] == b"ustar":
            self._tar(buf)
            return
        data, problem = decompress.read(buf, codec, MAX_MEMBER_BYTES, partial=True)
        name = decompress.strip_suffix(self.name, codec)
        if name == self.name:
            name += f" ({codec} content)"
        self._report(name, problem, len(data))
        self._member(name, data)

    # ---- members ----------------------------------------------------------------------------------------------
    def _report(self, name: str, problem: str | None, got: int) -> None:
        if problem is None:
            return
        where = self.prefix + name
        if problem.startswith("limit"):
            self.scan.error(f"member {where!r}: only the first {got} bytes scanned for secrets ({problem[7:]})",
                            "limit")
        else:
            self.scan.error(f"member {where!r}: {problem[9:]}; the {got} bytes before the damage were scanned",
                            "corrupt")

    def _names(self, names: list[str]) -> None:
        """Member names can hold secrets too; scanned once per archive, one name per line."""
        if not names:
            return
        blob = "\n".join(n.replace("\n", " ") for n in names).encode("utf-8", "surrogateescape")
        found = self._scan_sub(_NAMES, blob, skip=("model", "archive", "notebook"))
        for f in found:
            line = f.line if 1 <= f.line <= len(names) else 1
            loc = dict(f.location or {})
            loc["member"] = self.prefix + names[line - 1]
            loc["part"] = "member-name"
            self.scan.finished.append(replace(f, path=self.item.path, line=1, location=loc))

    def _member(self, name: str, data: Any, stored: bool = False) -> None:
        where = self.prefix + name
        found = self._scan_sub(name, data)
        self.scan.finished.extend(_rehome(f, self.item.path, where) for f in found)

    def _scan_sub(self, name: str, data: Any, skip: tuple[str, ...] = ("model",)) -> list[Finding]:
        from veritensor_fast.worker import ItemScan

        where = self.prefix + name
        sub_item = Item("member", self.item.key, where, len(data), self.item.origin)
        sub = ItemScan(self.ctx, sub_item)
        sub.budgets = self.scan.budgets  # one budget for the whole top-level file
        self.ctx.scan_buffer(data, sub_item, sub, skip=skip)
        found = sub.finish(data)  # de-duplicated, inline ignores applied against the member's own lines
        if found:  # the raw pass may have seen the same secret (stored data): keep the member's location only
            fps = {f.fingerprint for f in found}
            self.scan.findings[:] = [f for f in self.scan.findings if f.fingerprint not in fps]
        for e in sub.errors:
            reason = e.reason if e.reason.startswith("member ") else f"member {where!r}: {e.reason}"
            self.scan.errors.append(ScanError(self.item.path, reason, e.kind))
        return found


def _rehome(f: Finding, path: str, member: str) -> Finding:
    loc = dict(f.location or {})
    loc.setdefault("member", member)
    return replace(f, path=path, location=loc)
