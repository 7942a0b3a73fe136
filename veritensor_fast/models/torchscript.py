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
attribute or, resolved at compile time, by ``getattr(torch, "save")``.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from veritensor_fast.models.base import ModelIssue

_SEP = r"[\s\\]*"
#: ``torch.from_file``/``torch.save`` (and ``aten.``, ``ops.aten.`` spellings, ``aten::`` op names): group 1 or 2;
#: group 3: the op's name as a string literal, which ``getattr(torch, "save")`` (any quotes, any spacing, nested
#: ``getattr(getattr(ops, "aten"), "save")``) resolves at compile time (torch 2.13 loaded and ran each)
FROM_FILE = re.compile(rb"\b(?:torch|aten|ops" + _SEP.encode() + rb"\." + _SEP.encode() + rb"aten)" + _SEP.encode()
                       + rb"\." + _SEP.encode() + rb"(from_file|save)\b|aten::(from_file|save)\b"
                       + rb"|[\"'](from_file|save)[\"']")
#: How far before a string literal ``getattr`` is looked for (its other argument and the spacing).
_GETATTR_BEFORE = 512
#: A run of string literals the TorchScript lexer joins (``"sa" "ve"``); each may hold escapes (``"s\\141ve"``: the
#: lexer decodes octal, hex and the usual C escapes), which the plain match above cannot see
#: (each literal at most 64 characters, and the spacing between two too: an op's name is short, and the regex
#: must not run from every quote of an unterminated run to the end of the file, as it did for 1 MB of ``"\\``)
_LIT = rb'"(?:[^"\\\n]|\\[^\n]){0,64}"|\'(?:[^\'\\\n]|\\[^\n]){0,64}\''
_RUN = re.compile(rb"(?:" + _LIT + rb")(?:[\s\\]{0,64}(?:" + _LIT + rb"))*")
_ONE = re.compile(_LIT)
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
        if m.group(3) and not _after_getattr(raw, m.start()):
            continue  # a string that is no attribute name (``print("save")``)
        calls.append((m.start(), (m.group(1) or m.group(2) or m.group(3)).decode("ascii")))
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


def _spelled(raw: bytes) -> list[tuple[int, str]]:
    """The ops named to ``getattr`` by string literals joined or escaped (``"sa" "ve"``, ``"s\\141ve"``), as the
    TorchScript lexer reads them; plain literals are ``FROM_FILE``'s."""
    out = []
    for run in _RUN.finditer(raw):
        text = run.group()
        if b"\\" not in text and len(_ONE.findall(text)) < 2:
            continue
        try:
            name = codecs.escape_decode(b"".join(lit[1:-1] for lit in _ONE.findall(text)))[0]
        except ValueError:
            continue
        if name in (b"from_file", b"save") and _after_getattr(raw, run.start()):
            out.append((run.start(), name.decode("ascii")))
    return out
