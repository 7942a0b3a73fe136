"""Model-file detector: pickle, archive and model-format analysis (``veritensor_fast.models``) on every item.

Runs before the text pass and never claims the item's text (secrets inside model files are still found by the
text pass). Cost for ordinary files is a look at the first bytes of ``head``; only files that sniff as a model,
pickle or archive format are analysed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Item
from veritensor_fast.models import AnalyzeOptions, analyze
from veritensor_fast.models.sniff import has_model_ext, sniff, zip_tail

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext


class ModelDetector:
    name = "model"

    def __init__(self, ctx: WorkerContext) -> None:
        self.options = AnalyzeOptions(allow_globals=tuple(ctx.options.allow_globals))

    def __new__(cls, ctx: WorkerContext) -> ModelDetector | None:  # type: ignore[misc]
        if not getattr(ctx.options, "models", True):
            return None
        return super().__new__(cls)

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        size = len(buf)
        kind = sniff(head, item.path, size)
        if kind == "none" and not (has_model_ext(item.path) and zip_tail(buf)):
            return
        for issue in analyze(buf, item.path, self.options):
            scan.add_model(issue.rule_id, issue.severity, issue.message, issue.evidence, location=issue.location)
