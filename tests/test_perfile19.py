"""perfile19: per-file work removed without changing an answer.

- A ``.bz2`` model file's first block is decoded once (``decompress_keep``): the head read's decoder goes on into
  the full read. Ground truth: the old path (a fresh ``decompress.head`` then a fresh ``decompress.read``): the
  same bytes, the same problem, the same issues, and the budget charged exactly the same, on single and
  multi-block streams, concatenated streams, trailing bytes, cut and corrupt streams, reads over their limit and
  budgets that run out at every point around the crossing.
- The text pass asks ``utf16_encoding`` only about heads with a NUL byte (its own first test answers None for the
  rest); the worker's per-item loop reads the result lists once per batch. Findings are the same (the rest of the
  suite); here, the call counts.
"""

from __future__ import annotations

import bz2
import pickle
import random
from typing import Any

import pytest

from veritensor_fast import decompress, decompress_keep
from veritensor_fast.decompress import Budget
from veritensor_fast.models.analyzer import AnalyzeOptions, Analyzer


def _payload(n: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(2, 9))) for _ in range(300)]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def _streams() -> list[bytes]:
    one = bz2.compress(_payload(300_000), 1)  # level 1: 100 kB blocks, several of them
    small = bz2.compress(_payload(5000, 1))
    rnd = bz2.compress(random.Random(2).randbytes(70_000))  # compressed size past one 64 KiB step
    return [one, small, rnd, one + small, small + small + b"trailing junk", one[:-50], one[:2000] + b"x" * 500 + one[2500:],
            bz2.compress(_payload(4100, 3)), bz2.compress(b"short"),
            bz2.compress(_payload(4097, 4))]  # the head's one piece is the whole stream


def _old(buf: bytes, limit: int, total: int) -> tuple[bytes, bytes, str | None, int]:
    b = Budget(total)
    with decompress.scope(b):
        h = decompress.head(buf, "bz2", 4096)
        data, problem = decompress.read(buf, "bz2", limit, partial=True)
    return h, data, problem, b.spent


def _new(buf: bytes, limit: int, total: int) -> tuple[bytes, bytes, str | None, int]:
    b = Budget(total)
    with decompress.scope(b):
        h, rest = decompress_keep.head(buf, "bz2", 4096)
        data, problem = decompress.read(buf, "bz2", limit, partial=True, resume=rest)
    return h, data, problem, b.spent


@pytest.mark.parametrize("k", range(10))
def test_bz2_resumed_read_equals_two_fresh_reads(k: int) -> None:
    buf = _streams()[k]
    _h, data, _p, spent = _old(buf, 1 << 30, 1 << 30)
    for limit in (1 << 30, len(data), len(data) - 1, 5000, 4097, 4096, 100):  # a limit under the head's piece too
        assert _new(buf, limit, 1 << 30) == _old(buf, limit, 1 << 30)
    # budgets around every crossing: the head's charge, the full read's, and a few in between
    for total in sorted({1, 4096, spent // 3, spent // 2, spent - 1, spent, spent + 1, 2 * spent}):
        assert _new(buf, 1 << 30, max(total, 1)) == _old(buf, 1 << 30, max(total, 1)), total


def _count_decoders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    fed = [0, 0]  # decoders made, compressed bytes fed
    real = decompress._new

    class Counting:
        def __init__(self, d: Any) -> None:
            self._d = d

        def decompress(self, data: bytes, n: int) -> bytes:
            fed[1] += len(data)
            out: bytes = self._d.decompress(data, n)
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._d, name)

    def new(codec: str) -> tuple[Any, bool]:
        d, z = real(codec)
        fed[0] += 1
        return Counting(d), z

    monkeypatch.setattr(decompress, "_new", new)
    return fed


def test_bz2_model_first_block_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 600 kB pickle in one bzip2 stream: each compressed byte is fed to a decoder once (main: the first block
    twice, the head read's and the full read's)."""
    buf = bz2.compress(pickle.dumps({"weights": _payload(600_000)}, protocol=4))
    fed = _count_decoders(monkeypatch)
    with decompress.scope(Budget()):
        issues = Analyzer(AnalyzeOptions()).analyze(buf, "model.pkl.bz2")
    assert fed[1] == len(buf)
    assert not [i for i in issues if i.severity in ("critical", "high")]


def test_bz2_malicious_model_still_found(monkeypatch: pytest.MonkeyPatch) -> None:
    evil = b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."
    buf = bz2.compress(pickle.dumps(_payload(10_000), protocol=4)[:-1] + b"0" + evil)
    with decompress.scope(Budget()):
        new = Analyzer(AnalyzeOptions()).analyze(buf, "m.pkl.bz2")
    monkeypatch.setattr(decompress_keep, "CODECS", frozenset())  # the old path: two fresh reads
    with decompress.scope(Budget()):
        old = Analyzer(AnalyzeOptions()).analyze(buf, "m.pkl.bz2")
    assert new == old
    assert any(i.severity == "critical" for i in new)


def test_text_pass_asks_utf16_only_with_a_nul(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from veritensor_fast.detectors import text
    from veritensor_fast.findings import Item
    from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

    calls: list[bytes] = []
    real = text.utf16_encoding
    monkeypatch.setattr(text, "utf16_encoding", lambda h: calls.append(h) or real(h))
    ctx = WorkerContext(ScanOptions())
    det = next(d for d in ctx.detectors if d.name == "text")
    item = Item("file", str(tmp_path / "a.txt"), "a.txt")
    for data in (b"plain text\n", "wide\n".encode("utf-16"), b"bin\x00ary"):
        det.scan(data, item, data[:4096], ItemScan(ctx, item))
    assert calls == ["wide\n".encode("utf-16"), b"bin\x00ary"]


def test_worker_takes_what_the_gate_read_without_asking_again(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Any, token: str) -> None:
    """The items the gate read up front are taken from its list (no ``Opened.open`` call each); one listed
    larger than ``SMALL`` is still opened through it. Same findings, errors and counts as without the gate."""
    from test_gate18_files import _items, _run

    from veritensor_fast import batch_gate
    from veritensor_fast.kernels import BACKEND

    if BACKEND != "hyperscan":
        pytest.skip("the gate needs the Hyperscan database")
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.txt").write_text("nothing\n")
    (root / "b.env").write_text(f"HF_TOKEN={token}\n")
    (root / "big.txt").write_bytes(b"y" * (batch_gate.SMALL + 1) + f"\nt = {token}\n".encode())
    (root / "d.py").write_text("x = 1\n")
    names = ["a.txt", "b.env", "big.txt", "d.py"]
    asked: list[int] = []
    real = batch_gate.Opened.open

    def counting(self: Any, i: int) -> Any:
        asked.append(i)
        return real(self, i)

    monkeypatch.setattr(batch_gate.Opened, "open", counting)
    with_gate = _run(_items(root, names), True, monkeypatch)
    assert asked == [2]
    without = _run(_items(root, names), False, monkeypatch)
    assert with_gate == without and with_gate[2] == 4 and len(with_gate[0]) == 2
