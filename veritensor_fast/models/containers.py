"""Archives read the way model loaders read them: a lenient zip reader here; tar (stdlib) and 7z (``py7zr``) in
``tar7z``, re-exported from here.

The zip reader follows PyTorch (miniz): it trusts the central directory, ignores CRC errors, the encryption flag
and local/central name mismatches, and reads data at the local header's offset. Each of those anomalies is
reported. Stored members are returned as zero-copy slices of the input (an mmap for big files), so the tensor
data of a multi-GB checkpoint is never copied; compressed members go through the shared bounded layer
(``veritensor_fast.decompress``), so a zip bomb hits a limit (a finding) instead of memory.

Python's ``zipfile`` was not used because it refuses exactly the files an attacker crafts (name mismatch,
encryption bit) while PyTorch loads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from veritensor_fast import decompress
from veritensor_fast.decompress import ArchiveError, BudgetExhausted, LimitExceeded
from veritensor_fast.models.base import ModelLimits
from veritensor_fast.models.compressed import compressed_issues
from veritensor_fast.models.sniff import has_model_ext, sniff
from veritensor_fast.models.tar7z import sevenzip_walk, tar_entries, tar_members  # re-exported
from veritensor_fast.randread import unpack_at

__all__ = ["Anomaly", "ArchiveError", "BudgetExhausted", "LimitExceeded", "ZipMember", "compressed_issues",
           "member_anomalies",
           "sevenzip_walk", "tar_entries", "tar_members", "zip_members", "zip_read", "zip_read_partial",
           "zip_segments"]

_STORAGE_NAME = re.compile(r"(^|/)data/\d+$")
#: zip compression methods and the codec of the shared decompression layer that reads them
ZIP_CODECS = {8: "deflate", 12: "bz2", 14: "ziplzma", 93: "zstd", 95: "xz"}


@dataclass
class Anomaly:
    rule_id: str
    severity: str
    message: str
    evidence: str


@dataclass
class ZipMember:
    name: str
    method: int
    flags: int
    csize: int
    usize: int
    crc: int
    data_start: int
    local_name: str
    #: name of an earlier entry whose data this one shares (overlapping entries: read once)
    shared_with: str = ""
    #: for an encrypted entry: "plain" when its bytes read as a model payload anyway (PyTorch ignores the flag),
    #: "model" when it is unreadable and its name is a model payload's, "other" when unreadable and not
    encryption: str = ""
    #: its data starts inside another entry's data (a different overlapping-entries bomb): read, but charged
    overlaps: bool = False

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def _find_eocd(buf: Any, end: int | None = None) -> int:
    n = len(buf) if end is None else end
    if n >= 22 and bytes(buf[n - 22:n - 18]) == b"PK\x05\x06":
        return n - 22  # no archive comment: the last record there is (no copy of a 64 KiB tail per archive)
    lo = max(0, n - 65557)
    tail = bytes(buf[lo:n])
    i = tail.rfind(b"PK\x05\x06")
    while i >= 0:
        if len(tail) - i >= 22:
            return lo + i
        i = tail.rfind(b"PK\x05\x06", 0, i)
    return -1


def find_eocd(buf: Any) -> int:
    """Position of the end-of-central-directory record that ends ``buf`` (its comment after it), or -1."""
    return _find_eocd(buf)


def _find_zip64_record(buf: Any, eocd: int) -> int:
    """Position of the zip64 end-of-central-directory record that belongs to the EOCD at ``eocd``, or -1.

    The zip64 locator sits right before the EOCD. Its record normally sits right before the locator (56 bytes
    plus optional extensible data); the locator's own offset is tried too (it is wrong by the length of a prefix).
    """
    loc = eocd - 20
    if loc < 56 or bytes(buf[loc:loc + 4]) != b"PK\x06\x07":
        return -1
    size_at = loc - 56
    if bytes(buf[size_at:size_at + 4]) == b"PK\x06\x06":
        return size_at
    rec_off = unpack_at("<Q", buf, loc + 8)[0]
    if rec_off + 56 <= loc and bytes(buf[rec_off:rec_off + 4]) == b"PK\x06\x06" and \
            rec_off + 12 + unpack_at("<Q", buf, rec_off + 4)[0] == loc:
        return int(rec_off)
    # extensible data and a prefix: search back for a record whose declared size ends at the locator
    lo = max(0, loc - 65536)
    tail = bytes(buf[lo:loc])
    i = tail.rfind(b"PK\x06\x06")
    while i >= 0:
        if i + 56 <= len(tail) and lo + i + 12 + unpack_at("<Q", tail, i + 4)[0] == loc:
            return lo + i
        i = tail.rfind(b"PK\x06\x06", 0, i)
    return -1


def _zip64_extra(extra: bytes, usize: int, csize: int, off: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, sz = unpack_at("<HH", extra, i)
        body = extra[i + 4:i + 4 + sz]
        if tag == 1:
            j = 0
            if usize == 0xFFFFFFFF and j + 8 <= len(body):
                usize = unpack_at("<Q", body, j)[0]
                j += 8
            if csize == 0xFFFFFFFF and j + 8 <= len(body):
                csize = unpack_at("<Q", body, j)[0]
                j += 8
            if off == 0xFFFFFFFF and j + 8 <= len(body):
                off = unpack_at("<Q", body, j)[0]
            break
        i += 4 + sz
    return usize, csize, off


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & 0x800:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")


def _cd_bounds(buf: Any, eocd: int) -> tuple[int, int, int, int]:
    """(entry count, central directory start, its size, the offset its own offsets are relative to)."""
    (_sig, _disk, _cd_disk, _n_here, count, cd_size, cd_off, _clen) = unpack_at("<IHHHHIIH", buf, eocd)
    # the central directory ends where the end records start: the zip64 record when there is one (PyTorch
    # writes it, with its locator, before every EOCD even when no field is saturated), else the EOCD itself
    cd_end = eocd
    z64 = _find_zip64_record(buf, eocd)
    if z64 >= 0:
        cd_end = z64
        count, cd_size, cd_off = unpack_at("<QQQ", buf, z64 + 32)
    # a prefix before the archive (self-extractor, pickle polyglot) shifts every offset
    cd_start = cd_end - cd_size if cd_size <= cd_end else cd_off
    shift = cd_start - cd_off if cd_start >= cd_off else 0
    return count, cd_start, cd_size, shift


def safetensors_tail(buf: Any, tries: int = 16) -> int:
    """Where a safetensors blob starts that fills the rest of the file right after a zip archive's end record, or
    -1. PyTorch Distributed Checkpoint with ``SerializationFormat.SAFETENSORS`` writes each ``.distcp`` as the
    ``torch.save`` archives of its non-tensor items, then one safetensors blob of all its tensors (torch 2.13,
    ``filesystem._write_files_from_queue``). Call it only when no end record ends the file."""
    n = len(buf)
    i = buf.rfind(b"PK\x05\x06")
    while i >= 0 and tries > 0:
        tries -= 1
        if i + 22 <= n:
            e = i + 22 + int.from_bytes(bytes(buf[i + 20:i + 22]), "little")
            if e + 9 <= n and bytes(buf[e + 8:e + 9]) == b"{":
                hlen = int.from_bytes(bytes(buf[e:e + 8]), "little")
                if hlen <= 100_000_000 and e + 8 + hlen <= n:
                    return e
        i = buf.rfind(b"PK\x05\x06", 0, i)
    return -1


def embedded_archives(buf: Any, known: set[int], max_archives: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of every complete zip archive inside ``buf`` whose start is not in ``known``: a
    Distributed Checkpoint loads each item at the offset its ``.metadata`` names, anywhere in a ``.distcp`` (inside
    another archive's stored tensor bytes too). An end record whose central directory does not lead back to a
    local header is not an archive. More than ``max_archives`` raise ``LimitExceeded``."""
    out: list[tuple[int, int]] = []
    n = len(buf)
    i = buf.find(b"PK\x05\x06")
    while 0 <= i <= n - 22:
        try:
            start = _cd_bounds(buf, i)[3]
        except Exception:  # noqa: BLE001 - bytes that only look like an end record
            start = -1
        if 0 <= start < i and start not in known and bytes(buf[start:start + 4]) == b"PK\x03\x04":
            known.add(start)
            out.append((start, i + 22 + int.from_bytes(bytes(buf[i + 20:i + 22]), "little")))
            if len(out) > max_archives:
                raise LimitExceeded(f"more than {max_archives} zip archives inside one file")
        i = buf.find(b"PK\x05\x06", i + 4)
    return out


def zip_segments(buf: Any, max_segments: int, end: int | None = None) -> list[tuple[int, int]]:
    """``[(start, end), ...]``, last archive first: a file that is several complete zip archives one after the
    other (PyTorch Distributed Checkpoint's ``.distcp``: one ``torch.save`` archive per item, each read at its
    own offset) is as many archives. An archive's prefix counts as another archive only when it ends exactly
    with an end-of-central-directory record; any other prefix stays a prefix (a ``zip prefix`` anomaly).
    More than ``max_segments`` archives raise ``LimitExceeded``."""
    out: list[tuple[int, int]] = []
    end = len(buf) if end is None else end
    while True:
        eocd = _find_eocd(buf, end)
        if eocd < 0:
            return out or [(0, end)]
        try:
            start = _cd_bounds(buf, eocd)[3]
        except Exception:  # noqa: BLE001 - unreadable end records: zip_members reports them
            return out or [(0, end)]
        out.append((start, end))
        if not 22 <= start < end or not _ends_with_eocd(buf, start):
            return out
        if len(out) >= max_segments:
            raise LimitExceeded(f"more than {max_segments} concatenated zip archives")
        end = start


def _ends_with_eocd(buf: Any, end: int) -> bool:
    """Whether ``buf[:end]`` ends exactly with an end-of-central-directory record (and its comment)."""
    if bytes(buf[end - 22:end - 18]) == b"PK\x05\x06" and bytes(buf[end - 2:end]) == b"\0\0":
        return True
    lo = max(0, end - 65557)
    tail = bytes(buf[lo:end])
    i = tail.rfind(b"PK\x05\x06")
    while i >= 0:
        if i + 22 <= len(tail) and i + 22 + int.from_bytes(tail[i + 20:i + 22], "little") == len(tail):
            return True
        i = tail.rfind(b"PK\x05\x06", 0, i)
    return False


def zip_members(buf: Any, limits: ModelLimits, *, all_entries: bool = False,
                end: int | None = None) -> tuple[list[ZipMember], list[Anomaly]]:
    """Parse the central directory leniently. Raises ``ArchiveError`` when there is none to parse.

    Entries whose data another entry already points at (overlapping-entry bombs) and encrypted entries that
    cannot be read are left out (reported as anomalies where they matter) unless ``all_entries``, which keeps
    them marked (``shared_with``, ``encryption``) so that their names can still be scanned. ``end``: the
    archive ends there (one of ``zip_segments``), not at the end of ``buf``.
    """
    anomalies: list[Anomaly] = []
    n = len(buf)
    eocd = _find_eocd(buf, end)
    if eocd < 0:
        anomalies.append(Anomaly("model.zip.anomaly", "medium", "zip has no end-of-central-directory record; "
                                 "members found by scanning local headers", "no EOCD"))
        return _finish(buf, _scan_local_headers(buf, limits, anomalies), anomalies, all_entries), anomalies
    count, cd_start, cd_size, shift = _cd_bounds(buf, eocd)
    if shift:
        anomalies.append(Anomaly("model.zip.anomaly", "medium",
                                 f"{shift} bytes precede the zip archive (polyglot or prefixed file)", "zip prefix"))
    members: list[ZipMember] = []
    p = cd_start
    end_cd = min(n, cd_start + cd_size) if cd_size else cd_start  # (cd_start is where the end records start)
    while p + 46 <= end_cd and bytes(buf[p:p + 4]) == b"PK\x01\x02":
        if len(members) >= limits.max_members:
            raise LimitExceeded(f"more than {limits.max_members} zip members")
        (_s, _vm, _vn, flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _dn, _ia, _ea,
         loff) = unpack_at("<IHHHHHHIIIHHHHHII", buf, p)
        raw = bytes(buf[p + 46:p + 46 + nlen])
        extra = bytes(buf[p + 46 + nlen:p + 46 + nlen + xlen])
        usize, csize, loff = _zip64_extra(extra, usize, csize, loff)
        name = _decode_name(raw, flags)
        p += 46 + nlen + xlen + clen
        lo = loff + shift
        if lo + 30 > n or bytes(buf[lo:lo + 4]) != b"PK\x03\x04":
            anomalies.append(Anomaly("model.zip.anomaly", "medium",
                                     f"member {name!r}: local header missing or out of bounds", name))
            continue
        lflags, _lm = unpack_at("<HH", buf, lo + 6)
        lnlen, lxlen = unpack_at("<HH", buf, lo + 26)
        lname = _decode_name(bytes(buf[lo + 30:lo + 30 + lnlen]), lflags)
        members.append(ZipMember(name, method, flags, csize, usize, crc, lo + 30 + lnlen + lxlen, lname))
    if not members and count:
        raise ArchiveError("central directory unreadable")
    return _finish(buf, members, anomalies, all_entries), anomalies


def _scan_local_headers(buf: Any, limits: ModelLimits, anomalies: list[Anomaly]) -> list[ZipMember]:
    members: list[ZipMember] = []
    p = 0
    n = len(buf)
    while p + 30 <= n and bytes(buf[p:p + 4]) == b"PK\x03\x04":
        if len(members) >= limits.max_members:
            raise LimitExceeded(f"more than {limits.max_members} zip members")
        (_s, _v, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = unpack_at("<IHHHHHIIIHH", buf, p)
        name = _decode_name(bytes(buf[p + 30:p + 30 + nlen]), flags)
        start = p + 30 + nlen + xlen
        if usize == 0xFFFFFFFF or csize == 0xFFFFFFFF:  # a local zip64 extra holds both sizes
            usize, csize, _ = _zip64_extra(bytes(buf[p + 30 + nlen:start]), usize, csize, 0)
        if flags & 0x08:  # sizes follow the data; we cannot know where this member ends
            anomalies.append(Anomaly("model.zip.anomaly", "medium",
                                     f"member {name!r} uses a data descriptor without a central directory; "
                                     "members after it were not found", name))
            members.append(ZipMember(name, method, flags, n - start, -1, crc, start, name))
            break
        members.append(ZipMember(name, method, flags, csize, usize, crc, start, name))
        p = start + csize
    if not members:
        raise ArchiveError("no zip members found")
    return members


def _finish(buf: Any, members: list[ZipMember], anomalies: list[Anomaly], all_entries: bool) -> list[ZipMember]:
    """Mark entries sharing another's data and classify encrypted ones; drop both unless ``all_entries``."""
    groups: dict[int, list[ZipMember]] = {}
    for m in members:
        if not m.is_dir and m.csize > 0:
            groups.setdefault(m.data_start, []).append(m)
    shared = overlapping = 0
    max_end = -1
    for start in sorted(groups):
        group = groups[start]
        # the same bytes under several names: keep the name a loader would unpickle (not a tensor storage), so
        # that sharing data with a storage entry cannot hide a data.pkl
        keep = min(group, key=lambda m: (_STORAGE_NAME.search(m.name) is not None, not has_model_ext(m.name)))
        for m in group:
            if m is not keep:
                m.shared_with = keep.name
                shared += 1
        if start < max_end:
            keep.overlaps = True
            overlapping += 1
        max_end = max(max_end, start + keep.csize)
    if shared:
        anomalies.append(Anomaly("model.zip.bomb", "medium", f"{shared} central-directory entries point at the "
                                 "data of another entry (overlapping entries, a zip bomb technique); that data "
                                 "was read once", "overlapping entries"))
    if overlapping:
        anomalies.append(Anomaly("model.zip.bomb", "medium", f"{overlapping} entries start inside the data of "
                                 "another entry (overlapping entries, a zip bomb technique)", "overlapping entries"))
    for m in members:
        if m.flags & 0x1 and not m.shared_with and not m.is_dir:
            m.encryption = _encryption(buf, m)
            if m.encryption == "model":
                anomalies.append(Anomaly("model.zip.anomaly", "medium", f"member {m.name!r} is encrypted and "
                                         "could not be analysed", m.name))
    if all_entries:
        return members
    return [m for m in members if not m.shared_with and m.encryption in ("", "plain")]


def _encryption(buf: Any, m: ZipMember) -> str:
    try:
        head, _ = zip_read(buf, m, 4096, head_only=True)
        kind = sniff(bytes(head), m.name, m.usize)
    except (ArchiveError, LimitExceeded):
        kind = "none"
    if kind not in ("none", "pickle?"):
        return "plain"
    return "model" if model_name(m.name) else "other"


def model_name(name: str) -> bool:
    """Whether a member's name is a model payload's (``data.pkl``, a model extension, or no extension)."""
    base = name.rsplit("/", 1)[-1]
    return has_model_ext(base) or "." not in base


def member_anomalies(m: ZipMember) -> list[Anomaly]:
    out = []
    if m.local_name != m.name:
        out.append(Anomaly("model.zip.anomaly", "medium",
                           f"member {m.name!r}: local header names it {m.local_name!r} (loaders disagree on which "
                           "name counts)", m.name))
    if m.flags & 0x1 and m.encryption == "plain":
        out.append(Anomaly("model.zip.anomaly", "medium",
                           f"member {m.name!r} has the encryption flag set but holds a readable model payload "
                           "(PyTorch ignores the flag and reads the data)", m.name))
    return out


def _codec(m: ZipMember) -> str:
    codec = ZIP_CODECS.get(m.method)
    if codec is None:
        raise ArchiveError(f"member {m.name!r}: unsupported compression method {m.method}")
    return codec


def zip_read(buf: Any, m: ZipMember, limit: int, *, head_only: bool = False) -> tuple[Any, bool]:
    """Member content: zero-copy slice if stored, else bounded decompression. Returns (data, complete).

    ``complete`` is False when ``head_only`` stopped early. Raises ``LimitExceeded`` for bombs/oversize (and
    ``BudgetExhausted`` when the file's decompression budget is spent), ``ArchiveError`` for corrupt data.
    """
    end = min(len(buf), m.data_start + max(m.csize, 0))
    if m.method == 0:
        if head_only:
            return bytes(buf[m.data_start:min(end, m.data_start + 4096)]), end - m.data_start <= 4096
        if end - m.data_start > limit:
            raise LimitExceeded(f"member {m.name!r} is larger than {limit} bytes")
        return buf[m.data_start:end], True
    codec = _codec(m)
    if head_only:
        parts: list[bytes] = []
        n = 0
        try:
            for piece in decompress.stream(buf, codec, m.data_start, end, in_chunk=4096, out_chunk=4097):
                parts.append(piece)
                n += len(piece)
                if n > 4096:
                    return b"".join(parts)[:4096], False
        except BudgetExhausted:
            raise
        except (ArchiveError, LimitExceeded) as exc:
            if not parts:
                raise ArchiveError(f"member {m.name!r}: {exc}") from exc
        return b"".join(parts), True
    try:
        data, _ = decompress.read(buf, codec, limit, m.data_start, end)
    except BudgetExhausted:
        raise
    except LimitExceeded as exc:
        raise LimitExceeded(f"member {m.name!r} decompresses to more than {limit} bytes") from exc
    except ArchiveError as exc:
        raise ArchiveError(f"member {m.name!r}: {exc}") from exc
    return data, True


def zip_read_partial(buf: Any, m: ZipMember, limit: int) -> tuple[Any, str | None]:
    """Up to ``limit`` bytes of a member and what stopped it ("limit: ..." / "corrupt: ...", None if complete)."""
    end = min(len(buf), m.data_start + max(m.csize, 0))
    if m.method == 0:
        if end - m.data_start > limit:
            return buf[m.data_start:m.data_start + limit], f"limit: larger than {limit} bytes"
        return buf[m.data_start:end], None
    return decompress.read(buf, _codec(m), limit, m.data_start, end, partial=True)
