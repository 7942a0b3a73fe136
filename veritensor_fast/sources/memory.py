"""In-memory source: scan bytes the caller already holds, such as standard input (``scan -``).

The bytes stay in this process (nothing is written to disk); the items are read by ``MemoryReader`` in the
same process, so the engine runs such a scan in-process (the CLI forces ``--jobs 1``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from veritensor_fast.findings import Finding, Item, ScanError
from veritensor_fast.sources.fs import InputError

_BUFFERS: dict[str, bytes] = {}
_IDS = itertools.count()


class MemorySource:
    """One named buffer as one item. Call ``close()`` (or use it as a context manager) to drop the bytes."""

    def __init__(self, data: bytes, name: str = "stdin") -> None:
        self.key = f"memory:{next(_IDS)}"
        self.name = name
        self.size = len(data)
        _BUFFERS[self.key] = data

    def items(self) -> Iterator[Item | ScanError]:
        yield Item("memory", self.key, self.name, self.size)

    def annotate(self, findings: Sequence[Finding]) -> list[Finding]:
        return list(findings)

    def close(self) -> None:
        _BUFFERS.pop(self.key, None)

    def __enter__(self) -> MemorySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryReader:
    """Worker-side reader for ``memory`` items (in-process only)."""

    def open(self, item: Item) -> tuple[Any, Any]:
        try:
            return _BUFFERS[item.key], _noop
        except KeyError:
            raise InputError("unreadable", "in-memory input is only readable in-process (use --jobs 1)") from None


def _noop() -> None:
    return None
