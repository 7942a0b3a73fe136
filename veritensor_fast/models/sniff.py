"""Identify model/archive formats by content (first bytes), with the file name only as a hint.

``sniff`` must be cheap: it runs on every scanned file. Magic numbers decide archives and binary formats; a
pickle is recognised by a PROTO header (``\\x80`` + protocol) or, for protocol 0/1 streams without one, by a
bounded trial decode that must reach STOP or a call (so plain text is not taken for a pickle). Before that trial,
``pickle01_may_run`` rejects (exactly, see there) the many text files whose first byte merely happens to be an
opcode. This module imports nothing heavy: the detector imports it at start-up, the analysers only on demand.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any

from veritensor_fast.randread import unpack_at

#: Every opcode byte the pickle walker (``pickle_scan``) decodes; any other byte is an invalid opcode.
PICKLE_OPCODES = frozenset(b"(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrstu)GBC" + bytes(range(0x80, 0x99)))

#: Bytes of a non-model file that the protocol 0/1 trial decode looks at.
TRIAL_BYTES = 1 << 20

#: Extensions under which PyTorch, joblib, sklearn and friends write pickles.
PICKLE_EXTS = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".model", ".pck", ".sav",
               ".npy", ".npz", ".keras", ".h5", ".hdf5", ".gguf", ".safetensors", ".pb", ".mar", ".nemo", ".onnx")

ZIP_LOCAL = b"PK\x03\x04"
ZIP_EOCD = b"PK\x05\x06"


_EXT_SET = frozenset(PICKLE_EXTS)  # each has one dot, at its start: the text from the last dot decides


def has_model_ext(name: str) -> bool:
    i = name.rfind(".")
    return i >= 0 and name[i:].lower() in _EXT_SET


def zip_tail(buf: Any) -> bool:
    """Whether an end-of-central-directory record sits at the end (a zip, possibly after a prefix)."""
    n = len(buf)
    if n < 22:
        return False
    if buf[n - 22:n - 18] == ZIP_EOCD:
        return True
    lo = max(0, n - 65557)
    if hasattr(buf, "rfind"):  # bytes, bytearray, mmap: no copy of the tail
        return bool(buf.rfind(ZIP_EOCD, lo, n) >= 0)
    return bytes(buf[lo:n]).rfind(ZIP_EOCD) >= 0


_MAGIC_FIRST = frozenset(b"P\x807\x93G\x89\x1f")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def hdf5_superblock(buf: Any) -> int:
    """Where the HDF5 library finds the superblock (``H5FD_locate_signature``): at 0, or after a user block at
    512, 1024, 2048, ... below the file's size; -1 when nowhere. A user block may hold any bytes (``h5py.File(...,
    userblock_size=512)``, ``h5jam``), so a Keras ``.h5`` need not start with the signature."""
    n = len(buf)
    if type(buf) is bytes:  # every small file and blob: no slice copied
        if buf.startswith(HDF5_SIGNATURE):
            return 0
        at = 512
        while at + 8 <= n:
            if buf.startswith(HDF5_SIGNATURE, at):
                return at
            at <<= 1
        return -1
    # a large file's view (``randread.PreadView``): 8 bytes read at each place, none of its cached 1 MiB blocks
    peek = getattr(buf, "peek", None) or (lambda a, k: bytes(buf[a:a + k]))
    if peek(0, 8) == HDF5_SIGNATURE:
        return 0
    at = 512
    while at + 8 <= n:
        if peek(at, 8) == HDF5_SIGNATURE:
            return at
        at <<= 1
    return -1


def hdf5_after_userblock(buf: Any) -> bool:
    """Whether ``buf`` is an HDF5 file whose superblock follows a user block (``hdf5_superblock(buf) > 0``).

    Asked of every file that sniffs as no model format, whatever its name: tf.keras 2's ``load_model`` opens any
    name ``h5py.is_hdf5`` accepts, and the library finds the superblock behind a user block of any bytes. A file
    under 520 bytes costs one comparison, any other small file a strided slice."""
    if len(buf) < 520:
        return False
    # every place the library looks is a multiple of 512: a buffer with no signature byte at any is none (two C
    # calls, no loop: the common answer for every file of a tree)
    return (type(buf) is not bytes or 0x89 in buf[512::512]) and hdf5_superblock(buf) > 0


def compression_of(head: bytes) -> str | None:
    """The codec of a compressed stream starting with ``head`` (gzip, bz2, xz, zstd, lz4, zlib, lzma), or None.

    gzip/bz2/xz/zstd/lz4 have strong magic numbers; zlib (two header bytes with a checksum, no preset
    dictionary) and lzma-alone (``]\\0\\0`` properties) are weak and confirmed by decoding.
    """
    if len(head) < 4:
        return None
    h0 = head[0]
    if h0 == 0x1F:
        return "gzip" if head[1:3] == b"\x8b\x08" else None
    if h0 == 0x42:
        return "bz2" if head[1:3] == b"Zh" and 0x31 <= head[3] <= 0x39 and head[4:10] in (
            b"1AY&SY", b"\x17rE8P\x90") else None
    if h0 == 0xFD:
        return "xz" if head[:6] == b"\xfd7zXZ\x00" else None
    if h0 == 0x28:
        return "zstd" if head[:4] == b"\x28\xb5\x2f\xfd" else None
    if h0 == 0x04:
        return "lz4" if head[:4] == b"\x04\x22\x4d\x18" else None
    if h0 == 0x78:
        return "zlib" if head[1] in (0x01, 0x5E, 0x9C, 0xDA) else None
    if h0 == 0x5D and len(head) >= 13:  # lzma-alone: props 0x5D (lc3 lp0 pb2), dict size, 64-bit size or -1
        dic = int.from_bytes(head[1:5], "little")
        size = int.from_bytes(head[5:13], "little")
        if (1 << 12) <= dic <= (3 << 29) and (dic & (dic - 1) == 0 or (dic // 3) & (dic // 3 - 1) == 0) and (
                size == (1 << 64) - 1 or size < (1 << 48)):
            return "lzma"
    return None


def sniff(head: bytes, name: str = "", size: int = -1) -> str:
    """Return one of: zip, tar, 7z, npy, gguf, safetensors, hdf5, pickle, pickle?, compressed, none.

    ``compressed`` is a gzip/bz2/xz/zstd/lz4/zlib/lzma stream (``compression_of``): its content decides the rest.

    ``pickle?`` means "may be a protocol 0/1 pickle without PROTO": the caller confirms with
    ``pickle01_may_run`` and then a trial decode.
    """
    if not head:
        return "none"
    h0 = head[0]
    if h0 in _MAGIC_FIRST:  # every magic below starts with one of these bytes
        if head[:4] in (ZIP_LOCAL, ZIP_EOCD, b"PK\x07\x08"):
            return "zip"
        if h0 == 0x80 and len(head) > 1 and head[1] <= 5:
            return "pickle"
        if head[:6] == b"7z\xbc\xaf\x27\x1c":
            return "7z"
        if head[:6] == b"\x93NUMPY":
            return "npy"
        if head[:4] == b"GGUF":
            return "gguf"
        if head[:8] == HDF5_SIGNATURE:
            return "hdf5"
    if head.startswith(b"ustar", 257):
        return "tar"
    if h0 == 0x1F and head[:2] == b"\x1f\x8b" and name.lower().endswith((".tar.gz", ".tgz")):
        return "tar"
    if compression_of(head) is not None:
        return "compressed"
    if head.startswith(b"{", 8) and len(head) >= 10:  # safetensors: JSON header after its u64 length
        n = unpack_at("<Q", head, 0)[0]
        if 2 <= n <= 100_000_000 and (size < 0 or n + 8 <= size):
            return "safetensors"
    if name[-1:] in ("s", "S") and name[-12:].lower() == ".safetensors":
        return "safetensors"
    if h0 in PICKLE_OPCODES:
        return "pickle?"
    return "none"


# First opcodes that make the walker (``pickle_scan``) stop at once in a fresh stream (empty stack, no MARK, empty
# memo, protocol 0): they pop, need a MARK or a memo entry, or (PROTO here) carry a protocol above 5.
_DEAD_FIRST = frozenset(b".012QRabdeghjlopqrstu" + bytes([0x81, 0x85, 0x86, 0x87, 0x90, 0x91, 0x92, 0x93, 0x94,
                                                          0x98]))
# First opcodes that always succeed, or whose analysis is not worth replicating here (FRAME, EXT*).
_LIVE_FIRST = frozenset(b"(N)]}" + bytes([0x88, 0x89, 0x8F, 0x95, 0x97, 0x82, 0x83, 0x84]))
_LINE_FIRST = frozenset(b"IFLPV")  # newline-terminated argument the walker reads leniently
_FIXED_FIRST = {0x4B: 1, 0x4D: 2, 0x4A: 4, 0x47: 8}  # BININT1, BININT2, BININT, BINFLOAT: argument size
_LEN1_FIRST = frozenset(b"UC" + bytes([0x8C, 0x8A]))  # 1-byte length, then that many bytes
_LEN4_FIRST = {0x54: "<i", 0x58: "<I", 0x42: "<I", 0x8B: "<i"}  # BINSTRING, BINUNICODE, BINBYTES, LONG4
_LEN8_FIRST = frozenset(b"\x8d\x8e\x96")  # BINUNICODE8, BINBYTES8, BYTEARRAY8


def pickle01_may_run(buf: Any, end: int = -1) -> bool:
    """False only if the pickle walker's *first* opcode over ``buf[:end]`` is certain to fail.

    A stream whose first opcode fails holds no global, no call and no STOP, so the walker (and the trial decode
    built on it) can report nothing for it. This mirrors the walker exactly for the opcodes it rejects and says
    True (analyse it) whenever in doubt, so it never hides what the walker would find. Text files start with
    ``import``, ``class``, ``def``, ``(``, ``#``... and nearly all fail here: ``i``/``c`` need two
    ``module\nname\n`` lines that are dotted identifiers, ``S`` a quoted line, most other letters pop from the
    empty stack or need a MARK.
    """
    n = len(buf) if end < 0 else min(end, len(buf))
    if n < 1:
        return False
    op = buf[0]
    if op in _DEAD_FIRST:
        return False
    if op in _LIVE_FIRST:
        return True
    if op == 0x63 or op == 0x69:  # GLOBAL, INST: "module\nname\n", both importable dotted names
        i = buf.find(b"\n", 1, n)
        if i < 0 or not _dotted(buf[1:i]):
            return False
        j = buf.find(b"\n", i + 1, n)
        # an invalid name still makes pickle import the module first: the walker reports a dangerous one
        return j >= 0 and (_dotted(buf[i + 1:j]) or _dangerous_module(buf[1:i]))
    if op == 0x53:  # STRING: a quoted line ('...' or "...")
        i = buf.find(b"\n", 1, n)
        if i < 0:
            return False
        if i - 1 > 1 << 20:
            return True
        return i - 1 >= 2 and buf[1] == buf[i - 1] and buf[1] in (0x27, 0x22)
    if op in _LINE_FIRST:
        return buf.find(b"\n", 1, n) >= 0
    if op in _FIXED_FIRST:
        return 1 + _FIXED_FIRST[op] <= n
    if op in _LEN1_FIRST:
        return n >= 2 and 2 + buf[1] <= n
    if op in _LEN4_FIRST:
        if n < 5:
            return False
        k = int(unpack_at(_LEN4_FIRST[op], buf, 1)[0])
        return 0 <= k and 5 + k <= n  # the walker rejects a negative length
    if op in _LEN8_FIRST:
        return n >= 9 and 9 + int(unpack_at("<Q", buf, 1)[0]) <= n
    if op == 0x80:  # PROTO: the walker accepts protocols 0-5 only
        return n >= 2 and buf[1] <= 5
    return op in PICKLE_OPCODES  # not an opcode: the walker stops ("invalid opcode"); unknown: analyse


def _name(raw: bytes) -> str:
    """A GLOBAL/INST line as the walker decodes it (UTF-8, else Latin-1)."""
    raw = bytes(raw)  # a memoryview slice has no decode
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _dotted(raw: bytes) -> bool:
    """The walker's test for a GLOBAL/INST name line: every dotted part an identifier."""
    return all(p.isidentifier() for p in _name(raw).split("."))


def _dangerous_module(raw: bytes) -> bool:
    """The walker's test for a GLOBAL/INST whose name is invalid: is importing the module itself dangerous?"""
    from veritensor_fast.models.allowlist import dangerous_reason  # only for this rare first opcode

    return dangerous_reason(_name(raw), "x") is not None


# ---- PyTorch Distributed Checkpoint directories ------------------------------------------------------------
# Files of a PyTorch Distributed Checkpoint directory, whatever their names.
#
# ``torch.distributed.checkpoint``'s ``FileSystemReader`` opens, for each item, the relative path its ``.metadata``
# names (``self.path / relative_path``) and ``torch.load``s the (offset, length) slice named there. The writer
# calls its files ``__R_N.distcp``, but a hostile ``.metadata`` may name ``weights.bin`` or ``shard0``: a file that
# neither its name nor its first bytes route to the model detector. So every regular file in a directory that holds
# a ``.metadata`` pickle is analysed as a DCP storage file (``Analyzer.analyze(..., dcp=True)``: every complete zip
# archive and every legacy ``torch.save`` stream at any offset). The paths inside ``.metadata`` are never read
# or followed: only the files the scan itself lists are opened, so nothing outside the scanned tree is reached.
#
# The answer is per directory: which of its entries are named as metadata (``.metadata``, or any rank's
# ``__N.metadata``: without rank coordination each rank writes its own and reads it with ``read_metadata(rank=N)``,
# and a node's directory may hold no rank 0 at all), and a two-byte read of each. The names come from one listing,
# kept with the directory's ``st_mtime_ns`` (an entry added, removed or renamed changes it) and taken again only
# when that changed (:func:`listed_metadata_names`). The walk's hot path (:class:`DcpDirs`) remembers its answer
# for one batch (cleared by the model detector's ``quiet_batch``), so a long-lived worker (Dask) sees a
# ``.metadata`` added or rewritten since.

#: The name ``FileSystemWriter`` gives the checkpoint's metadata (``torch.distributed.checkpoint.filesystem``).
METADATA = ".metadata"


def is_metadata_name(name: str) -> bool:
    """``.metadata`` or a rank's ``__N.metadata``."""
    return name == METADATA or (name.startswith("__") and name.endswith(METADATA) and name[2:-9].isdigit())


def metadata_names(directory: str) -> tuple[str, ...]:
    """The entries of ``directory`` named as checkpoint metadata (one listing; none when it cannot be listed)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return ()
    if METADATA not in "/".join(names):  # one C-level search: the answer for nearly every directory
        return ()
    return tuple(n for n in names if n[-9:] == METADATA and is_metadata_name(n))


#: Directories' metadata names by directory, with the ``st_mtime_ns`` they were listed at (-1: listed within 2 s
#: of a change, listed again next time: a file system with coarse times may show the same mtime after one more
#: entry) and the :func:`_clock` time before which a changed directory is not listed again. Kept for the process:
#: each answer is checked against a ``stat`` of the directory first.
_LISTED: dict[str, tuple[int, tuple[str, ...], int]] = {}
#: Directories remembered in :data:`_LISTED`; past that it starts afresh.
MAX_LISTED = 4096
#: A listing that took longer than this (a huge directory, a slow file system) is not taken again, however the
#: directory changes, until ``RELIST_AFTER`` times its own time has passed: a directory written to all through a
#: scan was listed for each of its batches (quadratic in its size); now listing is at most a tenth of the time
#: spent, and its answer at most that old. A cheaper listing is taken again at each change.
RELIST_SLOW_NS = 1_000_000
RELIST_AFTER = 10
_clock = time.monotonic_ns


def listed_metadata_names(directory: str) -> tuple[str, ...]:
    """:func:`metadata_names`, listed again only when the directory's ``st_mtime_ns`` changed (one ``stat``) and,
    after a slow listing, not before ``RELIST_AFTER`` times its time passed."""
    try:
        mtime = os.stat(directory).st_mtime_ns
    except OSError:
        return ()
    got = _LISTED.get(directory)
    if got is None or (got[0] != mtime and _clock() >= got[2]):
        if len(_LISTED) >= MAX_LISTED:
            _LISTED.clear()
        fresh = time.time_ns() - mtime < 2_000_000_000
        t0 = _clock()
        names = metadata_names(directory)
        took = _clock() - t0
        got = _LISTED[directory] = (-1 if fresh else mtime, names, t0 + (RELIST_AFTER + 1) * took
                                    if took > RELIST_SLOW_NS else 0)
    return got[1]


def holds_metadata(directory: str) -> bool:
    """Whether ``directory`` holds a regular file ``.metadata`` or ``__N.metadata`` (any rank) that starts as a
    pickle of protocol 2 or later (``FileSystemWriter`` writes it with ``pickle.dump``; an Eclipse workspace's
    ``.metadata`` is a directory): a ``stat`` of the directory, its listing when it changed, a two-byte read of
    each metadata file."""
    return any(_metadata_pickle(f"{directory}/{n}") for n in listed_metadata_names(directory))


def _metadata_pickle(path: str) -> bool:
    if not os.access(path, os.F_OK):  # the common answer, without an exception raised and caught
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # a FIFO or device is never read (O_NONBLOCK: opening a FIFO does not wait)
        head = os.read(fd, 2)
    except OSError:
        return False
    finally:
        os.close(fd)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def is_storage_file(key: str) -> bool:
    """Whether the filesystem file ``key`` sits in a checkpoint directory (uncached: one look per call)."""
    return not is_metadata_name(os.path.basename(key)) and holds_metadata(os.path.dirname(key) or ".")


class DcpDirs:
    """:func:`is_storage_file` for the files of a walk: one answer per directory and batch (the hot path), from
    the directory's metadata names (:func:`listed_metadata_names`: a ``stat`` of the directory, and its listing once
    per process while its ``st_mtime_ns`` holds) and a two-byte read of each. Any rank's ``__N.metadata`` is seen
    whatever batch, task or process lists it: a storage file under another name scanned in an earlier batch than
    its rank-local metadata, or alone as a large file's own task, was missed while only ``.metadata`` and
    ``__0.metadata`` were probed and the batches' names remembered."""

    __slots__ = ("_seen",)

    #: Directories remembered; past that the memory starts afresh (a walk lists a directory's files together).
    MAX_DIRS = 4096

    def __init__(self) -> None:
        self._seen: dict[str, bool] = {}

    def clear(self) -> None:
        self._seen.clear()

    def storage_file(self, key: str) -> bool:
        cut = key.rfind("/")
        directory = key[:cut] if cut > 0 else ("/" if cut == 0 else ".")
        found = self._seen.get(directory)
        if found is None:
            if len(self._seen) >= self.MAX_DIRS:
                self._seen.clear()
            found = self._seen[directory] = holds_metadata(directory)
        return found and not is_metadata_name(key[cut + 1:])
