"""Large files: which ones a detector must read whole (``wants_whole_file``), how one read in windows is split into
parts for several pool tasks (``split_file``), and the window-by-window scan itself (``scan_windows``): memory is
one window, whatever the file's size. Moved out of ``worker`` (one job per module); ``worker`` re-exports them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from veritensor_fast import buffers
from veritensor_fast.buffers import LargeFile, LineCarry
from veritensor_fast.findings import Finding, Item

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Detectors that need a whole file (random access, a parse of all of it): never run on a window.
WHOLE_FILE_DETECTORS = ("model", "notebook", "archive", "python-ast")
#: bzip2 and xz streams (gzip, zip, tar and 7z are recognised by ``sniff``).
_COMPRESSED = (b"BZh", b"\xfd7zXZ\x00")


def wants_whole_file(big: LargeFile, item: Item) -> bool:
    """Whether a large file is (or may be) a structured format: a model, an archive or compressed stream, a
    notebook, UTF-16 text, a polyglot with a zip at its end. Then the detectors that need random access read
    it through ``randread.PreadView`` (``pread``, never a memory map); anything else (text, logs, unknown binary data) is scanned in windows."""
    from veritensor_fast.detectors.text import utf16_encoding
    from veritensor_fast.models.sniff import TRIAL_BYTES, ZIP_EOCD, has_model_ext, pickle01_may_run, sniff

    head = big.pread(0, 4096)
    kind = sniff(head, item.path, big.size)
    if kind == "pickle?":  # as the model detector decides: text whose first opcode cannot run is text
        kind = "pickle?" if pickle01_may_run(big.pread(0, TRIAL_BYTES), TRIAL_BYTES) else "none"
    if has_model_ext(item.path) or kind != "none" or head.startswith(_COMPRESSED):
        return True
    from veritensor_fast.models.sniff import is_storage_file

    if item.kind == "file" and is_storage_file(item.key):
        return True  # a Distributed Checkpoint's file under any name (models.sniff.is_storage_file)
    if utf16_encoding(head) is not None or head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"["):
        return True  # UTF-16 text (decoded whole), or JSON that may be a notebook
    from veritensor_fast.models.sniff import hdf5_after_userblock
    from veritensor_fast.randread import PreadView

    if hdf5_after_userblock(PreadView(big)):
        return True  # HDF5 behind a user block, any name: 8 bytes read at 512, 1024, 2048, ...
    return ZIP_EOCD in big.pread(max(0, big.size - 65557), 65557)  # a zip appended to something else


def split_file(item: Item, big: LargeFile, span: int, more: list[Item]) -> Item:
    """A ``file`` scanned in windows and bigger than ``span`` bytes, in parts of about ``span`` bytes (whole
    windows): the first part is returned (scanned by this task), the others go to ``more`` (a task each, so
    other workers scan them meanwhile: one 434 MB library is no longer one worker's 0.25 s). Any other item is
    returned as it is. Each part finds exactly what its windows find in a whole-file scan (``scan_windows``)."""
    try:
        if item.kind != "file" or big.size <= span or wants_whole_file(big, item):
            return item
    except OSError:  # a read error: the whole file's scan reports it
        return item
    window = buffers.WINDOW
    step = max(window, span - span % window)
    # each part carries the version split (size, mtime): a part that opens another one says so (``part_changed``)
    parts = [dataclasses.replace(item, span=(a, min(a + step, big.size), *big.version))
             for a in range(0, big.size, step)]
    more.extend(parts[1:])
    return parts[0]


def scan_windows(ctx: WorkerContext, big: LargeFile, item: Item, scan: ItemScan,
                 skip: tuple[str, ...] = WHOLE_FILE_DETECTORS) -> list[Finding]:
    """Scan a large plain-text file window by window: memory is one window, whatever the file's size.

    Each window runs the text-level detectors like a small file (its findings finished and post-processed
    against the window, which holds the lines around them); lines and columns are then made absolute from
    a running count carried from window to window (no line is ever materialised)."""
    out: list[Finding] = []
    seen: set[tuple[str, int, str]] = set()
    errors: set[tuple[str, str]] = set()
    carry = LineCarry(big)  # line number, and characters since that line's start, where a window starts
    file_head = big.pread(0, 4096)
    for start, lo, hi, data in big.windows(item.span):
        if isinstance(data, int):  # a window before this task's part of a split file: only its length
            carry.window(start, data)
            continue
        carry.window(start, len(data))
        ws = type(scan)(ctx, item)  # an ItemScan per window (``worker`` imports this module: no import back)
        ws.keep = (lo - start, hi - start)
        ctx.scan_buffer(data, item, ws, skip=skip, head=file_head)  # every window is judged as the file is
        found = ws.finish(data)
        line0, chars0 = carry.at() if found else (1, 0)  # counted only for a window with findings
        for f in found:
            line = line0 + f.line - 1
            col = f.column + chars0 if f.line == 1 else f.column
            key = (f.fingerprint, line, repr(sorted(f.location.items())) if f.location else "")
            if key not in seen:
                seen.add(key)
                out.append(dataclasses.replace(f, line=line, column=col))
        for e in ws.errors:
            if (e.reason, e.kind) not in errors:
                errors.add((e.reason, e.kind))
                scan.errors.append(e)
        # drop this window (and the scan that holds it) before the next one is read: the next window's bytes
        # then reuse its memory instead of faulting fresh pages in (two windows alive at once grew the heap)
        del data, ws, found
    return out
