"""Baselines: a reviewed list of known findings, so ``scan --baseline FILE`` reports only new ones.

The file is JSON, written byte-identically for the same findings on any machine: entries sorted, no
timestamps, no absolute paths, no secrets and no redacted previews; each entry is ``{"fingerprint", "path",
"rule_id"}``. The fingerprint is the one every report already shows (sha256 of rule id and secret).

A finding is known when its ``(fingerprint, path)`` pair is in the baseline. Line numbers are not part of the
match, so editing around a known secret does not make it "new"; the same secret copied into another file is
new. The path is the file's *location key* (``Locator``), which does not depend on the PATH a command was given
nor on the directory it runs in: relative to the top of the git work tree the PATH is in; outside any work tree,
relative to the baseline file's directory when the file lies under it; else (a tree elsewhere) the path as the
scan reports it. ``--staged``, ``--since-commit`` and ``--history`` already report paths relative to the
repository's top. Version 1 files (written before location keys) stored the reported path: an entry of theirs
matches either the reported path or the location key, so they keep working as they did, and more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from veritensor_fast.findings import Finding, display_path
from veritensor_fast.safeio import write_text_replacing

FORMAT = "veritensor-fast-baseline"
VERSION = 2  # 2: paths are location keys; 1: paths as the scan reported them (still read)
READ_VERSIONS = (1, 2)


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
    version: int = VERSION

    @classmethod
    def from_findings(cls, findings: Iterable[Finding], key: Callable[[Finding], str] | None = None) -> Baseline:
        """``key``: the finding's location key (``Locator(...).key``); default the reported path."""
        k = _unleaked(findings, key or _reported)
        return cls(tuple(sorted({BaselineEntry(k(f), f.rule_id, f.fingerprint) for f in findings})))

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

    def filter_new(self, findings: Sequence[Finding],
                   key: Callable[[Finding], str] | None = None) -> tuple[list[Finding], int]:
        """Findings not in the baseline, and how many were dropped as known. ``key`` as for ``from_findings``; a
        version 1 entry also matches the reported path (what version 1 stored)."""
        known = self.keys()
        k = _unleaked(findings, key or _reported)
        legacy = self.version == 1
        new = [f for f in findings
               if (f.fingerprint, k(f)) not in known and not (legacy and (f.fingerprint, f.path) in known)]
        return new, len(findings) - len(new)


def _reported(f: Finding) -> str:
    return f.path


def _unleaked(findings: Iterable[Finding], key: Callable[[Finding], str]) -> Callable[[Finding], str]:
    """``key`` with the secrets found in file names redacted (``HF_TOKEN=hf_....txt``): a baseline is committed
    to the repository, and stored the whole token; the same redaction when matching keeps such a file known."""
    from veritensor_fast.redaction import Redactor

    r = Redactor(f.secret for f in findings if f.secret and (f.location or {}).get("in") == "path")
    return (lambda f: r.text(key(f))) if r else key


def _git_top(d: str) -> str | None:
    """The nearest directory at or above ``d`` holding a ``.git`` entry (a work tree's top; a linked worktree or
    submodule has a ``.git`` file). Found by name only: no git process, nothing of the repository is read."""
    while True:
        if os.path.lexists(os.path.join(d, ".git")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


class Locator:
    """The location key of a finding of a file scan of ``roots`` (the PATHs as given, as ``FileSource`` got
    them), for a baseline at ``baseline_file``; see the module docstring. ``roots=None`` (standard input,
    ``--staged``, ``--since-commit``, ``--history``): the reported path, already repository-relative."""

    def __init__(self, roots: Sequence[str] | None, baseline_file: str | os.PathLike[str]) -> None:
        self._dir = os.path.realpath(os.path.dirname(os.path.abspath(os.fspath(baseline_file))))
        self._tops: dict[str, str | None] = {}
        #: (reported prefix, the location key's prefix for it or None: keep the reported path, is a file root)
        self._roots: list[tuple[str, str | None, bool]] = []
        roots = [r for r in roots or () if r != "-"]
        multi = len(roots) > 1
        for r in roots:
            prefix = display_path(os.path.normpath(r).replace(os.sep, "/")) if multi else ""
            is_dir = os.path.isdir(r)
            base = os.path.realpath(r if is_dir else os.path.dirname(os.path.abspath(r)))
            lead = self._lead(base)
            if lead is not None and not is_dir:
                lead = "/".join(x for x in (lead, display_path(os.path.basename(r))) if x)
            self._roots.append((prefix, lead, not is_dir))
        self._roots.sort(key=lambda t: len(t[0]), reverse=True)  # the longest prefix first

    def _lead(self, base: str) -> str | None:
        top = self._tops.get(base, "")
        if top == "":
            top = self._tops[base] = _git_top(base)
        if top is None and (base == self._dir or base.startswith(self._dir.rstrip(os.sep) + os.sep)):
            top = self._dir
        if top is None:
            return None
        rel = os.path.relpath(base, top)
        return "" if rel == "." else display_path(rel.replace(os.sep, "/"))

    def key(self, f: Finding) -> str:
        path = f.path
        if f.commit is not None or f.repo is not None:
            return path
        for prefix, lead, is_file in self._roots:
            if prefix and path != prefix and not path.startswith(prefix + "/"):
                continue
            if lead is None:
                return path
            if is_file:
                return lead
            rest = path[len(prefix) + 1:] if prefix else path
            return f"{lead}/{rest}" if lead else rest
        return path


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
    if type(doc.get("version")) is not int or doc["version"] not in READ_VERSIONS:
        raise BaselineError(f"baseline {os.fspath(path)} has unsupported version {doc.get('version')!r}")
    raw = doc.get("findings")
    if not isinstance(raw, list):
        raise BaselineError(f"baseline {os.fspath(path)}: \"findings\" must be a list")
    entries = []
    for i, e in enumerate(raw):
        if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("fingerprint", "path", "rule_id"))):
            raise BaselineError(f"baseline {os.fspath(path)}: entry {i} needs string fingerprint, path, rule_id")
        entries.append(BaselineEntry(e["path"], e["rule_id"], e["fingerprint"]))
    return Baseline(tuple(sorted(set(entries))), doc["version"])
