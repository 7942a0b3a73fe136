"""A compressed file's head read, kept alive for the full read that may follow (``models/compressed``).

Model analysis of a ``.bz2`` file reads its first 4 KiB decompressed (``decompress.head``: is it a model?), then,
for a model, the whole stream. bzip2 produces nothing before a whole block (up to 900 kB) is decoded: the head
read decoded the first block, and the full read decoded it again. Here the head read keeps its decoder
(``decompress.read(keep=...)``), and the full read goes on from it (``decompress.read(resume=...)``):

- the bytes are the same: the same decoder run, which a fresh read repeats from the start;
- the budget is charged what the fresh read charges (every byte it would feed, in its 64 KiB steps per stream,
  plus every byte produced): each bound holds as before, and any error is the fresh read's own;
- whenever the answer could differ (the stream is cut, corrupt, over the read's limit, or the budget could not
  pay the fresh read), the kept decoder is dropped, the budget is restored, and the full read decodes afresh.
"""

from __future__ import annotations

from typing import Any

from veritensor_fast import decompress
from veritensor_fast.decompress import Budget

#: Codecs whose head costs a whole block: a kept decoder saves that block's second decode.
CODECS = frozenset({"bz2"})


def head(buf: Any, codec: str, n: int = 4096) -> tuple[bytes, Resumed | None]:
    """``decompress.head(buf, codec, n)`` and, when the stream goes on past ``n`` bytes, its decoder to go on
    with (``decompress.read(..., resume=...)``); None for other codecs or a stream that ended within ``n``."""
    if codec not in CODECS:
        return decompress.head(buf, codec, n), None
    kept: list[Any] = []
    budget = decompress.current()
    data, _ = decompress.read(buf, codec, n, partial=True, budget=budget, keep=kept)
    return data, (Resumed(buf, codec, budget, kept) if kept else None)


class Resumed:
    """A head read's live decoder (``kept``: the generator, every piece it yielded, the complete streams' bounds),
    finished once by ``decompress.read`` in place of a fresh decode of the whole of ``buf``."""

    __slots__ = ("buf", "codec", "budget", "gen", "pieces", "bounds")

    def __init__(self, buf: Any, codec: str, budget: Budget, kept: list[Any]) -> None:
        self.buf, self.codec, self.budget = buf, codec, budget
        self.gen: Any = kept[0]
        self.pieces: list[bytes] = kept[1]
        self.bounds: list[tuple[int, int]] = kept[2]

    def __call__(self, buf: Any, codec: str, start: int, end: int | None, limit: int, b: Budget) -> bytes | None:
        """The whole stream of ``buf`` (at most ``limit`` bytes, complete), ``b`` charged what a fresh read
        charges; None (nothing charged) when a fresh read is needed to give the same answer."""
        gen, self.gen = self.gen, None
        if gen is None:
            return None
        if (buf is not self.buf or codec != self.codec or b is not self.budget or start != 0
                or (end is not None and end < len(buf)) or b.spent >= b.total):
            gen.close()
            return None
        spent = b.spent
        pieces = self.pieces
        n = sum(map(len, pieces))
        if n > limit:  # the head alone is over this read's limit: the fresh read's answer
            gen.close()
            return None
        try:
            for piece in gen:  # charges ``b`` as it decodes: never more than the fresh read charges
                n += len(piece)
                if n > limit:
                    break
                pieces.append(piece)
            else:
                size = len(buf)
                step = decompress.IN_STEP
                charge = n + sum(min(size, s + -(-(e - s) // step) * step) - s for s, e in self.bounds)
                if spent + charge <= b.total:
                    b.spent = spent + charge
                    return b"".join(pieces)
        except Exception:  # noqa: BLE001 - cut, corrupt or over budget: the fresh read gives its own answer
            pass
        gen.close()
        b.spent = spent
        return None
