"""A terminal colour sequence right before a token does not hide it (eleventh session).

Coloured logs, CI output saved in a repository and captured terminal sessions put ``ESC [ ... m`` right before what
they highlight: ``\\x1b[1mhf_...``. The ``m`` that ends the sequence is a word character, so the rules' left
boundary (not preceded by a letter: ``myhf_...`` is not a token) rejected every such token in a plain text file
(notebook outputs were found: their ANSI codes are stripped). The sequence now ends a boundary the way ``\\n`` and
``%3D`` already did, for the built-in rules (Python ``re``), user rules (RE2) and the pure-Python matcher.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import hf_token, scan_json
from veritensor_fast import scan_bytes
from veritensor_fast.rules import ANSI_PARAMS

COLOURS = ["\x1b[1m", "\x1b[m", "\x1b[0;31m", "\x1b[38;5;196m", "\x1b[38;2;255;128;0m", "\x1b[1;4;5;7;31;42m"]
ESCAPED = ["\\u001b[32m", "\\033[0;31m", "\\x1b[1m", "\\e[1;33m", "^[[1m"]


def _found(text: str, name: str = "build.log") -> list[str]:
    return [f.rule_id for f in scan_bytes(text, name).findings]


@pytest.mark.parametrize("seq", COLOURS + ESCAPED)
def test_a_token_right_after_a_colour_sequence_is_found(seq: str) -> None:
    tok = hf_token()
    assert _found(f"Logged in with {seq}{tok}\x1b[0m\n") == ["huggingface.user-token"]


@pytest.mark.parametrize("text", ["myhf_{t}", "Token: m{t}", "[x1m{t}", "\x1b[1xm{t}"])
def test_a_letter_before_a_token_still_rejects_it(text: str) -> None:
    assert _found(text.format(t=hf_token()) + "\n") == []


def test_the_longest_accepted_parameter_list_and_one_past_it() -> None:
    tok = hf_token()
    longest = "\x1b[" + "1;" * (ANSI_PARAMS // 2 - 1) + "31m"
    assert len(longest) == 2 + ANSI_PARAMS + 1
    assert _found(longest + tok + "\n") == ["huggingface.user-token"]
    assert _found("\x1b[" + "1;" * (ANSI_PARAMS // 2) + "31m" + tok + "\n") == []


def test_other_rules_and_a_user_rule_from_the_cli(tmp_path: Path) -> None:
    """Real files through the CLI: a built-in rule with another prefix and a user rule (RE2 confirmation)."""
    ghp = "ghp_" + "k3Jd9QpX2mZr7TbW5yHn1vLc8sFa4GeU0oPi"
    user = "acme_" + "Zq8Rt3Yp6Wm1Xn4Vb7Kc2Ld5Hf9Gj0"
    (tmp_path / "ci.log").write_text(f"GH=\x1b[32m{ghp}\x1b[0m\n\x1b[1;31m{user}\x1b[0m\nxacme_{user[5:]}\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n- id: acme.key\n  name: ACME key\n  severity: high\n"
                     "  pattern: acme_[A-Za-z0-9]{30}\n")
    rc, rep = scan_json(tmp_path / "ci.log", "--rules", rules)
    got = sorted((f["rule_id"], f["line"]) for f in rep["findings"])
    assert got == [("acme.key", 2), ("github.token", 1)], got


def test_the_pure_python_matcher_agrees() -> None:
    tok = hf_token()
    code = ("import sys; from veritensor_fast import scan_bytes; "
            "print(len(scan_bytes(sys.argv[1], 'x.log').findings))")
    env = {**os.environ, "VERITENSOR_FAST_MATCHER": "python"}
    out = subprocess.run([sys.executable, "-c", code, f"\x1b[1m{tok}\x1b[0m myhf_{tok[3:]}\n"], env=env,
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "1"
