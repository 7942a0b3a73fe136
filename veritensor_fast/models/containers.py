"""Archives read the way model loaders read them: a lenient zip reader, tar (stdlib), 7z (``py7zr``).

The zip reader follows PyTorch (miniz): it trusts the central directory, ignores CRC errors, the encryption flag
and local/central name mismatches, and reads data at the local header's offset. Each of those anomalies is
reported. Stored members are returned as zero-copy slices of the input (an mmap for big files), so the tensor
data of a multi-GB checkpoint is never copied; deflate/bz2/lzma members are decompressed in bounded chunks, so
a zip bomb hits a limit (a finding) instead of memory.

Python's ``zipfile`` was not used because it refuses exactly the files an attacker crafts (name mismatch,
encryption bit) while PyTorch loads them.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from veritensor_fast.models.base import ModelLimits

_CHUNK = 1 << 20


class ArchiveError(Exception):
    """The archive structure is unreadable (reported as a finding by the caller)."""


class LimitExceeded(Exception):
    """A decompression limit was hit (bomb or oversized member)."""


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

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def _find_eocd(buf: Any) -> int:
    n = len(buf)
    lo = max(0, n - 65557)
    tail = bytes(buf[lo:n])
    i = tail.rfind(b"PK\x05\x06")
    while i >= 0:
        if len(tail) - i >= 22:
            return lo + i
        i = tail.rfind(b"PK\x05\x06", 0, i)
    return -1


def _zip64_extra(extra: bytes, usize: int, csize: int, off: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, sz = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + sz]
        if tag == 1:
            j = 0
            if usize == 0xFFFFFFFF and j + 8 <= len(body):
                usize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if csize == 0xFFFFFFFF and j + 8 <= len(body):
                csize = struct.unpack_from("<Q", body, j)[0]
                j += 8
            if off == 0xFFFFFFFF and j + 8 <= len(body):
                off = struct.unpack_from("<Q", body, j)[0]
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


def zip_members(buf: Any, limits: ModelLimits) -> tuple[list[ZipMember], list[Anomaly]]:
    """Parse the central directory leniently. Raises ``ArchiveError`` when there is none to parse."""
    anomalies: list[Anomaly] = []
    n = len(buf)
    eocd = _find_eocd(buf)
    if eocd < 0:
        return _scan_local_headers(buf, limits, anomalies), anomalies + [Anomaly(
            "model.zip.anomaly", "medium", "zip has no end-of-central-directory record; members found by "
            "scanning local headers", "no EOCD")]
    (_sig, _disk, _cd_disk, _n_here, count, cd_size, cd_off, _clen) = struct.unpack_from("<IHHHHIIH", buf, eocd)
    if (count == 0xFFFF or cd_off == 0xFFFFFFFF or cd_size == 0xFFFFFFFF) and eocd >= 20 and \
            bytes(buf[eocd - 20:eocd - 16]) == b"PK\x06\x07":
        z64 = struct.unpack_from("<Q", buf, eocd - 20 + 8)[0]
        if z64 + 56 <= n and bytes(buf[z64:z64 + 4]) == b"PK\x06\x06":
            count, cd_size, cd_off = struct.unpack_from("<QQQ", buf, z64 + 32)
    # a prefix before the archive (self-extractor, pickle polyglot) shifts every offset
    cd_start = eocd - cd_size if cd_size <= eocd else cd_off
    shift = cd_start - cd_off if cd_start >= cd_off else 0
    if shift:
        anomalies.append(Anomaly("model.zip.anomaly", "medium",
                                 f"{shift} bytes precede the zip archive (polyglot or prefixed file)", "zip prefix"))
    members: list[ZipMember] = []
    p = cd_start
    end_cd = min(n, cd_start + cd_size) if cd_size else eocd
    while p + 46 <= end_cd and bytes(buf[p:p + 4]) == b"PK\x01\x02":
        if len(members) >= limits.max_members:
            raise LimitExceeded(f"more than {limits.max_members} zip members")
        (_s, _vm, _vn, flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _dn, _ia, _ea,
         loff) = struct.unpack_from("<IHHHHHHIIIHHHHHII", buf, p)
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
        lflags, _lm = struct.unpack_from("<HH", buf, lo + 6)
        lnlen, lxlen = struct.unpack_from("<HH", buf, lo + 26)
        lname = _decode_name(bytes(buf[lo + 30:lo + 30 + lnlen]), lflags)
        members.append(ZipMember(name, method, flags, csize, usize, crc, lo + 30 + lnlen + lxlen, lname))
    if not members and count:
        raise ArchiveError("central directory unreadable")
    return members, anomalies


def _scan_local_headers(buf: Any, limits: ModelLimits, anomalies: list[Anomaly]) -> list[ZipMember]:
    members: list[ZipMember] = []
    p = 0
    n = len(buf)
    while p + 30 <= n and bytes(buf[p:p + 4]) == b"PK\x03\x04":
        if len(members) >= limits.max_members:
            raise LimitExceeded(f"more than {limits.max_members} zip members")
        (_s, _v, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack_from("<IHHHHHIIIHH", buf, p)
        name = _decode_name(bytes(buf[p + 30:p + 30 + nlen]), flags)
        start = p + 30 + nlen + xlen
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


def member_anomalies(m: ZipMember) -> list[Anomaly]:
    out = []
    if m.local_name != m.name:
        out.append(Anomaly("model.zip.anomaly", "medium",
                           f"member {m.name!r}: local header names it {m.local_name!r} (loaders disagree on which "
                           "name counts)", m.name))
    if m.flags & 0x1:
        out.append(Anomaly("model.zip.anomaly", "medium",
                           f"member {m.name!r} has the encryption flag set (PyTorch ignores it and reads the data)",
                           m.name))
    return out


def zip_read(buf: Any, m: ZipMember, limit: int, *, head_only: bool = False) -> tuple[Any, bool]:
    """Member content: zero-copy slice if stored, else bounded decompression. Returns (data, complete).

    ``complete`` is False when ``head_only`` stopped early. Raises ``LimitExceeded`` for bombs/oversize.
    """
    end = min(len(buf), m.data_start + max(m.csize, 0))
    if m.method == 0:
        if head_only:
            return bytes(buf[m.data_start:min(end, m.data_start + 4096)]), end - m.data_start <= 4096
        if end - m.data_start > limit:
            raise LimitExceeded(f"member {m.name!r} is larger than {limit} bytes")
        return buf[m.data_start:end], True
    want = 4096 if head_only else limit
    if m.method == 8:
        d: Any = zlib.decompressobj(-15)
    elif m.method == 12:
        d = bz2.BZ2Decompressor()
    elif m.method == 14:
        d = _LzmaZip()
    else:
        raise ArchiveError(f"member {m.name!r}: unsupported compression method {m.method}")
    out = bytearray()
    p = m.data_start
    while p < end:
        chunk = bytes(buf[p:min(end, p + _CHUNK)])
        p += len(chunk)
        try:
            if m.method == 8:
                piece = d.decompress(chunk, want + 1 - len(out))
                while len(out) + len(piece) <= want and d.unconsumed_tail:
                    out += piece
                    piece = d.decompress(d.unconsumed_tail, want + 1 - len(out))
                out += piece
            else:
                out += d.decompress(chunk)
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            raise ArchiveError(f"member {m.name!r}: corrupt compressed data ({type(exc).__name__})") from exc
        if len(out) > want:
            if head_only:
                return bytes(out[:4096]), False
            raise LimitExceeded(f"member {m.name!r} decompresses to more than {limit} bytes")
        if getattr(d, "eof", False):
            break
    return bytes(out), True


class _LzmaZip:
    """Zip method 14: a 4-byte header with LZMA properties, then raw LZMA1 data."""

    def __init__(self) -> None:
        self._d: Any = None
        self._pending = b""
        self.eof = False

    def decompress(self, data: bytes) -> bytes:
        if self._d is None:
            self._pending += data
            if len(self._pending) < 4:
                return b""
            psize = struct.unpack_from("<H", self._pending, 2)[0]
            if len(self._pending) < 4 + psize:
                return b""
            props = lzma._decode_filter_properties(lzma.FILTER_LZMA1, self._pending[4:4 + psize])  # type: ignore[attr-defined]
            self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[props])
            data = self._pending[4 + psize:]
        out: bytes = self._d.decompress(data)
        self.eof = self._d.eof
        return out


# ---- tar ---------------------------------------------------------------------------------------------------

class _BufFile(io.RawIOBase):
    """A read-only, seekable file over a buffer (mmap, bytes) without copying it."""

    def __init__(self, buf: Any) -> None:
        self._b = buf  # sliced per read: no exported memoryview keeps an mmap from closing
        self._p = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), len(self._b) - self._p))
        b[:n] = bytes(self._b[self._p:self._p + n])
        self._p += n
        return n

    def seek(self, off: int, whence: int = 0) -> int:
        p = off if whence == 0 else self._p + off if whence == 1 else len(self._b) + off
        if p < 0:  # as a real file does (a crafted tar header can ask for this)
            raise OSError(22, "negative seek position")
        self._p = p
        return self._p

    def tell(self) -> int:
        return self._p


def tar_members(buf: Any, limits: ModelLimits) -> Iterator[tuple[str, Any, Any]]:
    """Yield (name, head bytes, reader) for regular members; reader(limit) returns the full content."""
    try:
        tf = tarfile.open(fileobj=_BufFile(buf), mode="r:*")  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"unreadable tar ({type(exc).__name__})") from exc
    count = 0
    plain = getattr(tf, "fileobj", None) is not None and tf.fileobj.__class__ is _BufFile
    with tf:
        while True:
            try:
                ti = tf.next()
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                raise ArchiveError(f"corrupt tar ({type(exc).__name__})") from exc
            if ti is None:
                return
            count += 1
            if count > limits.max_members:
                raise LimitExceeded(f"more than {limits.max_members} tar members")
            if not ti.isfile():
                continue
            if plain:
                a, size = ti.offset_data, ti.size
                yield ti.name, bytes(buf[a:a + min(size, 4096)]), (
                    lambda lim, a=a, size=size: _limited(buf, a, size, lim))
            else:
                f = tf.extractfile(ti)
                if f is None:
                    continue
                head = f.read(4096)

                def rd(lim: int, f: Any = f, head: bytes = head, size: int = ti.size) -> Any:
                    if size > lim:
                        raise LimitExceeded(f"tar member larger than {lim} bytes")
                    return head + f.read(lim)

                yield ti.name, head, rd


def _limited(buf: Any, a: int, size: int, lim: int) -> Any:
    if size > lim:
        raise LimitExceeded(f"member larger than {lim} bytes")
    return buf[a:a + size]


# ---- 7z ----------------------------------------------------------------------------------------------------

def sevenzip_members(buf: Any, limits: ModelLimits) -> list[tuple[str, bytes]]:
    """All regular members of a 7z archive (declared sizes checked against the limits first)."""
    import py7zr
    from py7zr.io import Py7zIO, WriterFactory

    class _Cap(Py7zIO):
        def __init__(self, cap: int) -> None:
            self.buf = bytearray()
            self.cap = cap

        def write(self, s: bytes | bytearray) -> int:
            if len(self.buf) + len(s) > self.cap:
                raise LimitExceeded(f"7z member decompresses to more than {self.cap} bytes")
            self.buf += s
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return len(self.buf)

    class _Factory(WriterFactory):
        def __init__(self) -> None:
            self.files: dict[str, _Cap] = {}

        def create(self, filename: str) -> Py7zIO:
            w = _Cap(limits.max_member_bytes)
            self.files[filename] = w
            return w

    try:
        with py7zr.SevenZipFile(_BufFile(buf), mode="r") as z:  # type: ignore[arg-type]
            infos = z.list()
            if len(infos) > limits.max_members:
                raise LimitExceeded(f"more than {limits.max_members} 7z members")
            total = sum(int(i.uncompressed or 0) for i in infos if not i.is_directory)
            if total > limits.max_total_bytes:
                raise LimitExceeded(f"7z declares {total} uncompressed bytes, above the limit")
            fac = _Factory()
            z.extractall(factory=fac)
    except LimitExceeded:
        raise
    except Exception as exc:  # py7zr raises many types for corrupt input
        raise ArchiveError(f"unreadable 7z ({type(exc).__name__})") from exc
    return [(name, bytes(w.buf)) for name, w in fac.files.items()]
