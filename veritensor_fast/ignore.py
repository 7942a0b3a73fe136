"""Inline ignore markers, applied per item in the worker after detection (``InlineIgnores``).

Markers (in any comment syntax; the text is matched, not the comment leader):

- ``veritensor-fast: ignore`` on the finding's line, or alone on the line before it (nothing but whitespace,
  quotes and comment characters before the marker). ``veritensor-fast: ignore[rule.id, other.id]`` limits it
  to those rules; an id also matches its sub-ids (``ignore[huggingface]`` covers ``huggingface.user-token``).
- ``gitleaks:allow`` on the finding's line (gitleaks' own semantics).
- ``pragma: allowlist secret`` on the finding's line, ``pragma: allowlist nextline secret`` on the line before
  (detect-secrets' semantics).

Model-file findings (``kind == "model"``) are never ignored inline unless the scan sets
``ignore_model_findings_inline`` (config key of the same name): a pickle cannot vouch for itself.

The line of a finding is ``location["raw_line"]`` when a detector gives one (e.g. the line in the raw notebook
JSON), else ``Finding.line``. In a file that is one long line (minified JSON) a marker covers the whole line.

Cost: nothing unless an item has findings; then a few substring searches over the buffer (C speed) and, only
for the rare marker hits, a newline count and a regex over one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veritensor_fast.findings import Finding, Item

#: Substrings searched for in the buffer; a line is parsed only around a hit.
NEEDLES = (b"veritensor-fast:", b"gitleaks:allow", b"allowlist")
_OWN = re.compile(rb"veritensor-fast:\s*ignore\b(?:\[([^\]\r\n]*)\])?")
_GITLEAKS = re.compile(rb"gitleaks:allow")
_PRAGMA = re.compile(rb"pragma:\s*allowlist[ -]?(nextline[ -]?)?secret", re.IGNORECASE)
#: What may precede a marker for it to count as "alone on its line" (applies to the next line).
_ALONE_PREFIX = re.compile(rb"[\s\"'#/*;%<!\-]*")
#: Give up on parsing markers past this many hits in one item (keep the findings: fail closed).
MAX_MARKERS = 10_000


@dataclass(frozen=True)
class Marker:
    """An ignore marker found on ``line``: it covers ``line`` and/or ``line + 1`` for ``rules`` (None = all)."""

    line: int
    same_line: bool
    next_line: bool
    rules: tuple[str, ...] | None


def _rules(group: bytes | None) -> tuple[str, ...] | None:
    if group is None:
        return None
    ids = tuple(r.strip() for r in group.decode("utf-8", "replace").split(",") if r.strip())
    return ids or None


def parse_line(text: bytes, line: int) -> list[Marker]:
    """All markers on one line of text (``line`` is its 1-based number)."""
    out: list[Marker] = []
    for m in _OWN.finditer(text):
        alone = _ALONE_PREFIX.fullmatch(text, 0, m.start()) is not None
        out.append(Marker(line, True, alone, _rules(m.group(1))))
    if _GITLEAKS.search(text):
        out.append(Marker(line, True, False, None))
    for m in _PRAGMA.finditer(text):
        nextline = m.group(1) is not None
        out.append(Marker(line, not nextline, nextline, None))
    return out


def _count_newlines(buf: Any, start: int, stop: int) -> int:
    from veritensor_fast.worker import count_newlines

    return count_newlines(buf, start, stop)


def find_markers(buf: Any) -> dict[int, list[Marker]] | None:
    """Markers by the line they apply to; ``{}`` when there are none, ``None`` when there are too many."""
    hits: set[int] = set()
    for needle in NEEDLES:
        pos = buf.find(needle)
        while pos >= 0:
            hits.add(pos)
            if len(hits) > MAX_MARKERS:
                return None
            pos = buf.find(needle, pos + len(needle))
    if not hits:
        return {}
    by_line: dict[int, list[Marker]] = {}
    done_starts: set[int] = set()
    line, counted_to = 1, 0
    for pos in sorted(hits):
        start = buf.rfind(b"\n", 0, pos) + 1
        if start in done_starts:
            continue
        done_starts.add(start)
        line += _count_newlines(buf, counted_to, start)
        counted_to = start
        end = buf.find(b"\n", pos)
        text = bytes(buf[start:end if end >= 0 else len(buf)])
        for mk in parse_line(text, line):
            if mk.same_line:
                by_line.setdefault(line, []).append(mk)
            if mk.next_line:
                by_line.setdefault(line + 1, []).append(mk)
    return by_line


def _covers(rules: Sequence[str] | None, rule_id: str) -> bool:
    if rules is None:
        return True
    return any(rule_id == r or rule_id.startswith(r + ".") for r in rules)


def finding_line(f: Finding) -> int:
    """The line in the raw buffer an ignore marker must be on (or before)."""
    if f.location:
        raw = f.location.get("raw_line")
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    return f.line


class InlineIgnores:
    """Worker post-processor: ``post(findings, buf, item) -> findings`` without the inline-ignored ones."""

    def __init__(self, options: Any = None) -> None:
        self.models = bool(getattr(options, "ignore_model_findings_inline", False))

    def __call__(self, findings: list[Finding], buf: Any, item: Item) -> list[Finding]:
        if not findings or not any(f.kind != "model" or self.models for f in findings):
            return findings
        if not hasattr(buf, "find"):  # e.g. a memoryview
            buf = bytes(buf)
        markers = find_markers(buf)
        if not markers:
            return findings
        out = []
        for f in findings:
            if f.kind != "model" or self.models:
                mks = markers.get(finding_line(f), ())
                if any(_covers(mk.rules, f.rule_id) for mk in mks):
                    continue
            out.append(f)
        return out
