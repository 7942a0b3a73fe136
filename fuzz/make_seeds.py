"""Write seed corpora for fuzz/scan_target.py: one folder per target under OUT (default fuzz/corpus), from
valid files (the demo corpus, notebooks, archives built with the standard writers, pickles of plain data,
npy/safetensors/GGUF files). Only writes files; loads nothing it writes.

    python3 fuzz/make_seeds.py [OUT]
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import py7zr

ROOT = Path(__file__).resolve().parents[1]
TOK = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE2f"  # synthetic, never a real token


def notebook() -> bytes:
    return json.dumps({"cells": [{"cell_type": "code", "id": "a", "metadata": {}, "execution_count": 1,
                                  "source": ["import os\n", f"os.environ['HF_TOKEN'] = '{TOK}'\n"],
                                  "outputs": [{"output_type": "stream", "name": "stdout", "text": ["ok\n"]}]},
                                 {"cell_type": "markdown", "metadata": {}, "source": "# t"}],
                       "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5},
                      indent=1).encode()


def members() -> list[tuple[str, bytes]]:
    return [("a.env", f"HF_TOKEN={TOK}\n".encode()), ("n.ipynb", notebook()),
            ("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))]


def zips() -> list[bytes]:
    out = []
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        bio = io.BytesIO()
        with zipfile.ZipFile(bio, "w", method) as z:
            for n, d in members():
                z.writestr(n, d)
        out.append(bio.getvalue())
    return out


def tars() -> list[bytes]:
    out = []
    for mode in ("w", "w:gz"):
        bio = io.BytesIO()
        with tarfile.open(fileobj=bio, mode=mode) as t:  # type: ignore[call-overload]
            for n, d in members():
                ti = tarfile.TarInfo(n)
                ti.size = len(d)
                t.addfile(ti, io.BytesIO(d))
        out.append(bio.getvalue())
    return out


def sevenz() -> list[bytes]:
    bio = io.BytesIO()
    with py7zr.SevenZipFile(bio, "w") as z:
        for n, d in members():
            z.writestr(d, n)
    return [bio.getvalue()]


def npys() -> list[bytes]:
    out = []
    for arr in (np.arange(6, dtype="<i4").reshape(2, 3), np.array([{"a": 1}, "x"], dtype=object)):
        bio = io.BytesIO()
        np.save(bio, arr, allow_pickle=True)
        out.append(bio.getvalue())
    return out


def safetensors() -> list[bytes]:
    h = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "__metadata__": {"format": "pt"}}).encode()
    return [struct.pack("<Q", len(h)) + h + b"\0" * 8]


def gguf() -> list[bytes]:
    def s(b: bytes) -> bytes:
        return struct.pack("<Q", len(b)) + b
    kv = s(b"general.name") + struct.pack("<I", 8) + s(b"m") + s(b"tokenizer.chat_template") + struct.pack(
        "<I", 8) + s(b"{{ messages }}")
    t = s(b"w") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<IQ", 0, 0)
    raw = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + kv + t
    return [raw + b"\0" * (-len(raw) % 32) + b"\0" * 16]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus")
    demo = [p.read_bytes() for p in sorted((ROOT / "corpora" / "demo").rglob("*")) if p.is_file()]
    seeds = {
        "notebook": [notebook(), *[p.read_bytes() for p in (ROOT / "corpora" / "demo").rglob("*.ipynb")]],
        "zip": zips(), "tar": tars(), "gzip": [gzip.compress(f"HF_TOKEN={TOK}\n".encode(), mtime=0)],
        "7z": sevenz(),
        "pickle": [pickle.dumps(v, protocol=p) for p in range(6) for v in ({"a": [1, 2.5, "x"]}, (None, b"b"))],
        "npy": npys(), "safetensors": safetensors(), "gguf": gguf(),
    }
    seeds["any"] = [d for v in seeds.values() for d in v] + demo
    for target, items in seeds.items():
        d = out / target
        d.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(items):
            (d / f"seed{i:03d}").write_bytes(data)
    print(f"wrote {sum(map(len, seeds.values()))} seeds under {out}")


if __name__ == "__main__":
    main()
