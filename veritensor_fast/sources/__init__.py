"""Sources enumerate what to scan as small ``Item`` references (and ``ScanError`` for what cannot be listed).

A source may also annotate findings after the scan (git history adds commit provenance); see ``Source``.
A source may define ``on_batch(result)``: the engine calls it in the parent with every ``BatchResult`` as it
arrives (``result.scanned`` maps findings to item keys); git history uses it to fill its datastore.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from veritensor_fast.findings import Finding, Item, ScanError


class Source(Protocol):
    def items(self) -> Iterator[Item | ScanError]: ...

    def annotate(self, findings: Sequence[Finding]) -> list[Finding]: ...
