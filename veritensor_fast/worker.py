"""The worker: a plain function over a batch of picklable ``Item`` references.

``init_worker`` builds everything expensive once per process (rules, Hyperscan scratch, detectors, readers);
``run_batch`` reads each item, runs the detectors and returns a ``BatchResult``. The engine calls these in a
process pool, or in-process for ``--jobs 1``; a distributed executor can call them the same way.
"""

from __future__ import annotations

import atexit
import bisect
import gc
import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from veritensor_fast.batch_gate import open_batch
from veritensor_fast.batching import expand_capped, expand_items, expand_trees, part_changed, walked  # noqa: F401 (expand_items: re-exported)
from veritensor_fast.buffers import LargeFile, LineColumn
from veritensor_fast.findings import OUT_OF_MEMORY, Finding, Item, ScanError, fingerprint, redact
from veritensor_fast.matcher import SecretMatch, SecretMatcher
from veritensor_fast.rules import RuleSet, load_rules
from veritensor_fast.windows import WHOLE_FILE_DETECTORS, scan_windows, split_file, wants_whole_file  # noqa: F401

#: A batch closes at this many items or bytes, whichever comes first (small files must not pay a task each);
#: a worker hands back a file of ``BATCH_BYTES`` or more found inside a directory shard as a task of its own.
BATCH_ITEMS = 256
BATCH_BYTES = 4 << 20
#: Parts of a large file scanned in windows, in a pool (``split_file``): 8 windows. The real tree's 434 MB
#: ``libtorch_cpu.so`` becomes 4 tasks of ~0.07 CPU-s instead of one of 0.25 s (the longest task of the scan).
#: A part costs ~0.01 CPU-s more than its windows (the window buffers' pages are faulted in again).
SPAN_BYTES = 128 << 20


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
    #: Files a directory shard held that are too big to scan inside this batch: the executor runs each as its
    #: own task (``sources.fs.expand_shard``), so one worker never gets a directory of large files alone.
    more: list[Item] = field(default_factory=list)
    #: What a batch of shards holds past ``BATCH_BYTES`` (``expand_capped``), as batches: a task each.
    rest: list[list[Item]] = field(default_factory=list)
    #: What each part of a split file found, ``(key, span start, findings, errors)``: the parent merges the
    #: parts of one file as ``scan_windows`` merges its windows (``batching.merge_spans``).
    spans: list[tuple[str, int, list[Finding], list[ScanError]]] = field(default_factory=list)
    #: Directories the default excludes skipped in the ``tree`` items this batch walked (``FileSource.skipped_dirs``).
    skipped: list[str] = field(default_factory=list)
    #: The ``tree`` items this task walked: the files they listed, the ``tree`` items handed back (``rest``) less
    #: those taken (``batching.walked``). The progress line's total is known once no tree item is left to walk.
    walked: tuple[int, int] = (0, 0)


#: Readers by item kind: (module, class). Imported on first use in each worker.
READERS: dict[str, tuple[str, str]] = {
    "file": ("veritensor_fast.sources.fs", "FileReader"),
    "blob": ("veritensor_fast.sources.git_read", "BlobReader"),
    "commit": ("veritensor_fast.sources.git_read", "CommitReader"),
    "memory": ("veritensor_fast.sources.memory", "MemoryReader"),
}


class WorkerContext:
    """Per-process state, built once: rule set, matcher (Hyperscan scratch), detectors, readers."""

    #: Split a file scanned in windows into parts of about this many bytes, a task each (``split_file``); 0: never.
    #: Pool workers only (``init_worker``): in-process, the parts would only run one after another.
    span_bytes = 0

    def __init__(self, options: ScanOptions, serialised_db: bytes | None = None,
                 ruleset: RuleSet | None = None) -> None:
        self.options = options
        self.ruleset = ruleset if ruleset is not None else options.ruleset()
        self.matcher = SecretMatcher(self.ruleset, serialised_db, strict=options.strict_secrets)
        self._readers: dict[str, Any] = {}
        from veritensor_fast.detectors import build_detectors

        self.allow_secret = allow_regex(options)
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
        res = BatchResult()
        given = batch
        batch, res.errors, res.skipped, trees = expand_trees(given, BATCH_ITEMS, BATCH_BYTES, BATCH_ITEMS)
        if batch is not given:  # tree items walked
            res.walked = walked(given, batch, trees)
        # a shard's files are opened as they are stat-ed (``FileReader.probe``); what is not read is closed below
        files = self.reader("file") if any(it.kind == "dir" for it in batch) else None
        if files is not None:
            files.limit(BATCH_BYTES)  # files past what the batch takes are stat-ed, not opened (another task reads them)
        try:
            batch, errors, res.more, res.rest = expand_capped(batch, BATCH_BYTES, BATCH_BYTES,
                                                              files.probe if files is not None else None)
            res.errors += errors
            res.rest += trees
            self._scan_batch(batch, res)
        finally:
            if files is not None:
                files.release()
        return res

    def _scan_batch(self, batch: list[Item], res: BatchResult) -> None:
        from veritensor_fast.sources.fs import InputError

        for kind in dict.fromkeys([it.kind for it in batch]):  # the kinds in order of first use
            reader = self.reader(kind)
            if hasattr(reader, "prefetch"):
                reader.prefetch([it for it in batch if it.kind == kind])
        in_names = self.path_secrets(batch)
        pre = open_batch(self, batch)  # read up front, the quiet ones found in one scan (batch_gate)
        # per item: the result's lists and the gate's answers looked up once per batch, not once per item
        quiet = pre.quiet if pre is not None else ()
        got = pre.got if pre is not None else []  # what the gate read up front: (buffer, closer), error or None
        ngot = len(got)
        findings, errors, scanned = res.findings, res.errors, res.scanned
        for i, item in enumerate(batch):
            try:
                g = got[i] if i < ngot else None
                if type(g) is tuple:  # read up front (``Opened.open`` answers the same)
                    buf, closer = g
                else:
                    buf, closer = pre.open(i) if pre is not None else self.reader(item.kind).open(item)
            except (InputError, MemoryError) as exc:
                errors.append(ScanError(item.path, exc.reason, exc.kind) if isinstance(exc, InputError)
                              else ScanError(item.path, OUT_OF_MEMORY + "; not read", "limit"))
                if i in in_names and not item.span:  # the name leaks even if the content cannot be read (a
                    # later part of a split file: the first part reported it)
                    findings.extend(in_names[i])
                    scanned.append((item.key, len(in_names[i]), True))
                continue
            if i in quiet:  # no detector can report anything for it: only its name
                changed = closer()  # a file truncated while it was read: reported as without the gate
                named = in_names.get(i) if in_names else None
                bad = changed is not None and isinstance(changed, str)
                if named:
                    findings.extend(named)
                if bad:
                    errors.append(ScanError(item.path, changed, "changed"))
                scanned.append((item.key, len(named) if named else 0, bad))
                res.items += 1
                res.bytes += len(buf)
                continue
            if self.span_bytes and isinstance(buf, LargeFile) and not item.span:
                item = split_file(item, buf, self.span_bytes, res.more)
            scan = ItemScan(self, item)
            other = item.span and part_changed(item, buf)  # a later part opened another version of the file
            if other:
                scan.error(other, "changed")
            try:
                found = [] if other and not isinstance(buf, LargeFile) else self.scan_item(buf, item, scan)
            except MemoryError:  # outside a detector (they are caught one by one): what was found is kept
                scan.error(OUT_OF_MEMORY + "; item only partly scanned", "limit")
                found = scan.finish(buf)
            finally:
                changed = closer()
            if isinstance(changed, str):  # the file changed while it was scanned
                scan.error(changed, "changed")
            if scan.errors and found:
                scrub_errors(scan.errors, found)
            if item.span:  # one part of a split file: the parent merges the parts; its name counts once
                res.spans.append((item.key, item.span[0], found, scan.errors))
                if not item.span[0]:
                    findings.extend(in_names.get(i, []))
                    res.items += 1
                res.bytes += max(0, min(item.span[1], len(buf)) - item.span[0])
                continue
            found += in_names.get(i, [])
            findings.extend(found)
            errors.extend(scan.errors)
            scanned.append((item.key, len(found), bool(scan.errors)))
            res.items += 1
            res.bytes += len(buf)

    def scan_item(self, buf: Any, item: Item, scan: ItemScan) -> list[Finding]:
        """Run the detectors over one item's buffer (a ``LargeFile``: window by window) and finish it."""
        if isinstance(buf, LargeFile):
            if not wants_whole_file(buf, item):
                return scan_windows(self, buf, item, scan)
            from veritensor_fast import randread  # no memory map of a file being analysed: no SIGBUS

            if not randread.text_like(buf.pread(0, 4096), item):
                return randread.scan_random_access(self, buf, item, scan)
            return randread.scan_text_like(self, buf, item, scan)  # notebook/JSON/UTF-16 text
        self.scan_buffer(buf, item, scan)
        return scan.finish(buf)

    def path_secrets(self, batch: list[Item]) -> dict[int, list[Finding]]:
        """Secrets in the reported paths of ``batch`` (a token in a file name is a leak too), by item index."""
        return secrets_in_paths(self.matcher, self.allow_secret, [it.path for it in batch])

    def scan_buffer(self, buf: Any, item: Item, scan: ItemScan, skip: tuple[str, ...] = (),
                    head: bytes | None = None) -> None:
        """Run the detectors over ``buf``. ``head``: the first 4 KiB of the file when ``buf`` is one window of it
        (what the detectors judge a file's kind by: its magic, a NUL byte), else ``buf``'s own."""
        if head is None:
            head = bytes(buf[:4096])
        for det in self.detectors:
            if skip and det.name in skip:
                continue
            try:
                det.scan(buf, item, head, scan)
            except MemoryError:
                scan.error(f"detector {det.name}: {OUT_OF_MEMORY}; item only partly scanned", "limit")
            except Exception as exc:  # a bug in a detector must not lose the rest of the scan
                scan.error(f"detector {det.name} failed: {type(exc).__name__}", "internal")


class ItemScan:
    """Collects what detectors find in one item and turns matches into ``Finding`` objects."""

    __slots__ = ("ctx", "item", "findings", "finished", "errors", "text_done", "_lc", "keep", "budgets",
                 "b64_hits", "shared")

    def __init__(self, ctx: WorkerContext, item: Item) -> None:
        self.ctx = ctx
        self.item = item
        self.findings: list[Finding] = []
        self.errors: list[ScanError] = []
        self.text_done = False
        #: findings already de-duplicated and post-processed against another buffer (an archive member's)
        self.finished: list[Finding] = []
        self._lc: LineColumn | None = None
        #: when scanning one window of a large file: the buffer offsets [lo, hi) this window is responsible for
        self.keep: tuple[int, int] | None = None
        #: decompression budgets of the top-level file (``veritensor_fast.decompress``), shared with its members
        self.budgets: dict[str, Any] = {}
        #: ``(buffer, end offsets)`` of the base64 needles the text pass's scan met (``detectors/b64_needles``)
        self.b64_hits: tuple[Any, list[int]] | None = None
        #: ``(buffer, hits)`` of a later detector's patterns that the text pass's scan met (``pyast_shared``)
        self.shared: tuple[Any, list[tuple[int, int]]] | None = None

    def error(self, reason: str, kind: str = "parse", level: str = "") -> None:
        """Record a problem with this item; ``level="warning"`` when it was scanned anyway (see ``error_level``)."""
        self.errors.append(ScanError(self.item.path, reason, kind, level))

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def line_col(self, buf: Any, offset: int) -> tuple[int, int]:
        """1-based line and (character) column of byte ``offset`` in ``buf``; linear over increasing offsets."""
        lc = self._lc
        if lc is None or lc.buf is not buf:
            lc = self._lc = LineColumn(buf)
        return lc.at(offset)

    def add_secret(self, m: SecretMatch, buf: Any = None, *, line: int | None = None, column: int | None = None,
                   location: dict[str, Any] | None = None, decoded: str | None = None) -> None:
        """Record a confirmed secret. Line/column come from ``m.start`` in ``buf`` unless given."""
        allow = self.ctx.allow_secret
        if allow is not None and allow.search(m.secret.decode("utf-8", "replace")):
            return  # configured as a known, harmless value (``allow_secrets``)
        if line is None:
            if self.keep is not None and not self.keep[0] <= m.start < self.keep[1]:
                return  # in the context around a window: another window reports it
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
        if rule_id in self.ctx.options.disabled_rules:  # --disable-rule model.x
            return
        self.findings.append(Finding(
            rule_id=rule_id, kind="model", severity=severity, path=self.item.path, line=line, column=column,
            message=message, redacted=evidence,
            fingerprint=fingerprint(rule_id, self.item.path + "\x00" + evidence + "\x00"
                                    + str((location or {}).get("sha256", ""))),  # the content judged
            location=location,
        ))

    def finish(self, buf: Any) -> list[Finding]:
        """Drop duplicates (same secret, same place, found by two detectors) and apply post-processors (they
        filter findings: none of them has anything to do for an item without any)."""
        if not self.findings:
            return list(self.finished)
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


def scrub_errors(errors: list[ScanError], found: list[Finding]) -> None:
    """Redact, in place, the secrets of ``found`` wherever they appear in ``errors``' reasons and paths: a reason
    may quote a name the input chose (an archive member's), and such a name can hold the secret itself."""
    secrets = [f.secret for f in found if f.secret]
    if secrets:
        from veritensor_fast.redaction import Redactor

        r = Redactor(secrets)
        errors[:] = [r.error(e) for e in errors]


def allow_regex(options: ScanOptions) -> Any:
    """The ``allow_secrets`` patterns as one regex (None when there are none), in RE2: user regexes run in
    linear time."""
    if not options.allow_secrets:
        return None  # no RE2 import (start-up cost) when there is nothing to compile
    from veritensor_fast.rules.safe_regex import compile_any

    return compile_any(options.allow_secrets)


def secrets_in_paths(matcher: SecretMatcher, allow: Any,
                     paths: list[str]) -> dict[int, list[Finding]]:
    """Findings for secrets inside ``paths`` (reported paths, not file content), by index into ``paths``.

    One matcher call over all paths joined by a separator no token spans. Such a finding has
    ``location={"in": "path"}``, line 1 and the column of the token in the path."""
    parts = [p.encode("utf-8", "surrogateescape") for p in paths]
    out: dict[int, list[Finding]] = {}
    matches = matcher.find(b"\n\x00\n".join(parts))
    if not matches:
        return out
    starts, pos = [], 0
    for p in parts:
        starts.append(pos)
        pos += len(p) + 3
    for m in matches:
        i = bisect.bisect_right(starts, m.start) - 1
        a = starts[i]
        if m.end > a + len(parts[i]):
            continue
        text = m.secret.decode("utf-8", "replace")
        if allow is not None and allow.search(text):
            continue
        rule = m.rule
        col = len(parts[i][:m.start - a].decode("utf-8", "replace")) + 1
        out.setdefault(i, []).append(Finding(
            rule_id=rule.id, kind="secret", severity=rule.severity, path=paths[i], line=1, column=col,
            message=rule.name + " (in the file name)", redacted=redact(m.secret),
            fingerprint=fingerprint(rule.id, m.secret), location={"in": "path"}, secret=text))
    return out


# ---- process-pool entry points -------------------------------------------------------------------------

_CTX: WorkerContext | None = None
#: A context the parent built before forking its workers, with the options and database it was built for.
_PREBUILT: tuple[ScanOptions, bytes | None, WorkerContext] | None = None


#: Modules the workers of nearly every real scan import on first use (the model analyser: any model-like file).
#: ``prebuild`` imports them in the parent before it forks, so the workers share one import instead of each
#: paying for its own. numpy is not among them: since entropy floors are decided in pure Python
#: (``kernels.entropy.below``) a scan needs it only for a notebook over 8 MiB or a token within 1e-9 of a floor,
#: and importing it before the fork cost every scan 0.16 CPU-s of serial start-up.
PREFORK_IMPORTS = ("veritensor_fast.models.analyzer", "veritensor_fast.models.tar7z",
                   "veritensor_fast.models.joblib_arrays", "veritensor_fast.models.compressed",
                   "veritensor_fast.models.allow_ml", "tarfile", "unicodedata")
#: Collector thresholds while a scan runs (CPython's default: 700, 10, 10). A scan allocates millions of
#: short-lived container objects (Python ASTs, findings) that reference counting frees, yet every 700 of them
#: start a collection that walks the survivors: 1,700 collections, 0.32 s of 5.3 s CPU on the real tree, 0.04 s
#: with these (only garbage in reference cycles waits longer to be freed).
SCAN_GC_THRESHOLD = (50_000, 20, 20)


def prebuild(ctx: WorkerContext | None, serialised_db: bytes | None = None) -> None:
    """Offer ``ctx`` (built in this process, no reader opened yet) to workers forked from it: ``init_worker``
    adopts it instead of building its own (rules, detectors, Hyperscan databases: measured ~0.07 s CPU per
    worker with the on-disk database cache warm, ~0.6-1.4 s when a database compiles), and import
    ``PREFORK_IMPORTS`` here for them. ``None`` withdraws it."""
    global _PREBUILT
    _PREBUILT = None if ctx is None else (ctx.options, serialised_db, ctx)
    if ctx is not None:
        for name in PREFORK_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:  # pragma: no cover - an optional module: the worker imports it when needed
                pass


_GC_LOCK = threading.Lock()
_GC_SCANS: list[tuple[int, ...]] = []  # the caller's thresholds, once per scan running in this process


def scan_gc(enter: bool = True) -> None:
    """Set ``SCAN_GC_THRESHOLD`` while a scan runs (``enter``); the last scan to end (``enter=False``) puts
    back the thresholds the first one found (scans in several threads of one process: a Dask worker)."""
    with _GC_LOCK:
        if enter:
            _GC_SCANS.append(gc.get_threshold())
            gc.set_threshold(*SCAN_GC_THRESHOLD)
        elif _GC_SCANS:
            first = _GC_SCANS[0]
            _GC_SCANS.pop()
            if not _GC_SCANS:
                gc.set_threshold(*first)


def init_worker(options: ScanOptions, serialised_db: bytes | None) -> None:
    """This process's scan context, built or adopted (``prebuild``); the GC thresholds are the pool's (``_init``)."""
    global _CTX
    pre = _PREBUILT
    if pre is not None and pre[0] == options and pre[1] == serialised_db and not pre[2]._readers:
        _CTX = pre[2]  # a forked copy of the parent's context: nothing to build
    else:
        _CTX = WorkerContext(options, serialised_db)
    _CTX.span_bytes = SPAN_BYTES


def run_batch(batch: list[Item]) -> BatchResult:
    if _CTX is None:  # pragma: no cover - engine always initialises
        raise RuntimeError("worker not initialised")
    return _CTX.run_batch(batch)
