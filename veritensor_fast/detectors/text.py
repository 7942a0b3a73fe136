"""Plain text pass: every confirmed secret in the raw bytes of any file (text or binary)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Item

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext


class TextSecrets:
    name = "text"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if scan.text_done:
            return
        for m in self.ctx.matcher.find(buf):
            scan.add_secret(m, buf)
