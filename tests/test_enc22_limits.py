"""The encoded passes never skip input silently, and their cost follows the file, not its square.

- ``escaped.scan_hits`` looked at no more than 4,096 escaped runs per buffer and dropped the rest without a word:
  a file that put 5,000 escaped letters before ``"\\u0068f_…"`` hid the token, exit 0. The bound is now
  ``MAX_RUNS`` (65,536: each run costs a few microseconds since the run is looked for from its own stretch,
  not from the window's start), and past it a ``limit`` error names the line decoding stopped at (exit 3).
- ``B64Decoder.candidates_at`` looked for each hit's line start from the hit back to the start of the buffer:
  one long line with many needle hits cost its length per hit (an 8 MB line of ``"\\u0041b"`` took 39 CPU-s).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import hf_token, scan_json
from veritensor_fast.detectors import escaped
from veritensor_fast.detectors.b64_scan import B64Decoder
from veritensor_fast.matcher import SecretMatcher
from veritensor_fast.worker import ScanOptions

#: The scanner runs under an address-space cap (these inputs test its bounds)
CAP = 2_000_000_000

HF = "huggingface.user-token"


def _esc_token(t: str) -> str:
    return '"\\u0068f_' + t[3:] + '"'


def _report(tree: Path) -> tuple[int, list[tuple[str, int, str | None]], list[dict[str, Any]]]:
    code, rep = scan_json(tree, cap=CAP)
    return code, [(f["rule_id"], f["line"], f.get("decoded")) for f in rep["findings"]], rep["errors"]


def test_token_after_thousands_of_escaped_runs_is_found(tree: Path) -> None:
    """5,000 escaped runs before the token: past the old bound of 4,096, silently skipped (exit 0) before."""
    t = hf_token()
    (tree / "esc.json").write_text('"\\u0041b" ' * 5000 + "\n" + _esc_token(t) + "\n")
    code, found, errors = _report(tree)
    assert (code, found, errors) == (1, [(HF, 2, "escapes")], [])


def test_escaped_runs_past_the_bound_are_a_limit_error(tree: Path) -> None:
    """More runs than ``MAX_RUNS`` before the token: the rest is not decoded, and the report says so (exit 3)."""
    t = hf_token()
    n = escaped.MAX_RUNS + 10
    (tree / "esc.json").write_text('"\\u0041b" ' * n + "\n" + _esc_token(t) + "\n")
    # hex hits that decode to nothing count too (each costs a look), as in a Python source
    (tree / "hex.py").write_text("x = 1\n" + "68665f4142 " * n + "\n")
    (tree / "plain.json").write_text(f'{{"t": "{hf_token()}"}}\n')  # every other finding kept
    code, rep = scan_json(tree, cap=CAP)
    assert code == 1  # findings win over incomplete
    assert sorted((f["path"], f["line"], f.get("decoded")) for f in rep["findings"]) == [("plain.json", 1, None)]
    errs = sorted((e["path"], e["kind"], e["reason"]) for e in rep["errors"])
    assert [(p, k) for p, k, _r in errs] == [("esc.json", "limit"), ("hex.py", "limit")]
    assert "not decoded from line 1 on" in errs[0][2]
    assert all(t[3:] not in r for _p, _k, r in errs)
    (tree / "plain.json").unlink()
    assert scan_json(tree, cap=CAP)[0] == 3


def test_runs_decoded_are_the_same_from_the_runs_own_stretch() -> None:
    """Looking for the run from its own stretch finds what looking from the window's start found: escapes next
    to other run bytes, a run cut by a space, a backslash that is no escape, URL forms."""
    m = SecretMatcher(ScanOptions().ruleset())
    t = hf_token()
    cases = [
        ("x=\\u0041\\u002c" + _esc_token(t)[1:-1] + "\n", 14),
        ("a b c (\\u0068f_" + t[3:] + ") tail\n", 7),
        ("GET /?a=1&token=hf%5F" + t[3:] + "&b=%41%42 HTTP/1.1\n", 16),
        ("\\x68\\x66\\x5f" + t[3:] + "\n", 0),
    ]
    for text, col in cases:
        buf = text.encode()
        hits = m.find_with_hits(buf)[1]
        got: list[tuple[str, int, str]] = []
        assert escaped.scan_hits(m, buf, hits, lambda sm, off, kind, got=got: got.append((sm.rule.id, off, kind))) \
            is None
        assert got == [(HF, col, "escapes")], text


class _CountingBytes(bytes):
    """bytes that tally how many bytes ``rfind`` and ``find`` were asked to look through."""

    looked = 0

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        a = 0 if start is None else start
        b = len(self) if end is None else end
        _CountingBytes.looked += max(0, b - a)
        return super().rfind(sub, start, end)  # type: ignore[arg-type]


def test_many_hits_on_one_long_line_cost_the_line_once() -> None:
    m = SecretMatcher(ScanOptions().ruleset())
    dec = B64Decoder(m)
    t = hf_token()
    raw = ('"\\u0041b" ' * 20000 + _esc_token(t)).encode()
    hits = m.find_with_hits(raw)[1]
    assert len(hits) > 20000
    buf = _CountingBytes(raw)
    _CountingBytes.looked = 0
    list(dec.candidates_at(buf, hits))
    assert _CountingBytes.looked < 4 * len(raw)  # was ~ len(hits) * len(raw) / 2


def _b64gz(data: bytes) -> str:
    import base64
    import gzip

    return base64.b64encode(gzip.compress(data, 1)).decode()


def test_a_compressed_stream_past_its_bound_is_a_limit_error(tree: Path) -> None:
    """A base64 gzip stream inflates to at most ``MAX_INFLATED`` (8 MiB): a token after 9 MiB of zeros was
    dropped without a word (exit 0); now the report says the stream was cut. Under the bound: found."""
    t = hf_token()
    (tree / "small.txt").write_text("payload: " + _b64gz(b"\0" * 1000 + f"\ntoken={t}\n".encode()) + "\n")
    code, found, errors = _report(tree)
    assert (code, found, errors) == (1, [(HF, 1, "base64 → gzip")], [])
    (tree / "small.txt").unlink()
    (tree / "bomb.txt").write_text("payload: " + _b64gz(b"\0" * (9 << 20) + f"\ntoken={t}\n".encode()) + "\n")
    code, found, errors = _report(tree)
    assert (code, found) == (3, [])
    assert [(e["path"], e["kind"]) for e in errors] == [("bomb.txt", "limit")]
    assert "8 MiB per compressed stream" in errors[0]["reason"]


def test_the_per_file_decoded_budget_is_a_limit_error(tree: Path) -> None:
    """64 MiB decoded per file: eight 8 MiB streams spend it, and a base64 token after them was skipped silently.
    A real benign file with a few encoded blobs stays quiet (no error)."""
    import base64

    t = hf_token()
    blob = _b64gz(b"\0" * (8 << 20))
    enc = base64.b64encode(f"token={t}\n".encode()).decode()
    (tree / "many.txt").write_text("".join(f"p{i}: {blob}\n" for i in range(8)) + f"last: {enc}\n")
    (tree / "few.txt").write_text(f"a: {blob}\nb: {_b64gz(b'hello world ' * 100)}\n")
    code, found, errors = _report(tree)
    assert (code, found) == (3, [])
    assert [(e["path"], e["kind"]) for e in errors] == [("many.txt", "limit")]
    assert "64 MiB decoded per file" in errors[0]["reason"]


def test_dense_escapes_stop_at_a_byte_budget(monkeypatch: Any) -> None:
    """A file dense with ``=5F`` (each hit decodes ~1 KB of joined lines) is bounded by bytes decoded, not only by
    hits (an 8 MB one took 110 CPU-s on 75722a6, ~6 s now with a limit error): the offset where decoding stopped
    comes back, and a token before it is found."""
    m = SecretMatcher(ScanOptions().ruleset())
    t = hf_token()
    buf = (f'"\\u0068f_{t[3:]}"\n' + "a=5F" * 100_000 + "\n" + _esc_token(t) + "\n").encode()
    hits = m.find_with_hits(buf)[1]
    got: list[tuple[str, int]] = []
    monkeypatch.setattr(escaped, "MAX_RUN_BYTES", 64 << 10)
    monkeypatch.setattr(escaped, "RUN_BYTES_PER_BYTE", 0)  # review22: the bound also grows with the buffer
    stop = escaped.scan_hits(m, buf, hits, lambda sm, off, kind: got.append((sm.rule.id, off)))
    assert got == [(HF, 1)]
    assert stop is not None and 1000 < stop < len(buf) - 100
    monkeypatch.setattr(escaped, "MAX_RUN_BYTES", 64 << 20)
    got.clear()
    assert escaped.scan_hits(m, buf, hits, lambda sm, off, kind: got.append((sm.rule.id, off))) is None
    assert got == [(HF, 1), (HF, buf.rindex(b'"\\u0068') + 1)]
