"""Tokens written in hex: ``bytes.fromhex("68665f...")`` in a Python source, ``xxd -p`` output in a text file.

The database holds every rule's required literals in hex; the hex run around a hit is decoded at both
alignments and matched. Before, no hex-encoded token was found (betterleaks 2.0 finds them).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import hf_token, scan_json


def test_hex_tokens_found(tree: Path) -> None:
    t = hf_token()
    (tree / "load.py").write_text(f'TOKEN = bytes.fromhex("{t.encode().hex()}").decode()\n')
    (tree / "dump.txt").write_text(f"header\nx{('export HF_TOKEN=' + t).encode().hex().upper()}\n")
    code, rep = scan_json(tree)
    got = sorted((f["path"], f["rule_id"], f["line"], f["column"], f.get("decoded")) for f in rep["findings"])
    # dump.txt: the token's hex starts after "x" and the 16 bytes "export HF_TOKEN=" (32 hex digits)
    assert got == [("dump.txt", "huggingface.user-token", 2, 34, "hex"),
                   ("load.py", "huggingface.user-token", 1, 24, "hex")]
    assert rep["errors"] == [] and code == 1


def test_hex_digests_are_quiet(tree: Path) -> None:
    lines = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    (tree / "SHA256SUMS").write_text("".join(f"{h}  f{i}.bin\n" for i, h in enumerate(lines)))
    (tree / "lock.txt").write_text("".join(lines))
    code, rep = scan_json(tree)
    assert (code, rep["findings"], rep["errors"]) == (0, [], [])
