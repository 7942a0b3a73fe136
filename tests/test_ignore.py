"""Inline ignore markers: each marker, rule scoping, same line vs line before, and model findings kept."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from veritensor_fast.findings import Finding, Item, fingerprint
from veritensor_fast.ignore import InlineIgnores, find_markers
from veritensor_fast.worker import ScanOptions

from conftest import hf_token, scan_json

RULE = "huggingface.user-token"


def found_lines(tree: Path, text: str) -> list[int]:
    (tree / "f.py").write_text(text, encoding="utf-8")
    code, rep = scan_json("f.py", "--jobs", "1", cwd=tree)
    assert code in (0, 1)
    assert code == (1 if rep["findings"] else 0)
    return sorted(f["line"] for f in rep["findings"] if f["rule_id"] == RULE)


def test_markers_end_to_end(tree: Path) -> None:
    t = [hf_token() for _ in range(9)]
    text = "\n".join([
        f"a = '{t[0]}'",                                       # 1 reported
        f"b = '{t[1]}'  # veritensor-fast: ignore",             # 2 ignored (same line)
        "# veritensor-fast: ignore",                           # 3
        f"c = '{t[2]}'",                                       # 4 ignored (alone on the line before)
        f"d = '{t[3]}'  # gitleaks:allow",                     # 5 ignored
        f"e = '{t[4]}'  # pragma: allowlist secret",           # 6 ignored
        "# pragma: allowlist nextline secret",                 # 7
        f"f = '{t[5]}'",                                       # 8 ignored
        f"g = '{t[6]}'  # veritensor-fast: ignore[openai.api-key]",  # 9 reported (other rule)
        f"h = '{t[7]}'  # veritensor-fast: ignore[huggingface]",     # 10 ignored (rule-id prefix)
        f"i = '{t[8]}'",                                       # 11 reported: line 10's marker is not alone
        "",
    ])
    assert found_lines(tree, text) == [1, 9, 11]


def test_gitleaks_allow_does_not_cover_next_line(tree: Path) -> None:
    text = f"# gitleaks:allow\nx = '{hf_token()}'\n"
    assert found_lines(tree, text) == [2]


def test_no_markers_nothing_dropped(tree: Path) -> None:
    text = f"x = '{hf_token()}'\ny = '{hf_token()}'\n"
    assert found_lines(tree, text) == [1, 2]


def test_rule_scoped_exact_id(tree: Path) -> None:
    text = f"x = '{hf_token()}'  # veritensor-fast: ignore[{RULE}, other.rule]\n"
    assert found_lines(tree, text) == []


def _finding(kind: str, line: int, rule: str = RULE, location: dict[str, object] | None = None) -> Finding:
    return Finding(rule, kind, "critical", "m.bin", line, 1, "m", "r", fingerprint(rule, str(line)),
                   location=location)


@pytest.mark.parametrize("models_allowed", [False, True])
def test_model_findings_not_ignored_unless_configured(models_allowed: bool) -> None:
    buf = b"header\nstuff  # veritensor-fast: ignore\nmore\n"
    fs = [_finding("model", 2, "pickle.dangerous-global"), _finding("secret", 2)]
    post = InlineIgnores(ScanOptions(ignore_model_findings_inline=models_allowed))
    out = post(fs, buf, Item("file", "m.bin", "m.bin"))
    assert [f.kind for f in out] == ([] if models_allowed else ["model"])


def test_raw_line_location_is_used() -> None:
    buf = b'{\n "source": [\n  "x = 1  # veritensor-fast: ignore\\n",\n  "y = 2\\n"\n ]\n}\n'
    inline = InlineIgnores()
    item = Item("file", "n.ipynb", "n.ipynb")
    cell_line_1 = _finding("secret", 1, location={"cell": 0, "line": 1, "raw_line": 3})
    cell_line_2 = _finding("secret", 2, location={"cell": 0, "line": 2, "raw_line": 4})
    assert inline([cell_line_1, cell_line_2], buf, item) == [cell_line_2]


def test_find_markers_lines_and_mmap(tmp_path: Path) -> None:
    import mmap

    data = b"a\n" * 5000 + b"k = 1  # gitleaks:allow\n" + b"b\n" * 10 + b"# veritensor-fast: ignore[x.y]\n"
    p = tmp_path / "big.txt"
    p.write_bytes(data)
    with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        marks = find_markers(mm)
    assert marks is not None
    assert sorted(marks) == [5001, 5012, 5013]
    assert marks[5013][0].rules == ("x.y",)


@pytest.mark.parametrize("indent", [1, None])  # nbformat's layout, and a minified notebook (one raw line)
def test_notebook_markers(tree: Path, indent: int | None) -> None:
    pytest.importorskip("veritensor_fast.detectors.notebook")
    import json

    t = [hf_token() for _ in range(5)]
    src = [
        f"a = '{t[0]}'  # veritensor-fast: ignore\n",   # 1 ignored
        f"b = '{t[1]}'\n",                              # 2 reported (line 1's marker is not alone)
        "# veritensor-fast: ignore\n",                  # 3
        f"c = '{t[2]}'\n",                              # 4 ignored
        "# gitleaks:allow\n",                           # 5
        f"d = '{t[3]}'\n",                              # 6 reported (gitleaks:allow is same-line only)
        f"e = '{t[4]}'",                                # 7 reported
    ]
    nb = {"cells": [{"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [], "source": src}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tree / "n.ipynb").write_text(json.dumps(nb, indent=indent), encoding="utf-8")
    code, rep = scan_json("n.ipynb", "--jobs", "1", cwd=tree)
    assert code == 1
    assert sorted(f["line"] for f in rep["findings"] if f["rule_id"] == RULE) == [2, 6, 7]


def test_inline_ignores_can_be_turned_off(tree: Path) -> None:
    (tree / ".veritensor-fast.toml").write_text("inline_ignores = false\n", encoding="utf-8")
    assert found_lines(tree, f"x = '{hf_token()}'  # gitleaks:allow\n") == [1]


def test_find_markers_across_window_edges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Markers straddling the edges of the search windows of a memory map are each found once, on the right
    line, exactly as in one whole-buffer pass; past MAX_MARKERS the answer is None (keep every finding)."""
    import mmap

    from veritensor_fast import ignore as igmod

    rng = random.Random(7)
    parts: list[bytes] = []
    lines: list[int] = []
    size = 0
    for k in range(1, 16):
        prefix, needle, rest = rng.choice([(b"# ", b"veritensor-fast:", b" ignore\n"),
                                           (b"k  # ", b"gitleaks:allow", b"\n"),
                                           (b"# pragma: ", b"allowlist", b" nextline secret\n")])
        start = 4096 * k - rng.randint(1, len(needle) - 1)  # the needle straddles a 4 KiB window edge
        fill = start - len(prefix) - size
        parts += [b"x = 1\n" * (fill // 6 - 1) + b"y" * (fill % 6 + 5) + b"\n", prefix + needle + rest]
        size += len(parts[-2]) + len(parts[-1])
        lines.append(b"".join(parts).count(b"\n"))
    data = b"".join(parts)
    whole = igmod.find_markers(data)
    assert whole is not None and len({mk.line for v in whole.values() for mk in v}) == len(lines)
    assert sorted({mk.line for v in whole.values() for mk in v}) == lines
    monkeypatch.setattr(igmod, "_WINDOW", 4096)
    p = tmp_path / "big.txt"
    p.write_bytes(data)
    with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert igmod.find_markers(mm) == whole
        monkeypatch.setattr(igmod, "MAX_MARKERS", len(lines) - 1)
        assert igmod.find_markers(mm) is None
        monkeypatch.setattr(igmod, "MAX_MARKERS", len(lines))
        assert igmod.find_markers(mm) == whole
