"""TorchScript source in a ``torch.jit.save`` archive (``<name>/code/**/*.py``) that touches files.

``torch.jit.load`` compiles the archive's ``code/`` and runs every module's ``__setstate__`` (``@torch.jit.export``)
while it loads; ``forward`` and the other methods run when the model is used. TorchScript cannot import Python,
but ``torch.from_file(filename, shared, size)`` is a TorchScript builtin: it maps any file the user can read into a
tensor, and with ``shared=True`` whatever is copied into that tensor is written to the file (checked with torch
2.13: ``torch.jit.load`` of such an archive overwrote a file named in its code; a ``~/.bashrc`` or a
site-packages ``.pth`` file is code execution). No model a training library writes calls it (``__setstate__`` alone
is no finding: quantized modules define one). Spacing and line continuations between the names are allowed, as
the TorchScript lexer allows them; a ``torch.ops.aten.from_file`` spelling too.
"""

from __future__ import annotations

import re
from typing import Any

from veritensor_fast.models.base import ModelIssue

_SEP = r"[\s\\]*"
FROM_FILE = re.compile(rb"\b(?:torch|aten|ops" + _SEP.encode() + rb"\." + _SEP.encode() + rb"aten)" + _SEP.encode()
                       + rb"\." + _SEP.encode() + rb"from_file\b|aten::from_file\b")
#: ``[ \t]``, not ``\s``: ``^\s*`` would run over every following blank line from each line start (1M newlines
#: before the call: ~20 minutes)
_DEF = re.compile(rb"^[ \t]*def[ \t]+(\w+)", re.M)


def is_code_member(name: str) -> bool:
    """A TorchScript source member: ``code/`` at the archive's top or one level down, a ``.py`` name."""
    parts = name.split("/")
    return name.endswith(".py") and "code" in parts[:2]


def code_issues(data: Any, where: str) -> list[ModelIssue]:
    """A critical finding when the TorchScript source ``data`` calls ``torch.from_file``."""
    raw = bytes(data)
    m = FROM_FILE.search(raw)
    if m is None:
        return []
    defs = [d.group(1).decode("ascii", "replace") for d in _DEF.finditer(raw, 0, m.start())]
    method = defs[-1] if defs else "?"
    when = "inside torch.jit.load" if method == "__setstate__" else "when the model runs"
    return [ModelIssue(
        "model.torchscript.file-access", "critical",
        f"TorchScript code calls torch.from_file in {method}() ({when}): it maps any file the user can read, and "
        "with shared=True writes to it (a ~/.bashrc or site-packages .pth file is code execution)",
        "torch.from_file", {"member": where, "method": method} if where else {"method": method})]
