"""model24: TorchScript literals read token by token, as torch's lexer reads them.

``fixtures/real_models_m24/ts_spellings.py`` rewrites the ``torch.save`` call of model23's real
``evil_save_setstate.pt`` (``torch.jit.script`` + ``torch.jit.save``, torch 2.13) into spellings that torch 2.13's
lexer reads (``lexer.h``: a comment or any spacing inside brackets is skipped, a literal is read from its own
opening quote, a backslash escapes the next character, a line break too): ``check_twins.py`` loaded each
with the real ``torch.jit.load`` and each wrote the file its code names. On 378526f each gave no finding (the
pattern reader paired the closing quote of a literal it could not read, one holding an escaped line break or longer
than 64 characters, with the next opening quote; it did not skip comments; it looked for ``getattr`` 512 bytes back
in the raw text, spacing included); now each is CRITICAL ``model.torchscript.file-access``. An escaped line break
inside the name keeps the line break (``parse_string_literal.h``; Python's decoder drops both): torch refuses that
spelling (``Unknown builtin op: aten::sa``), and it is no finding.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.torchscript import code_issues

FIX = Path(__file__).parent / "fixtures" / "real_models_m24"
sys.path.insert(0, str(FIX))
from ts_spellings import REFUSED, RUNS, edit  # noqa: E402

RULE = "model.torchscript.file-access"


def _found(raw: bytes) -> list[tuple[str, str, str, str]]:
    return [(i.rule_id, i.severity, i.evidence, (i.location or {}).get("method", "")) for i in analyze(raw, "m.pt")
            if i.rule_id == RULE]


@pytest.mark.parametrize("case", sorted(RUNS))
def test_spellings_torch_loads_are_critical(case: str) -> None:
    assert _found(edit(RUNS[case])) == [(RULE, "critical", "torch.save", "__setstate__")]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_escaped_line_break_stays_in_the_name(case: str) -> None:
    assert _found(edit(REFUSED[case])) == []


@pytest.mark.parametrize("code", [
    b'def forward(self):\n    x = getattr(self, "0")\n    print("save")\n',  # a literal, no getattr name
    b'def forward(self):\n    x = getattr(self, "0")\n    return ("sa" "ve", x)\n',
    b'def forward(self):\n    x = getattr(self, "0")  # getattr(torch, "save")\n    return x\n',  # a comment
    b'def forward(self):\n    x = getattr(self, "0")\n    s = """getattr(torch, "save")"""\n',  # inside a literal
])
def test_names_that_are_no_getattr_argument_give_nothing(code: bytes) -> None:
    assert code_issues(code, "") == []


def test_an_unterminated_literal_falls_back_to_the_pattern_reading() -> None:
    code = b'def __setstate__(self):\n    getattr(torch, "sa" "ve")(1, 2)\n    print("open\n'
    assert [i.evidence for i in code_issues(code, "")] == ["torch.save"]
    late = b'def __setstate__(self):\n    print("open\n    getattr(torch, "s\\141ve")(1, 2)\n'
    assert [i.evidence for i in code_issues(late, "")] == ["torch.save"]


@pytest.mark.parametrize("shape", [b'"\\', b'"', b"'''", b'"a",', b'"" ', b"#", b"\\", b'getattr(x, "a" # c\n'])
def test_hostile_shapes_stay_linear(shape: bytes) -> None:
    """1 MB of one shape after ``getattr(``: one pass (each literal is matched once, from its own quote)."""
    code = b"getattr(torch, " + shape * ((1 << 20) // len(shape)) + b'"save")'
    t = time.process_time()
    code_issues(code, "")
    assert time.process_time() - t < 30  # ~2 s here on a loaded machine; quadratic would be hours
