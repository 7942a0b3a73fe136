"""A base64 run on one line longer than ``MAX_ENCODED`` (1 MiB) that holds a needle hit is decoded in windows
around each hit; before, the whole run was skipped without a word (exit 0), whatever it hid.

Real producers of such lines: ``base64 -w 0`` (coreutils), ``data:`` URIs inlined by bundlers and
``nbconvert --embed-images`` (``base64.b64encode`` of the whole file). Line-wrapped blobs (MIME, PEM) were
already decoded in chunks of at most 1 MiB and are unchanged.
"""
from __future__ import annotations

import base64
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import hf_token, scan_json

#: The scanner runs under an address-space cap (these inputs test its bounds)
CAP = 2_000_000_000

HF = "huggingface.user-token"


def _found(tree: Path) -> tuple[int, list[tuple[str, str, int, int, str | None]]]:
    code, rep = scan_json(tree, cap=CAP)
    assert rep["errors"] == []
    return code, sorted((f["path"], f["rule_id"], f["line"], f["column"], f.get("decoded")) for f in rep["findings"])


@pytest.mark.skipif(not shutil.which("base64"), reason="needs coreutils base64")
def test_base64_w0_output_over_a_mebibyte(tree: Path) -> None:
    t = hf_token(random.Random(21))
    raw = tree.parent / "payload.bin"
    raw.write_bytes(random.Random(1).randbytes(1_300_000) + f"\nHF_TOKEN={t}\n".encode())
    enc = subprocess.run(["base64", "-w", "0", str(raw)], capture_output=True, check=True).stdout
    assert b"\n" not in enc.rstrip(b"\n") and len(enc) > 1 << 20
    (tree / "blob.txt").write_bytes(b"payload: " + enc + b"\n")
    assert _found(tree) == (1, [("blob.txt", HF, 1, 10, "base64")])


def test_data_uri_with_decoys_and_tokens_deep_inside(tree: Path) -> None:
    """Tokens at 0.2, 1.5 and 2.9 MB into a 3 MB run, needles of other tokens' prefixes in between (decoys)."""
    rng = random.Random(22)
    toks = [hf_token(rng) for _ in range(3)]
    parts = []
    for i, t in enumerate(toks):
        parts.append(rng.randbytes([150_000, 950_000, 1_000_000][i]))
        parts.append(b"hf_ decoy hf_" * 50)
        parts.append(f"\ntoken={t}\n".encode())
    parts.append(rng.randbytes(3_000))
    b64 = base64.b64encode(b"".join(parts)).decode()
    line = f'<img alt="x" src="data:image/png;base64,{b64}">'
    (tree / "page.html").write_text(f"<html><body>\n{line}\n</body></html>\n")
    code, got = _found(tree)
    assert code == 1
    # one finding per distinct token, all at the blob's first character
    assert got == sorted([("page.html", HF, 2, line.index(b64) + 1, "base64")] * 3)


def test_long_random_runs_stay_quiet(tree: Path) -> None:
    b64 = base64.b64encode(os.urandom(2_500_000)).decode()
    (tree / "img.html").write_text(f'<img src="data:image/png;base64,{b64}">\n')
    assert _found(tree) == (0, [])
