"""review24: a name is shown one way in the text and Markdown reports too. ``display_path`` doubles a run of
backslashes before escape-like text, but ``escape_text`` then wrote a control character after a backslash as
``\\xNN`` / ``\\uNNNN`` without doubling that backslash: the name ``a\\`` + ESC and the UTF-8 name ``a\\x1b`` (the
text) both read ``a\\\\x1b``, ``a\\`` + U+0085 and ``a\\u0085`` both ``a\\\\u0085``. ``escape_text`` now doubles a
run of backslashes before a character it escapes (a run before any other character is left as it is)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from veritensor_fast.findings import display_path
from veritensor_fast.redaction import escape_text

from conftest import hf_token, run_cli

#: names that read alike in a text report at the merge of trust24 (the first two) or at 378526f (1 and 3)
NAMES = (b"a\\\x1b", b"a\\x1b", b"a\x1b", b"a\\\xc2\x85", b"a\\u0085", b"a\\\\\x1b", b"a\\\\x1b")
alphabet = st.sampled_from([b"\\", b"x", b"u", b"1", b"b", b"8", b"5", b"\xe9", b"\x1b", b"\xc2\x85",
                            b"\xe2\x80\xae", b"a"])
tricky = st.lists(alphabet, min_size=1, max_size=10).map(b"".join)


@given(tricky, tricky)
@example(NAMES[0], NAMES[1])
@example(NAMES[3], NAMES[4])
def test_two_names_never_read_alike_on_a_terminal(a: bytes, b: bytes) -> None:
    ta, tb = (escape_text(display_path(os.fsdecode(n))) for n in (a, b))
    assert (ta == tb) == (a == b)


def test_a_run_before_other_text_stays() -> None:
    assert escape_text("c:\\dir\\file") == "c:\\dir\\file"
    assert escape_text("a\\\x1b[1m") == "a\\\\\\x1b[1m"
    assert escape_text("a\\\\\u202e") == "a\\\\\\\\\\u202e"


def test_text_and_markdown_reports_show_each_name_once(tmp_path: Path) -> None:
    for raw in NAMES:
        (tmp_path / os.fsdecode(raw)).write_text(f"HF_TOKEN={hf_token()}\n")
    for fmt in ("text", "markdown"):
        out = run_cli("scan", "-f", fmt, "--no-progress", tmp_path).stdout
        rest = [ln.split(f"{tmp_path}/", 1)[1] for ln in out.splitlines() if f"{tmp_path}/" in ln]
        shown = [re.split(r":1(?::\d+:|`)", r)[0] for r in rest]  # text: NAME:1:10: ..., Markdown: `NAME:1`
        assert len(shown) == len(NAMES) and len(set(shown)) == len(NAMES), (fmt, shown)
