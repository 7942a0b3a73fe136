"""Baselines: a reviewed list of known findings, so ``scan --baseline FILE`` reports only new ones.

The file is JSON, written byte-identically for the same findings on any machine: entries sorted, no
timestamps, no absolute paths, no secrets and no redacted previews; each entry is ``{"fingerprint", "path",
"rule_id"}``. The fingerprint is the one every report already shows (sha256 of rule id and secret).

A finding is known when its ``(fingerprint, path)`` pair is in the baseline. Line numbers are not part of the
match, so editing around a known secret does not make it "new"; the same secret copied into another file is
new. Paths are the paths the scan reports (relative to the scanned root, or to the repository top-level for
``--staged``/``--since-commit``), so create the baseline from the repository root (``baseline create .``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from veritensor_fast.findings import Finding
from veritensor_fast.safeio import write_text_replacing

FORMAT = "veritensor-fast-baseline"
VERSION = 1


class BaselineError(Exception):
    """The baseline file cannot be read or is not a veritensor-fast baseline."""


@dataclass(frozen=True, order=True)
class BaselineEntry:
    path: str
    rule_id: str
    fingerprint: str


@dataclass(frozen=True)
class Baseline:
    entries: tuple[BaselineEntry, ...]

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> Baseline:
        return cls(tuple(sorted({BaselineEntry(f.path, f.rule_id, f.fingerprint) for f in findings})))

    def dumps(self) -> str:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "findings": [{"fingerprint": e.fingerprint, "path": e.path, "rule_id": e.rule_id}
                         for e in self.entries],
        }
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a half-written baseline would silently un-know findings)."""
        write_text_replacing(path, self.dumps(), newline="\n")

    def keys(self) -> frozenset[tuple[str, str]]:
        return frozenset((e.fingerprint, e.path) for e in self.entries)

    def filter_new(self, findings: Sequence[Finding]) -> tuple[list[Finding], int]:
        """Findings not in the baseline, and how many were dropped as known."""
        known = self.keys()
        new = [f for f in findings if (f.fingerprint, f.path) not in known]
        return new, len(findings) - len(new)


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    from veritensor_fast.safeio import SmallFileError, read_regular_file

    try:
        doc = json.loads(read_regular_file(path, "baseline").decode("utf-8"))
    except SmallFileError as exc:
        raise BaselineError(str(exc)) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BaselineError(f"baseline {os.fspath(path)} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BaselineError(f"{os.fspath(path)} is not a veritensor-fast baseline (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise BaselineError(f"baseline {os.fspath(path)} has unsupported version {doc.get('version')!r}")
    raw = doc.get("findings")
    if not isinstance(raw, list):
        raise BaselineError(f"baseline {os.fspath(path)}: \"findings\" must be a list")
    entries = []
    for i, e in enumerate(raw):
        if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("fingerprint", "path", "rule_id"))):
            raise BaselineError(f"baseline {os.fspath(path)}: entry {i} needs string fingerprint, path, rule_id")
        entries.append(BaselineEntry(e["path"], e["rule_id"], e["fingerprint"]))
    return Baseline(tuple(sorted(set(entries))))
