"""Model-file detector: pickle, archive and model-format analysis (``veritensor_fast.models``) on every item.

Runs before the text pass and never claims the item's text (secrets inside model files are still found by the
text pass). Cost for ordinary files is a look at the first bytes of ``head`` (``models.sniff``, a module without
heavy imports); the analysers are imported, and one ``Analyzer`` built, only when a file sniffs as a model,
pickle or archive format. A text file whose first byte merely is a pickle opcode (``import``, ``class``, ``(``)
is dropped by ``pickle01_may_run``, which rejects only streams whose first opcode the walker itself rejects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Item
from veritensor_fast.models.sniff import (
    _DEAD_FIRST,
    PICKLE_OPCODES,
    TRIAL_BYTES,
    DcpDirs,
    has_model_ext,
    hdf5_after_userblock,
    pickle01_may_run,
    sniff,
    zip_tail,
)

#: The first bytes of a head :func:`sniff` may name something other than ``none`` or ``pickle?`` (given no
#: ``ustar`` at 257, no ``{`` at 8 and no model extension): its magic numbers and ``compression_of``'s codecs.
_MAGIC_FIRST = frozenset(b"P\x807\x93G\x89\x1f\x42\xfd\x28\x04\x78\x5d")
#: First bytes after which :meth:`ModelDetector.quiet` is True for a name without a model extension (and no
#: ``ustar`` at 257, no ``{`` at 8): no magic, and no pickle opcode, or one ``pickle01_may_run`` rejects whatever
#: follows it (``_DEAD_FIRST``: a commit's ``tree``, most letters text starts with).
_QUIET_FIRST = frozenset(b for b in range(256)
                         if b not in _MAGIC_FIRST and (b not in PICKLE_OPCODES or b in _DEAD_FIRST))

if TYPE_CHECKING:
    from veritensor_fast.models.analyzer import Analyzer
    from veritensor_fast.worker import ItemScan, WorkerContext


#: Findings of one rule listed per file; the rest are counted in one more finding (a bomb repeats its anomaly
#: for every member).
MAX_PER_RULE = 20


class ModelDetector:
    name = "model"

    def __init__(self, ctx: WorkerContext) -> None:
        self.allow_globals = tuple(ctx.options.allow_globals)
        self._analyzer: Analyzer | None = None
        # checkpoint directories (``models.sniff.DcpDirs``), remembered for one batch: a Dask worker keeps its
        # detectors for many scans, and a ``.metadata`` added since the last one must be seen
        self._dcp_dirs = DcpDirs()
        self._dcp = self._dcp_dirs.storage_file

    def dcp_storage(self, item: Item) -> bool:
        """Whether ``item`` is a file of a Distributed Checkpoint directory: analysed whatever its name."""
        return item.kind == "file" and self._dcp(item.key)

    def __new__(cls, ctx: WorkerContext) -> ModelDetector | None:  # type: ignore[misc]
        if not getattr(ctx.options, "models", True):
            return None
        return super().__new__(cls)

    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            from veritensor_fast.models.analyzer import Analyzer
            from veritensor_fast.models.base import AnalyzeOptions

            self._analyzer = Analyzer(AnalyzeOptions(allow_globals=self.allow_globals))
        return self._analyzer

    def quiet_test(self) -> Any:
        """The batch gate's question (``batch_gate``): :meth:`quiet`."""
        return self.quiet

    def quiet(self, item: Item, data: bytes, head: bytes) -> bool:
        """True when :meth:`scan` returns at once for ``data`` (no model, pickle or archive to analyse)."""
        path = item.path
        if self.dcp_storage(item):
            return False
        kind = sniff(head, path, len(data))
        if kind == "none":  # HDF5 after a user block (any name); a model name: a zip at the end, ONNX
            return not (hdf5_after_userblock(data) or has_model_ext(path) and (
                zip_tail(data) or path[-5:].lower() == ".onnx"))
        return (kind == "pickle?" and not has_model_ext(path) and not pickle01_may_run(data, TRIAL_BYTES)
                and not hdf5_after_userblock(data))

    def quiet_batch(self, items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        """:meth:`quiet` for each item of a batch, in one call (``batch_gate``): a head whose first byte is in
        :data:`_QUIET_FIRST`, without ``ustar`` at 257 or ``{`` at 8 (a safetensors header), under a name with no
        model extension, shorter than 520 bytes or without the HDF5 signature after a user block, is quiet without
        calling :func:`sniff`."""
        self._dcp_dirs.clear()  # a new batch: directories are looked at again
        files = any(it.kind == "file" for it in items)
        first, quiet, dcp, ub = _QUIET_FIRST, self.quiet, self.dcp_storage, hdf5_after_userblock
        # only a file can be a checkpoint directory's (``dcp_storage``): no call per git object
        return [(not files or not dcp(it)) and (not h or h[0] in first) and not h.startswith(b"ustar", 257) and not h.startswith(b"{", 8)
                and not has_model_ext(it.path) and (len(d) < 520 or 0x89 not in d[512::512] or not ub(d)) or quiet(it, d, h)
                for it, d, h in zip(items, datas, heads, strict=True)]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        path = item.path
        kind = sniff(head, path, len(buf))
        dcp = self.dcp_storage(item)
        if (kind == "none" or kind == "pickle?") and not dcp:
            if has_model_ext(path):
                if (kind == "none" and not zip_tail(buf) and not hdf5_after_userblock(buf)
                        and path[-5:].lower() != ".onnx"):
                    return
            elif (kind == "none" or not pickle01_may_run(buf, TRIAL_BYTES)) and not hdf5_after_userblock(buf):
                # not a model: a non-model name whose first opcode the walker rejects is no pickle either (and,
                # like any other text file, is not opened as a zip); HDF5 behind a user block is, under any
                # name (tf.keras 2's load_model opens any file h5py.is_hdf5 accepts)
                return
        from veritensor_fast import decompress

        top = buf if item.kind != "member" else None  # its decompressed reads are shared with the archive pass
        with decompress.scope(decompress.for_scan(scan, "model", top)):  # one budget per top-level file
            issues = self.analyzer().analyze(buf, path, dcp=dcp)
        per_rule: dict[tuple[str, str], int] = {}
        # the archive detector walks the same containers and reports their damage and limits as errors itself
        covered = any(getattr(d, "name", "") == "archive" for d in getattr(getattr(scan, "ctx", None), "detectors", ()))
        for issue in issues:
            if issue.error:  # analysis stopped before any model-like content: an incomplete scan, not a finding
                if not covered:
                    member = (issue.location or {}).get("member")
                    scan.error(f"model analysis incomplete{f' in {member!r}' if member else ''}: {issue.message}",
                               issue.error)
                continue
            key = (issue.rule_id, issue.severity)
            n = per_rule[key] = per_rule.get(key, 0) + 1
            if n > MAX_PER_RULE and issue.severity != "critical":
                continue  # a 42.zip-style nest repeats one anomaly per member: counted below
            scan.add_model(issue.rule_id, issue.severity, issue.message, issue.evidence, location=issue.location)
        for (rule_id, severity), n in per_rule.items():
            if n > MAX_PER_RULE and severity != "critical":
                scan.add_model(rule_id, severity, f"{n - MAX_PER_RULE} more {rule_id} findings of this file are "
                               "not listed", f"{n - MAX_PER_RULE} more")
