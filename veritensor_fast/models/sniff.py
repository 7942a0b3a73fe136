"""Identify model/archive formats by content (first bytes), with the file name only as a hint.

``sniff`` must be cheap: it runs on every scanned file. Magic numbers decide archives and binary formats; a
pickle is recognised by a PROTO header (``\\x80`` + protocol) or, for protocol 0/1 streams without one, by a
bounded trial decode that must reach STOP or a call (so plain text is not taken for a pickle).
"""

from __future__ import annotations

import struct
from typing import Any

from veritensor_fast.models.pickle_scan import PICKLE_OPCODES

#: Extensions under which PyTorch, joblib, sklearn and friends write pickles.
PICKLE_EXTS = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".model", ".pck", ".sav",
               ".npy", ".npz", ".keras", ".h5", ".hdf5", ".gguf", ".safetensors", ".pb", ".mar", ".nemo")

ZIP_LOCAL = b"PK\x03\x04"
ZIP_EOCD = b"PK\x05\x06"


def has_model_ext(name: str) -> bool:
    return name.lower().endswith(PICKLE_EXTS)


def zip_tail(buf: Any) -> bool:
    """Whether an end-of-central-directory record sits at the end (a zip, possibly after a prefix)."""
    n = len(buf)
    if n < 22:
        return False
    if bytes(buf[n - 22:n - 18]) == ZIP_EOCD:
        return True
    tail = bytes(buf[max(0, n - 65557):n])
    return tail.rfind(ZIP_EOCD) >= 0


def sniff(head: bytes, name: str = "", size: int = -1) -> str:
    """Return one of: zip, tar, 7z, npy, gguf, safetensors, hdf5, pickle, pickle?, gzip, none.

    ``pickle?`` means "may be a protocol 0/1 pickle without PROTO": the caller confirms with a trial decode.
    """
    if not head:
        return "none"
    h0 = head[0]
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
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b" and name.lower().endswith((".tar.gz", ".tgz")):
        return "tar"
    if len(head) >= 10 and head[8:9] == b"{":
        n = struct.unpack_from("<Q", head, 0)[0]
        if 2 <= n <= 100_000_000 and (size < 0 or n + 8 <= size):
            return "safetensors"
    if name.lower().endswith(".safetensors"):
        return "safetensors"
    if h0 in PICKLE_OPCODES:
        return "pickle?"
    return "none"
