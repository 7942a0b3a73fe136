"""Detectors: pure functions of (buffer, item) that emit findings into an ``ItemScan``.

The worker runs ``build_detectors`` once per process and, for each item, every detector in order. A detector
that fully covers an item's text (a parsed notebook, say) sets ``scan.text_done`` so the plain text pass is
skipped; a detector that fails falls back silently to the text pass and records a ``ScanError``.

Contract for every detector:
- never execute, import or unpickle what it scans;
- never put secret material into exceptions, logs or ``ScanError.reason``;
- turn every anomaly into a finding or a ``ScanError``; an exception escaping ``scan`` is a bug (the worker
  records it as an ``internal`` error for the item and continues).
- answer the batch gate (``batch_gate``): ``quiet_test()`` returns ``quiet(item, data, head) -> bool``, True
  only when ``scan`` reports nothing for ``data`` without a hit of the rules database, or None when it cannot
  tell; ``quiet_batch(items, datas, heads)`` gives the same answers for a whole batch in one call (the gate asks
  it instead of the per-item one); a detector with neither turns the gate off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from veritensor_fast.findings import Item

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext


class Detector(Protocol):
    name: str

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None: ...


def build_detectors(ctx: WorkerContext) -> Sequence[Detector]:
    """Detectors in the order they run. Optional ones are imported only if present and enabled."""
    from veritensor_fast.detectors.text import TextSecrets

    detectors: list[Detector] = []
    for modname, clsname in _OPTIONAL:
        try:
            mod = __import__(modname, fromlist=[clsname])
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        factory = getattr(mod, clsname)
        det = factory(ctx)
        if det is not None:
            detectors.append(det)
    detectors.append(TextSecrets(ctx))
    detectors.extend(_after(ctx))
    return detectors


#: Detectors that run before the plain text pass (they may claim the item's text).
_OPTIONAL: list[tuple[str, str]] = [
    ("veritensor_fast.detectors.model", "ModelDetector"),
    ("veritensor_fast.detectors.notebook", "NotebookDetector"),
]


def _after(ctx: WorkerContext) -> list[Detector]:
    """Detectors that run after the text pass (decoders and parsers that add to it)."""
    out: list[Detector] = []
    for modname, clsname in [
        ("veritensor_fast.detectors.encoded", "EncodedSecrets"),
        ("veritensor_fast.detectors.pyast", "PythonAstSecrets"),
        ("veritensor_fast.detectors.archive", "ArchiveSecrets"),
    ]:
        try:
            mod = __import__(modname, fromlist=[clsname])
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        det = getattr(mod, clsname)(ctx)
        if det is not None:
            out.append(det)
    return out
