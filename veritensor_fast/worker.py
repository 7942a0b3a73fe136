"""The worker: a plain function over a batch of picklable ``Item`` references.

``init_worker`` builds everything expensive once per process (rules, Hyperscan scratch, detectors, readers);
``run_batch`` reads each item, runs the detectors and returns a ``BatchResult``. The engine calls these in a
process pool, or in-process for ``--jobs 1``; a distributed executor can call them the same way.
"""

from __future__ import annotations

import atexit
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from veritensor_fast.buffers import count_newlines
from veritensor_fast.findings import Finding, Item, ScanError, fingerprint, redact
from veritensor_fast.matcher import SecretMatch, SecretMatcher
from veritensor_fast.rules import RuleSet, load_rules


@dataclass(frozen=True)
class ScanOptions:
    """Everything a worker needs to know about the scan. Frozen and picklable."""

    strict_secrets: bool = False
    include_outputs: bool = True
    rule_files: tuple[str, ...] = ()
    disabled_rules: tuple[str, ...] = ()
    entropy_overrides: tuple[tuple[str, float], ...] = ()
    allow_globals: tuple[str, ...] = ()
    decode_base64: bool = True
    base64_depth: int = 2
    python_ast: bool = True
    models: bool = True
    inline_ignores: bool = True
    ignore_model_findings_inline: bool = False  # inline ignore markers may hide model-file findings
    allow_secrets: tuple[str, ...] = ()  # regexes: a secret they match (search) is a known test value, not reported

    def ruleset(self) -> RuleSet:
        return load_rules(self.rule_files, self.disabled_rules, dict(self.entropy_overrides) or None)


@dataclass
class BatchResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    items: int = 0
    bytes: int = 0
    #: (item key, findings it added, whether it had errors) for every item read, in order; an item's findings
    #: are consecutive in ``findings``. Lets the parent record per-item results (git history datastore).
    scanned: list[tuple[str, int, bool]] = field(default_factory=list)


#: Readers by item kind: (module, class). Imported on first use in each worker.
READERS: dict[str, tuple[str, str]] = {
    "file": ("veritensor_fast.sources.fs", "FileReader"),
    "blob": ("veritensor_fast.sources.git", "BlobReader"),
    "memory": ("veritensor_fast.sources.memory", "MemoryReader"),
}


class WorkerContext:
    """Per-process state, built once: rule set, matcher (Hyperscan scratch), detectors, readers."""

    def __init__(self, options: ScanOptions, serialised_db: bytes | None = None,
                 ruleset: RuleSet | None = None) -> None:
        self.options = options
        self.ruleset = ruleset if ruleset is not None else options.ruleset()
        self.matcher = SecretMatcher(self.ruleset, serialised_db, strict=options.strict_secrets)
        self._readers: dict[str, Any] = {}
        from veritensor_fast.detectors import build_detectors

        self.allow_secret = re.compile("|".join(f"(?:{p})" for p in options.allow_secrets)) \
            if options.allow_secrets else None
        self.detectors = build_detectors(self)
        self.postprocessors: list[Any] = []
        if options.inline_ignores:
            try:
                from veritensor_fast.ignore import InlineIgnores
            except ModuleNotFoundError as exc:
                if exc.name != "veritensor_fast.ignore":
                    raise
            else:
                self.postprocessors.append(InlineIgnores(options))

    def reader(self, kind: str) -> Any:
        r = self._readers.get(kind)
        if r is None:
            if kind not in READERS:
                raise KeyError(f"no reader for item kind {kind!r}")
            mod, cls = READERS[kind]
            r = getattr(importlib.import_module(mod), cls)()
            self._readers[kind] = r
            if hasattr(r, "close"):
                atexit.register(r.close)
        return r

    def close(self) -> None:
        for r in self._readers.values():
            if hasattr(r, "close"):
                r.close()
        self._readers.clear()

    def run_batch(self, batch: list[Item]) -> BatchResult:
        from veritensor_fast.sources.fs import InputError

        res = BatchResult()
        by_kind: dict[str, list[Item]] = {}
        for it in batch:
            by_kind.setdefault(it.kind, []).append(it)
        for kind, items in by_kind.items():
            reader = self.reader(kind)
            if hasattr(reader, "prefetch"):
                reader.prefetch(items)
        for item in batch:
            try:
                buf, closer = self.reader(item.kind).open(item)
            except InputError as exc:
                res.errors.append(ScanError(item.path, exc.reason, exc.kind))
                continue
            try:
                scan = ItemScan(self, item)
                self.scan_buffer(buf, item, scan)
                found = scan.finish(buf)
                res.findings.extend(found)
                res.errors.extend(scan.errors)
                res.scanned.append((item.key, len(found), bool(scan.errors)))
                res.items += 1
                res.bytes += len(buf)
            finally:
                closer()
        return res

    def scan_buffer(self, buf: Any, item: Item, scan: ItemScan, skip: tuple[str, ...] = ()) -> None:
        head = bytes(buf[:4096])
        for det in self.detectors:
            if det.name in skip:
                continue
            try:
                det.scan(buf, item, head, scan)
            except MemoryError:
                scan.error(f"detector {det.name}: out of memory; item only partly scanned", "limit")
            except Exception as exc:  # a bug in a detector must not lose the rest of the scan
                scan.error(f"detector {det.name} failed: {type(exc).__name__}", "internal")


class ItemScan:
    """Collects what detectors find in one item and turns matches into ``Finding`` objects."""

    __slots__ = ("ctx", "item", "findings", "finished", "errors", "text_done", "_nl_pos", "_nl_line")

    def __init__(self, ctx: WorkerContext, item: Item) -> None:
        self.ctx = ctx
        self.item = item
        self.findings: list[Finding] = []
        self.errors: list[ScanError] = []
        self.text_done = False
        #: findings already de-duplicated and post-processed against another buffer (an archive member's)
        self.finished: list[Finding] = []
        self._nl_pos = 0
        self._nl_line = 1

    def error(self, reason: str, kind: str = "parse", level: str = "") -> None:
        """Record a problem with this item; ``level="warning"`` when it was scanned anyway (see ``error_level``)."""
        self.errors.append(ScanError(self.item.path, reason, kind, level))

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def line_col(self, buf: Any, offset: int) -> tuple[int, int]:
        """1-based line and (character) column of byte ``offset`` in ``buf``."""
        if offset < self._nl_pos:
            self._nl_pos, self._nl_line = 0, 1
        self._nl_line += count_newlines(buf, self._nl_pos, offset)
        self._nl_pos = offset
        ls = buf.rfind(b"\n", 0, offset) + 1
        col = len(bytes(buf[ls:offset]).decode("utf-8", "replace")) + 1
        return self._nl_line, col

    def add_secret(self, m: SecretMatch, buf: Any = None, *, line: int | None = None, column: int | None = None,
                   location: dict[str, Any] | None = None, decoded: str | None = None) -> None:
        """Record a confirmed secret. Line/column come from ``m.start`` in ``buf`` unless given."""
        allow = self.ctx.allow_secret
        if allow is not None and allow.search(m.secret.decode("utf-8", "replace")):
            return  # configured as a known, harmless value (``allow_secrets``)
        if line is None:
            line, col = self.line_col(buf, m.start)
            column = col if column is None else column
        rule = m.rule
        self.findings.append(Finding(
            rule_id=rule.id, kind="secret", severity=rule.severity, path=self.item.path,
            line=line, column=column or 1, message=rule.name + (f" (decoded: {decoded})" if decoded else ""),
            redacted=redact(m.secret), fingerprint=fingerprint(rule.id, m.secret), location=location,
            decoded=decoded, secret=m.secret.decode("utf-8", "replace"),
        ))

    def add_model(self, rule_id: str, severity: str, message: str, evidence: str, *,
                  location: dict[str, Any] | None = None, line: int = 1, column: int = 1) -> None:
        """Record a model-file finding. ``evidence`` (e.g. ``os.system``) is not secret and is shown as is."""
        self.findings.append(Finding(
            rule_id=rule_id, kind="model", severity=severity, path=self.item.path, line=line, column=column,
            message=message, redacted=evidence, fingerprint=fingerprint(rule_id, self.item.path + "\x00" + evidence),
            location=location,
        ))

    def finish(self, buf: Any) -> list[Finding]:
        """Drop duplicates (same secret, same place, found by two detectors) and apply post-processors."""
        seen: set[tuple[str, int, str]] = set()
        out: list[Finding] = []
        for f in self.findings:
            key = (f.fingerprint, f.line, repr(sorted(f.location.items())) if f.location else "")
            if key in seen:
                continue
            seen.add(key)
            out.append(f)
        for post in self.ctx.postprocessors:
            out = post(out, buf, self.item)
        return out + self.finished


# ---- process-pool entry points -------------------------------------------------------------------------

_CTX: WorkerContext | None = None


def init_worker(options: ScanOptions, serialised_db: bytes | None) -> None:
    global _CTX
    _CTX = WorkerContext(options, serialised_db)


def run_batch(batch: list[Item]) -> BatchResult:
    if _CTX is None:  # pragma: no cover - engine always initialises
        raise RuntimeError("worker not initialised")
    return _CTX.run_batch(batch)
