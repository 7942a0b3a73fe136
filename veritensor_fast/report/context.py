"""Source context for the text and Markdown reports: the line holding a secret, redacted, with a caret.

A context line is shown only when it can be proven to be the right one: the file (a regular file, read once,
never blocking on a FIFO or device, at most ``MAX_BYTES``) must hold the finding's secret on the reported line.
The secret itself is replaced by its preview, every other secret of the scan by its preview too, and any other
long token-like run (a value no rule reported, e.g. below an entropy floor) by a preview as well, so the
context can never show more than the findings do. At most ``SIDE`` characters either side are kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from veritensor_fast.findings import Finding, redact
from veritensor_fast.redaction import Redactor
from veritensor_fast.redaction import escape_text as e_

#: Largest file a context line is read from (larger files: no context line).
MAX_BYTES = 32 * 1024 * 1024
#: Characters of context kept either side of the secret.
SIDE = 40
_TOKENISH = re.compile(r"[A-Za-z0-9+/_\-=.~]{16,}")


@dataclass(frozen=True)
class Context:
    text: str  # printable: escaped, redacted, trimmed
    caret: int  # column (0-based, in ``text``) where the preview starts
    width: int  # caret width (the preview's length)
    column: int  # 1-based character column of the secret in the file's line


def _mask(s: str, redactor: Redactor) -> str:
    s = redactor.text(s.replace("\t", " "))
    return _TOKENISH.sub(lambda m: redact(m.group()), s)


def _read_lines(path: str) -> list[bytes] | None:
    from veritensor_fast.safeio import SmallFileError, read_regular_file

    try:
        return read_regular_file(path, "file", MAX_BYTES).split(b"\n")
    except (SmallFileError, OSError):
        return None


def line_number(f: Finding) -> int | None:
    """The line of the file on disk that holds ``f`` (notebooks: the raw JSON line), or None."""
    if f.kind != "secret" or f.secret is None or f.commit is not None:
        return None
    if not f.location:
        return f.line
    raw = f.location.get("raw_line")
    if isinstance(raw, int):  # the detector located the secret verbatim on this line of the raw file
        return raw
    return None


def contexts(findings: Iterable[Finding], root: str | None) -> dict[int, Context]:
    """``id(finding) -> Context`` for every finding whose line could be verified (see the module docstring)."""
    found = list(findings)
    redactor = Redactor(f.secret for f in found if f.secret)
    by_path: dict[str, list[tuple[Finding, int]]] = {}
    for f in found:
        n = line_number(f)
        if n is not None and n > 0:
            by_path.setdefault(f.path, []).append((f, n))
    out: dict[int, Context] = {}
    for path, items in by_path.items():
        full = os.path.join(root, path) if root else path
        lines = _read_lines(full)
        if lines is None:
            continue
        for f, n in items:
            if n > len(lines) or f.secret is None:
                continue
            line = lines[n - 1].rstrip(b"\r").decode("utf-8", "replace")
            start = -1
            if f.location is None and line[f.column - 1:].startswith(f.secret):
                start = f.column - 1
            elif line.count(f.secret) == 1:
                start = line.index(f.secret)
            if start < 0:
                continue
            before = _mask(line[:start], redactor)
            after = _mask(line[start + len(f.secret):], redactor)
            if len(before) > SIDE:
                before = "…" + before[-SIDE:]
            if len(after) > SIDE:
                after = after[:SIDE] + "…"
            head = e_(before)
            out[id(f)] = Context(head + e_(f.redacted) + e_(after), len(head), max(len(e_(f.redacted)), 1),
                                start + 1)
    return out
