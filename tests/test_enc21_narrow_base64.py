"""Base64 wrapped narrower than 40 columns (``base64 -w 32``): on 413ad37 a wrapped blob's lines were joined
only at 40 columns or more, so a token in a blob wrapped at 28-36 columns was missed; 64 (``openssl base64``)
and 76 (MIME) were found. Blobs come from the real ``base64`` of coreutils."""
from __future__ import annotations

import base64
import random
import subprocess
from pathlib import Path

from tests.conftest import hf_token, scan_json

HF = "huggingface.user-token"


def _coreutils(data: bytes, width: int) -> bytes:
    return subprocess.run(["base64", "-w", str(width)], input=data, capture_output=True, check=True).stdout


def _found(tree: Path) -> dict[str, list[tuple[str, int, int, str | None]]]:
    _code, rep = scan_json(tree)
    assert rep["errors"] == []
    out: dict[str, list[tuple[str, int, int, str | None]]] = {}
    for f in rep["findings"]:
        out.setdefault(f["path"], []).append((f["rule_id"], f["line"], f["column"], f.get("decoded")))
    return out


def test_blobs_wrapped_at_28_to_36_columns(tree: Path) -> None:
    t = hf_token(random.Random(21))
    blob = f"config:\n  key: {t}\n  other: value\n".encode()
    for w in (28, 32, 36, 64):
        (tree / f"w{w}.txt").write_bytes(b"payload:\n" + _coreutils(blob, w))
    (tree / "w32.yaml").write_bytes(b"blob: |\n" + b"".join(b"  " + x + b"\n" for x in
                                                            _coreutils(blob, 32).splitlines()))
    got = _found(tree)
    assert got == {f"w{w}.txt": [(HF, 2, 1, "base64")] for w in (28, 32, 36, 64)} | {
        "w32.yaml": [(HF, 2, 3, "base64")]}


def test_narrow_runs_one_per_line_are_not_joined(tree: Path) -> None:
    # separate values one per line, 30 columns (not a multiple of 4): each decoded on its own
    rng = random.Random(22)
    ids = [base64.urlsafe_b64encode(rng.randbytes(30)).rstrip(b"=")[:30] for _ in range(3)]
    t = hf_token(random.Random(23))
    blob = base64.b64encode(f"token={t}\n".encode())
    (tree / "ids.txt").write_bytes(b"\n".join(ids) + b"\n" + blob + b"\n")
    assert _found(tree) == {"ids.txt": [(HF, 4, 1, "base64")]}
