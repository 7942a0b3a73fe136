"""TorchScript source in a ``torch.jit.save`` archive (``<name>/code/**/*.py``) that touches files.

``torch.jit.load`` compiles the archive's ``code/`` and runs every module's ``__setstate__`` (``@torch.jit.export``)
while it loads; ``forward`` and the other methods run when the model is used. TorchScript cannot import Python,
but ``torch.from_file(filename, shared, size)`` is a TorchScript builtin: it maps any file the user can read into a
tensor, and with ``shared=True`` whatever is copied into that tensor is written to the file (checked with torch
2.13: ``torch.jit.load`` of such an archive overwrote a file named in its code; a ``~/.bashrc`` or a
site-packages ``.pth`` file is code execution). No model a training library writes calls it (``__setstate__`` alone
is no finding: quantized modules define one). Spacing and line continuations between the names are allowed, as
the TorchScript lexer allows them; a ``torch.ops.aten.from_file`` spelling too.

``torch.save(obj, filename)`` is one too (``aten::save``, the only other op of torch 2.13's JIT registry that
touches a file by name; ``open``, ``torch.load``, ``torch.jit.load``, ``UntypedStorage.from_file`` and imports are
refused by the compiler): it writes ``obj``'s pickle, strings verbatim, to any path (checked with torch 2.13:
``torch.jit.load`` of an archive whose ``__setstate__`` calls it wrote the file, a zip whose pickle holds the string:
an SSH public key between two line breaks is a line of its own that ``ssh-keygen -l`` reads, so written as
``~/.ssh/authorized_keys`` it grants a login; any other file it replaces is destroyed). The op may be named as an
attribute or, resolved at compile time, by ``getattr(torch, "save")``: the name's literal is read as the lexer reads
it (a comment or any spacing before it, literals joined, escapes decoded).
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from veritensor_fast.models.base import ModelIssue

_SEP = r"[\s\\]*"
#: ``torch.from_file``/``torch.save`` (and ``aten.``, ``ops.aten.`` spellings, ``aten::`` op names): group 1 or 2.
#: The op's name as a string literal, which ``getattr(torch, "save")`` (any quotes, any spacing, nested
#: ``getattr(getattr(ops, "aten"), "save")``) resolves at compile time (torch 2.13 loaded and ran each), is
#: ``_spelled``'s
FROM_FILE = re.compile(rb"\b(?:torch|aten|ops" + _SEP.encode() + rb"\." + _SEP.encode() + rb"aten)" + _SEP.encode()
                       + rb"\." + _SEP.encode() + rb"(from_file|save)\b|aten::(from_file|save)\b")
#: How far before a string literal ``getattr`` is looked for (its other argument; in the code with spacing and
#: comments left out, which the lexer skips inside brackets whatever their length).
_GETATTR_BEFORE = 512
#: The fallback for code the lexer would refuse (an unterminated literal), from that literal on: runs of string
#: literals found by pattern, each at most 64 characters and the spacing between two too (the regex must not run
#: from every quote of an unterminated run to the end of the file, as it did for 1 MB of ``"\\``).
_LIT = rb'"(?:[^"\\\n]|\\[^\n]){0,64}"|\'(?:[^\'\\\n]|\\[^\n]){0,64}\''
_RUN = re.compile(rb"(?:" + _LIT + rb")(?:[\s\\]{0,64}(?:" + _LIT + rb"))*")
_ONE = re.compile(_LIT)
#: The source as torch's lexer (``torch/csrc/jit/frontend/lexer.h``, ``isString``) splits it, one match a token: a
#: comment (group 1); a string literal (group 2) in 3 or 1 quotes, where a backslash escapes the next character, a
#: line break too, and a line break ends a 1-quote literal; a run of other code (group 3); or a quote that opens
#: no literal (group 4: the lexer refuses the file). Each alternative is possessive: one linear pass, a literal
#: is found from its own opening quote only (a regex looking for literals anywhere paired the closing quote of
#: one it could not read with the next literal's opening quote, and missed the name after it)
_TOKEN = re.compile(rb"(#[^\n]*+)"
                    rb'|("""(?:[^"\\]|\\.|"(?!""))*+"""|\'\'\'(?:[^\'\\]|\\.|\'(?!\'\'))*+\'\'\''
                    rb'|"(?:[^"\\\n]|\\.)*+"|\'(?:[^\'\\\n]|\\.)*+\')'
                    rb"|([^#\"']++)|(.)", re.S)
#: Code between two literals the lexer joins: spacing and line continuations (a comment is a token of its own)
_JOINS = re.compile(rb"[\s\\]*+")
#: The code before a literal, spacing and comments left out, that makes it ``getattr``'s name argument: a comma
#: (and any opening parentheses) after ``getattr(`` within ``_GETATTR_BEFORE`` characters
_NAME_ARG = re.compile(rb",\(*$")
_SPACE = re.compile(rb"[\s\\]+")
#: Longest run of literal bodies worth decoding: an op name (9 characters) in the longest escapes (4 each)
_MAX_NAME_RAW = 64
#: What each op does with the file its code names.
_DOES = {
    "from_file": "it maps any file the user can read, and with shared=True writes to it (a ~/.bashrc or "
                 "site-packages .pth file is code execution)",
    "save": "it replaces any file the user can write with a zip holding any string verbatim (a line of its own in "
            "~/.ssh/authorized_keys grants a login)",
}
#: ``[ \t]``, not ``\s``: ``^\s*`` would run over every following blank line from each line start (1M newlines
#: before the call: ~20 minutes)
_DEF = re.compile(rb"^[ \t]*def[ \t]+(\w+)", re.M)


def is_code_member(name: str) -> bool:
    """A TorchScript source member: ``code/`` at the archive's top or one level down, a ``.py`` name."""
    parts = name.split("/")
    return name.endswith(".py") and "code" in parts[:2]


def code_issues(data: Any, where: str) -> list[ModelIssue]:
    """A critical finding for each file op (``torch.from_file``, ``torch.save``) the TorchScript source ``data``
    calls, at its first call."""
    raw = bytes(data)
    out: list[ModelIssue] = []
    seen: set[str] = set()
    calls = []
    for m in FROM_FILE.finditer(raw):
        calls.append((m.start(), (m.group(1) or m.group(2)).decode("ascii")))
    if b"getattr" in raw:
        calls += _spelled(raw)
    for at, op in sorted(calls):
        if op in seen:
            continue
        seen.add(op)
        defs = [d.group(1).decode("ascii", "replace") for d in _DEF.finditer(raw, 0, at)]
        method = defs[-1] if defs else "?"
        when = "inside torch.jit.load" if method == "__setstate__" else "when the model runs"
        out.append(ModelIssue(
            "model.torchscript.file-access", "critical",
            f"TorchScript code calls torch.{op} in {method}() ({when}): {_DOES[op]}",
            f"torch.{op}", {"member": where, "method": method} if where else {"method": method}))
    return out


def _after_getattr(raw: bytes, at: int) -> bool:
    return raw.find(b"getattr", max(0, at - _GETATTR_BEFORE), at) >= 0


def _unescape(body: bytes) -> bytes | None:
    """A literal's body as torch's ``parseStringLiteral`` decodes it; a backslash before a line break keeps the line
    break (Python drops both). Python's decoder reads a few escapes torch refuses (hex, short octal): those names
    count too (fail closed)."""
    body = _ESC_KEEP.sub(lambda m: b"\\n" if m.group() == b"\\\n" else m.group(), body)
    try:
        return codecs.escape_decode(body)[0]
    except ValueError:
        return None


_ESC_KEEP = re.compile(rb"\\[\\\n]")


def _spelled(raw: bytes) -> list[tuple[int, str]]:
    """The ops named to ``getattr`` by a string literal or a run of them the lexer joins (``"sa" "ve"``,
    ``"s\\141ve"``, spacing and comments between), read token by token as the TorchScript lexer reads them."""
    out: list[tuple[int, str]] = []
    code: list[bytes] = []  # the code so far, spacing and comments left out (a literal is ``""``)
    size = 0
    run: _Run | None = None
    for m in _TOKEN.finditer(raw):
        lit = m.group(2)
        if lit is not None:
            if run is None:
                run = _Run(m.start(), code, len(code))
            q = 3 if len(lit) >= 6 and lit[:3] in (b'"""', b"'''") else 1
            run.add(lit[q:-q])
            code.append(b'""')
            size += 2
            continue
        if m.group(1) is not None or (m.group(3) is not None and _JOINS.fullmatch(m.group(3))):
            continue  # a comment or spacing: a run of literals goes on
        if run is not None:
            run.close(out)
            run = None
        if m.group(4) is not None:  # an unterminated literal: torch refuses the file; the old reading of the rest
            return out + _spelled_loose(raw[m.start():], m.start())
        piece = _SPACE.sub(b"", m.group(3))
        code.append(piece)
        size += len(piece)
        if size > 4 * _GETATTR_BEFORE:  # a new list of the tail: a run's own list and length stay valid
            code = [b"".join(code)[-_GETATTR_BEFORE:]]
            size = len(code[0])
    if run is not None:
        run.close(out)
    return out


class _Run:
    """A run of string literals the lexer joins: where it starts, the code before it (a list and its length then,
    joined only for a run that names an op), and its bodies (up to ``_MAX_NAME_RAW`` bytes)."""

    __slots__ = ("at", "code", "n", "bodies", "raw_len")

    def __init__(self, at: int, code: list[bytes], n: int) -> None:
        self.at, self.code, self.n = at, code, n
        self.bodies: list[bytes] = []
        self.raw_len = 0

    def add(self, body: bytes) -> None:
        self.raw_len += len(body)
        if self.raw_len <= _MAX_NAME_RAW:
            self.bodies.append(body)

    def close(self, out: list[tuple[int, str]]) -> None:
        """Record the op the run names when it is ``getattr``'s name argument."""
        if not 4 <= self.raw_len <= _MAX_NAME_RAW:  # "save" is the shortest name
            return
        name = _unescape(b"".join(self.bodies))
        if name not in (b"from_file", b"save"):
            return
        before = b"".join(self.code[:self.n])[-_GETATTR_BEFORE:]
        if b"getattr(" in before and _NAME_ARG.search(before):
            out.append((self.at, name.decode("ascii")))


def _spelled_loose(raw: bytes, base: int) -> list[tuple[int, str]]:
    """The bounded pattern reading of code the lexer would refuse: runs of literals, joined and decoded, with
    ``getattr`` up to ``_GETATTR_BEFORE`` bytes before."""
    out = []
    for run in _RUN.finditer(raw):
        text = run.group()
        name = _unescape(b"".join(lit[1:-1] for lit in _ONE.findall(text)))
        if name in (b"from_file", b"save") and _after_getattr(raw, run.start()):
            out.append((base + run.start(), name.decode("ascii")))
    return out
