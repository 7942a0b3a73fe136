"""One bounded decompression layer for every reader of compressed bytes (archive secrets and model analysis).

Every codec streams: input is fed in 64 KiB chunks and output is taken at most 1 MiB per call (``max_length``, or
a bounded ``read`` where a library has no ``max_length``), so no single call can expand a bomb. Every byte fed to
a decompressor and every byte it produces is charged to one ``Budget`` per top-level file, shared by nested
archives, by the model analyser and by the secret scanner of that file, and spent whether or not the member
that consumed it was complete. When the budget is spent ``BudgetExhausted`` (a ``LimitExceeded``) is raised and
the caller reports what it could not read (kind ``limit``): decompression work per top-level file is bounded by
``Budget.total`` however the archive is built (nesting, overlapping entries, many members).

Codecs are recognised by content (magic bytes), never by file name: gzip (multi-member), bzip2 (multi-stream),
xz, lzma-alone, zlib, zstd (``zstandard``, optional), lz4 frames (``lz4``, optional), and the zip methods
deflate, bzip2, LZMA and zstd.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import lzma
import os
import struct
import zlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from veritensor_fast.models.sniff import compression_of

#: Decompression work (bytes fed in plus bytes produced) allowed per top-level file and consumer (model analysis,
#: secret scanning), nesting included. ``VERITENSOR_FAST_DECOMPRESS_BUDGET`` (bytes) overrides it.
DEFAULT_BUDGET = 512 << 20


def default_budget() -> int:
    try:
        return max(1 << 20, int(os.environ.get("VERITENSOR_FAST_DECOMPRESS_BUDGET", DEFAULT_BUDGET)))
    except ValueError:
        return DEFAULT_BUDGET
_IN = 64 << 10
_OUT = 1 << 20
IN_STEP = _IN  # a full read's input step (``decompress_keep`` charges what a fresh read charges)
#: Memory an LZMA/xz decoder may allocate for its dictionary (xz -9 needs 65 MiB; a header asking for GiB is a
#: bomb of its own).
MAX_LZMA_MEMORY = 256 << 20


class ArchiveError(Exception):
    """The archive or compressed stream is unreadable (reported as a finding or error by the caller)."""


class LimitExceeded(Exception):
    """A decompression limit was hit (bomb, oversized member, or the per-file budget)."""


class BudgetExhausted(LimitExceeded):
    """The per-file decompression budget is spent: nothing more of this file can be decompressed."""


class Truncated(ArchiveError):
    """The compressed stream ends before its end marker (a cut-off file)."""


class Budget:
    """Decompression work allowed for one top-level file. ``charge`` raises ``BudgetExhausted`` once spent."""

    __slots__ = ("total", "spent", "memo")

    def __init__(self, total: int | None = None) -> None:
        self.total = default_budget() if total is None else total
        self.spent = 0
        self.memo: Memo | None = None  # reads of the top-level file shared with its other consumer (``for_scan``)

    @property
    def left(self) -> int:
        return max(0, self.total - self.spent)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.total

    def charge(self, n: int) -> None:
        self.spent += n
        if self.spent > self.total:
            raise BudgetExhausted(f"decompression budget of {self.total} bytes for this file is spent")

    def check(self) -> None:
        if self.spent >= self.total:
            raise BudgetExhausted(f"decompression budget of {self.total} bytes for this file is spent")


_CURRENT: ContextVar[Budget | None] = ContextVar("veritensor_budget", default=None)


def current() -> Budget:
    """The budget of the file being scanned; outside a scope, a fresh one (bounded per call)."""
    b = _CURRENT.get()
    return b if b is not None else Budget()


#: Model analysis and the archive secret scan of one top-level file both decompress its ``.bz2`` / ``.gz`` stream
#: or its ``.npz`` members: a read of the top-level buffer that decompressed at most ``MEMO_ENTRY`` bytes is kept
#: (at most ``MEMO_TOTAL`` bytes per file, until the file's scan ends) for the other consumer (see ``Memo``).
MEMO_ENTRY = 8 << 20
MEMO_TOTAL = 16 << 20


class Memo:
    """Decompressed reads of one top-level buffer (``top``), shared by the budgets of its two consumers.

    A kept read is handed to a later ``read`` of the same buffer object, byte range, codec and step size only when
    the result would be the same (a complete stream that fits the later limit, or the same limit and mode) and
    the later read's budget can pay exactly what decoding again would charge: that amount is charged, so each
    consumer's budget is spent as before and each bound is enforced as before. When the budget could not pay,
    the read decodes as before (and stops where it always did). A kept read is handed out once, then dropped.
    Reads that failed, or that the budget cut short, are never kept.
    """

    __slots__ = ("top", "entries", "size")

    def __init__(self, top: Any) -> None:
        self.top = top
        #: (codec, start, end, small) -> [(limit, partial, data, problem, charged)]
        self.entries: dict[tuple[str, int, int, bool], list[tuple[int, bool, bytes, str | None, int]]] = {}
        self.size = 0

    def take(self, key: tuple[str, int, int, bool], limit: int, partial: bool,
             b: Budget) -> tuple[bytes, str | None] | None:
        kept = self.entries.get(key)
        for i, (lim, part, data, problem, charged) in enumerate(kept or ()):
            if not ((problem is None and len(data) <= limit) or (lim, part) == (limit, partial)):
                continue
            if b.spent >= b.total or b.spent + charged > b.total:
                return None  # decoding again would stop on the budget: it does, exactly as before
            b.spent += charged
            del kept[i]  # type: ignore[union-attr]
            self.size -= len(data)
            return data, problem
        return None

    def keep(self, key: tuple[str, int, int, bool], limit: int, partial: bool, data: bytes, problem: str | None,
             charged: int) -> None:
        if len(data) > MEMO_ENTRY or self.size + len(data) > MEMO_TOTAL:
            return
        self.entries.setdefault(key, []).append((limit, partial, data, problem, charged))
        self.size += len(data)


def for_scan(scan: Any, consumer: str, top: Any = None) -> Budget:
    """The budget of ``consumer`` ("model" or "secrets") for the top-level file behind ``scan`` (an ``ItemScan``;
    archive members' scans share their parent's), created on first use. ``top``: the top-level file's buffer,
    whose decompressed reads this budget shares with the file's other consumer (``Memo``)."""
    budgets: dict[str, Any] | None = getattr(scan, "budgets", None)
    if budgets is None:
        return Budget()
    b = budgets.get(consumer)
    if b is None:
        b = budgets[consumer] = Budget()
    if top is not None:
        memo = budgets.get("memo")
        if memo is None:
            memo = budgets["memo"] = Memo(top)
        b.memo = memo if memo.top is top else None
    assert isinstance(b, Budget)
    return b


@contextlib.contextmanager
def scope(budget: Budget | None = None) -> Iterator[Budget]:
    """Make ``budget`` (or the active one, or a new one) the budget of everything decompressed inside."""
    b = budget or _CURRENT.get() or Budget()
    token = _CURRENT.set(b)
    try:
        yield b
    finally:
        _CURRENT.reset(token)


# ---- codec detection ----------------------------------------------------------------------------------------

#: Codecs whose magic is strong enough that a failure to decode is a corrupt file, not a coincidence.
STRONG = frozenset({"gzip", "bz2", "xz", "zstd", "lz4"})
#: File-name suffixes the codecs are written under (used only to name the decompressed member).
SUFFIXES = {"gzip": (".gz", ".gzip", ".z"), "bz2": (".bz2", ".bz"), "xz": (".xz", ".txz"), "zstd": (".zst", ".zstd"),
            "lz4": (".lz4",), "lzma": (".lzma",), "zlib": (".z", ".zlib")}


def codec_of(head: bytes) -> str | None:
    """The codec of a compressed stream starting with ``head``, or None (see ``models.sniff.compression_of``)."""
    return compression_of(head)


def strip_suffix(name: str, codec: str) -> str:
    low = name.lower()
    for suf in SUFFIXES.get(codec, ()):
        if low.endswith(suf) and len(name) > len(suf):
            return name[:-len(suf)] + (".tar" if suf in (".txz",) else "")
    return name


def available(codec: str) -> bool:
    """Whether the library for ``codec`` is installed (zstd: ``zstandard``, lz4: ``lz4``)."""
    try:
        if codec == "zstd":
            import zstandard  # noqa: F401
        else:
            _new(codec)
    except ImportError:
        return False
    return True


# ---- decoders -----------------------------------------------------------------------------------------------

class _Charged(io.RawIOBase):
    """``buf[start:end]`` as a file whose reads are charged to a budget (input side of ``zstandard``)."""

    def __init__(self, buf: Any, start: int, end: int, budget: Budget, step: int = _IN) -> None:
        self._b, self._p, self._end, self._budget, self._step = buf, start, end, budget, step

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self._end - self._p, self._step))
        b[:n] = bytes(self._b[self._p:self._p + n])
        self._p += n
        self._budget.charge(n)
        return n


def _zstd(buf: Any, start: int, end: int, b: Budget, in_chunk: int, out_chunk: int) -> Iterator[bytes]:
    """zstandard has no ``max_length``: a ``stream_reader`` read of at most 1 MiB gives the same bound."""
    try:
        import zstandard
    except ImportError as exc:
        raise ArchiveError("zstd support is not installed (zstandard)") from exc
    r = zstandard.ZstdDecompressor().stream_reader(_Charged(buf, start, end, b, in_chunk),  # type: ignore[arg-type]
                                                   read_size=in_chunk,
                                                   read_across_frames=True)
    while True:
        try:
            out = r.read(out_chunk)
        except zstandard.ZstdError as exc:
            raise ArchiveError(f"corrupt zstd data ({exc})") from exc
        if not out:
            return
        b.charge(len(out))
        yield out


class _ZipLzma:
    """Zip method 14: a 4-byte header with LZMA properties, then raw LZMA1 data."""

    def __init__(self) -> None:
        self._d: Any = None
        self._pending = b""
        self.eof = False
        self.needs_input = True
        self.unused_data = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._d is None:
            self._pending += data
            if len(self._pending) < 4:
                return b""
            psize = struct.unpack_from("<H", self._pending, 2)[0]
            if len(self._pending) < 4 + psize:
                return b""
            props = lzma._decode_filter_properties(lzma.FILTER_LZMA1, self._pending[4:4 + psize])  # type: ignore[attr-defined]
            if int(props.get("dict_size", 0)) > MAX_LZMA_MEMORY:  # allocated up front: a crafted header
                raise LimitExceeded(f"LZMA dictionary of {props.get('dict_size')} bytes exceeds the memory limit")
            self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[props])
            data, self._pending = self._pending[4 + psize:], b""
        out: bytes = self._d.decompress(data, max_length)
        self.eof, self.needs_input, self.unused_data = self._d.eof, self._d.needs_input, self._d.unused_data
        return out


def _new(codec: str) -> tuple[Any, bool]:
    """A fresh decompressor and whether it is zlib-style (``unconsumed_tail``) rather than ``needs_input``."""
    if codec == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS), True
    if codec == "zlib":
        return zlib.decompressobj(zlib.MAX_WBITS), True
    if codec == "deflate":
        return zlib.decompressobj(-zlib.MAX_WBITS), True
    if codec == "bz2":
        return bz2.BZ2Decompressor(), False
    if codec == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=MAX_LZMA_MEMORY), False
    if codec == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=MAX_LZMA_MEMORY), False
    if codec == "ziplzma":
        return _ZipLzma(), False
    if codec == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor(), False
    raise ArchiveError(f"unsupported compression {codec!r}")


#: Codecs whose files may hold several streams back to back (all are read, as ``gzip``/``bzip2 -d`` do).
_MULTI = {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00", "lz4": b"\x04\x22\x4d\x18"}
_ERRORS: tuple[type[BaseException], ...] = (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError, RuntimeError)


def stream(buf: Any, codec: str, start: int = 0, end: int | None = None, *, budget: Budget | None = None,
           in_chunk: int = _IN, out_chunk: int = _OUT,
           bounds: list[tuple[int, int]] | None = None) -> Iterator[bytes]:
    """Yield the decompressed bytes of ``buf[start:end]`` in pieces of at most 1 MiB, charging ``budget``.

    Raises ``Truncated`` when the input ends before the end marker, ``ArchiveError`` for corrupt data,
    ``BudgetExhausted`` when the budget is spent. Concatenated streams (gzip members, bzip2/xz streams) are all
    read; trailing bytes that start no new stream are ignored, as the command-line tools do. ``bounds`` receives
    each complete stream's ``(start, end)`` offsets in ``buf`` (what a read's charge for its input follows).
    """
    b = budget or current()
    end = len(buf) if end is None else min(end, len(buf))
    pos = began = start
    b.check()
    if codec in ("zstd", "zipzstd"):
        yield from _zstd(buf, start, end, b, in_chunk, out_chunk)
        return
    try:
        d, zstyle = _new(codec)
    except ImportError as exc:
        raise ArchiveError(f"{codec} support is not installed ({exc.name})") from exc
    while True:
        if pos >= end:
            if d.eof:
                return
            raise Truncated(f"{codec} stream is truncated")
        chunk = bytes(buf[pos:min(end, pos + in_chunk)])
        b.charge(len(chunk))
        pos += len(chunk)
        try:
            if zstyle:
                data = chunk
                while True:
                    out = d.decompress(data, out_chunk)
                    if out:
                        b.charge(len(out))
                        yield out
                    data = d.unconsumed_tail
                    if d.eof or (not data and len(out) < out_chunk):
                        break  # else: output was cut at out_chunk and more may be pending, even with no input
            else:
                out = d.decompress(chunk, out_chunk)
                while True:
                    if out:
                        b.charge(len(out))
                        yield out
                    if d.eof or d.needs_input:
                        break
                    out = d.decompress(b"", out_chunk)
        except (ArchiveError, LimitExceeded):
            raise
        except MemoryError as exc:
            raise LimitExceeded(f"{codec} decoder needs more memory than is available") from exc
        except lzma.LZMAError as exc:
            if "memory" in str(exc).lower():
                raise LimitExceeded(f"{codec} stream needs more than {MAX_LZMA_MEMORY} bytes of decoder memory") \
                    from exc
            raise ArchiveError(f"corrupt {codec} data (LZMAError)") from exc
        except _ERRORS as exc:
            raise ArchiveError(f"corrupt {codec} data ({type(exc).__name__})") from exc
        if d.eof:
            rest = d.unused_data or b""  # at the end zlib keeps the rest in both unused_data and unconsumed_tail
            nxt = pos - len(rest)
            if bounds is not None:
                bounds.append((began, nxt))
            magic = _MULTI.get(codec)
            if magic is None or nxt >= end or bytes(buf[nxt:nxt + len(magic)]) != magic:
                return
            d, zstyle = _new(codec)
            pos = began = nxt


def read(buf: Any, codec: str, limit: int, start: int = 0, end: int | None = None, *,
         budget: Budget | None = None, partial: bool = False, keep: list[Any] | None = None,
         resume: Any = None) -> tuple[bytes, str | None]:
    small = limit <= 1 << 16  # a head: small steps, so that peeking at many members costs little budget
    """Decompress up to ``limit`` bytes. Returns (data, problem): problem is None when complete.

    With ``partial`` a stream over ``limit`` gives its first ``limit`` bytes and the problem "limit: ...", a cut or
    corrupt one what was decoded and "corrupt: ..."; without it those raise ``LimitExceeded`` / ``ArchiveError``.
    ``BudgetExhausted`` keeps what was decoded when ``partial`` too.

    ``keep`` (a list; ``decompress_keep``) receives the live decoder when the read stopped at its limit; ``resume``
    (``decompress_keep.Resumed``) finishes a read from such a decoder, or answers None: then it decodes as before.
    """
    b = budget or current()
    memo = b.memo if b.memo is not None and b.memo.top is buf else None
    if memo is not None:
        key = (codec, start, len(buf) if end is None else min(end, len(buf)), small)
        got = memo.take(key, limit, partial, b)
        if got is not None:
            return got
        spent = b.spent
    parts: list[bytes] = []
    n = 0
    problem: str | None = None
    got = resume(buf, codec, start, end, limit, b) if resume is not None else None
    if got is not None:  # the same bytes, the budget charged what decoding them again charges
        if memo is not None:
            memo.keep(key, limit, partial, got, None, b.spent - spent)
        return got, None
    bounds: list[tuple[int, int]] | None = [] if keep is not None else None
    gen = stream(buf, codec, start, end, budget=b, in_chunk=4096 if small else _IN,
                 out_chunk=limit + 1 if small else _OUT, bounds=bounds)
    try:
        for piece in gen:
            if n + len(piece) > limit:
                if keep is not None:
                    keep[:] = [gen, parts + [piece], bounds]
                parts.append(piece[:limit - n])
                n = limit
                problem = f"limit: decompresses to more than {limit} bytes"
                if not partial:
                    raise LimitExceeded(f"decompresses to more than {limit} bytes")
                break
            parts.append(piece)
            n += len(piece)
    except BudgetExhausted as exc:
        if not partial:
            raise
        problem = f"limit: {exc}"
    except ArchiveError as exc:
        if not partial:
            raise
        problem = f"corrupt: {exc}"
    data = b"".join(parts)
    if memo is not None and (problem is None or problem.startswith("limit: decompresses")):
        memo.keep(key, limit, partial, data, problem, b.spent - spent)
    return data, problem


def head(buf: Any, codec: str, n: int = 4096, *, budget: Budget | None = None) -> bytes:
    """The first ``n`` decompressed bytes (fewer if the stream is shorter or broken)."""
    data, _ = read(buf, codec, n, budget=budget, partial=True)
    return data


class Reader(io.RawIOBase):
    """A forward-only file of the decompressed stream (for ``tarfile`` stream mode), charging the budget."""

    def __init__(self, buf: Any, codec: str, budget: Budget | None = None) -> None:
        self._it = stream(buf, codec, budget=budget)
        self._pend = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._pend and not self._done:
            try:
                self._pend = next(self._it)
            except StopIteration:
                self._done = True
        n = min(len(b), len(self._pend))
        b[:n] = self._pend[:n]
        self._pend = self._pend[n:]
        return n
