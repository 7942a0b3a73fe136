"""ast18: what the new folds and the literal-stream prefilter (``pyast_stream``) refuse, and their bounds.

- the fold knows ``chr(<int>)``, ``str(<constant>)`` and ``<bytes>.decode(<known codec>)``, and nothing more
  (``str(b"x")`` is ``"b'x'"``, an unknown codec or invalid bytes are not folded, ``chr`` out of range);
- shapes from a real site-packages that carry the new triggers (escapes in regular expressions, ``chr(10)``,
  lists of model names with digits, hashes bound one after another) are not admitted: nothing to assemble;
- a raw string's backslash is not an escape (``r"h\\x66_…"`` is no token, for the AST as for the stream);
- bindings of pieces run on in the stream wherever they are used, far below (``A = "h"``, ``B = "f_…"``);
- the work per file is bounded: at most ``MAX_WINDOWS`` windows are rebuilt, each a bounded span.
"""

from __future__ import annotations

import ast
import mmap
from pathlib import Path

import pytest
from test_ast16_admit import wanted
from test_ast17_split import HOST, TOKENS, ast_only

from veritensor_fast.detectors.ast_eval import fold
from veritensor_fast.worker import ScanOptions, WorkerContext

HF = TOKENS["huggingface.user-token"]


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


@pytest.mark.parametrize(("expr", "value"), [
    ("chr(104) + 'f_'", "hf_"),
    ("chr(0x68)", "h"),
    ("str('hf') + '_'", "hf_"),
    ("str(12)", "12"),
    ("b'h\\x66_'.decode()", "hf_"),
    ("(b'h' + b'f_').decode('ascii')", "hf_"),
    ("b''.join([b'h', b'f_']).decode(encoding='utf-8')", "hf_"),
    ("b'\\xc3\\xa9'.decode('utf-8')", "\u00e9"),
    ("b'\\xe9'.decode('latin-1')", "\u00e9"),
])
def test_fold_of_chr_str_decode(expr: str, value: str) -> None:
    assert fold(ast.parse(expr, mode="eval").body) == value


@pytest.mark.parametrize("expr", [
    "chr(-1)", "chr(0x110000)", "chr('h')", "chr(104, 1)", "str(b'hf_')", "str(x)", "str('a', 'b')",
    "b'\\xe9'.decode('utf-8')", "b'hf'.decode('rot13')", "b'hf'.decode(errors='ignore')", "b'hf'.decode(enc)",
    "b'hf'.decode('ascii', 'strict')", "b'\\xff'.decode('ascii')",
])
def test_fold_refuses(expr: str) -> None:
    assert fold(ast.parse(expr, mode="eval").body) is None


#: Real-looking code that carries a new trigger and assembles nothing.
QUIET = {
    "escapes in a regular expression": 'WORD = re.compile("[\\x41-\\x5a\\x61-\\x7a_]+\\x2d[\\x30-\\x39]{4}")\n',
    "octal escapes": 'SEP = "\\055\\055\\055"\nTAB = b"\\011\\101\\102"\n',
    "chr of control characters": "s = s.replace(chr(10), ' ').replace(chr(13), '')\nQ = chr(34)\n",
    "str of a literal": 'label = str("v2") + "_" + name\n',
    "model names with digits": 'NAMES = [\n    "Qwen2VLForConditionalGeneration",\n    "Glm4vForConditionalGeneration",\n'
                               '    "Ernie4_5_VLMoeImageProcessor",\n]\n',
    "hashes bound one after another": 'A = "9d71491b50023b06fc76928e6eddb952"\nB = "66670e5163145ca562cb1988"\n'
                                      'C = "5f1fd0c4b5c1a0f6d0a4e1e4e5b6a7c8"\n',
    "licence ids": 'IDS = ("BSD-3-Clause-No-Nuclear-License", "GFDL-1.1-invariants-only", "AGPL-3.0-or-later")\n',
    "a raw string's backslash": f'T = r"h\\x66{HF[2:]}"\n',
    "escapes in a comment": f'# T = "h\\x66{HF[2:]}"\nX = 1\n',
}


@pytest.mark.parametrize("name", sorted(QUIET))
def test_triggers_that_assemble_nothing_do_not_admit(ctx: WorkerContext, name: str) -> None:
    src = HOST + QUIET[name]
    assert ast_only(ctx, src) == set()
    assert not wanted(ctx, src)


def test_bindings_run_on_wherever_they_are_used(ctx: WorkerContext) -> None:
    src = (HOST + f'A = "{HF[:1]}"\nB = "{HF[1:6]}"\nC = "{HF[6:]}"\n' + "x = 1\n" * 400
           + "def get():\n    return A + B + C\n")
    assert ast_only(ctx, src) == {("huggingface.user-token", HF)}
    assert wanted(ctx, src)


def test_the_codec_of_decode_is_not_a_piece(ctx: WorkerContext) -> None:
    src = HOST + f'T = b"".join([b"{HF[:1]}", b"{HF[1:6]}", b"{HF[6:]}"]).decode("utf8")\n'
    assert ("huggingface.user-token", HF) in ast_only(ctx, src)
    assert wanted(ctx, src)


class _Counting:
    """A matcher that counts its calls (and finds nothing)."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0

    def find(self, buf: bytes) -> list[object]:
        self.calls += 1
        self.bytes += len(buf)
        return []


def test_work_per_file_is_bounded() -> None:
    from veritensor_fast.detectors import pyast_stream

    line = 'P = re.compile("\\x41\\x2d")\n'
    buf = (line * 20000).encode()
    ends = [i * len(line) + 18 for i in range(20000)]  # every escape is a trigger
    m = _Counting()
    assert not pyast_stream.stream_admits(buf, ends, m)  # type: ignore[arg-type]
    assert m.calls <= pyast_stream.MAX_WINDOWS
    assert m.bytes <= pyast_stream.MAX_WINDOWS * (4 * pyast_stream.WINDOW + 1024)


def test_names_repeated_in_a_window_are_bounded() -> None:
    from veritensor_fast.detectors import pyast_stream

    buf = ('X = "' + "a" * 4000 + '"\n' + "Y = " + " + ".join(["X"] * 300) + '\nZ = "\\x41"\n').encode()
    m = _Counting()
    assert not pyast_stream.stream_admits(buf, [len(buf) - 3], m)  # type: ignore[arg-type]
    assert m.calls == 1
    assert m.bytes <= pyast_stream.STREAM_MAX + 2 * 4096 + 4 * pyast_stream.WINDOW + 1024


@pytest.mark.parametrize("kind", ["mmap", "bytearray"])
def test_other_buffers_are_judged_alike(ctx: WorkerContext, tmp_path: Path, kind: str) -> None:
    src = HOST + f'T = "".join(["{HF[:1]}", "{HF[1:2]}", "{HF[2:3]}", "{HF[3:]}"])\nU = "h\\x66{HF[2:]}"\n'
    p = tmp_path / "app.py"
    p.write_bytes(src.encode())
    with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        buf = mm if kind == "mmap" else bytearray(src.encode())
        assert wanted(ctx, buf)
