"""Per-file cost (issue 16): cheaper exact work on every file.

- ``utf16_encoding`` runs on every binary file (a NUL in its head); one count of all NULs now clears most of
  them before the even/odd split, and its answer must stay exactly the earlier formula's (``_reference``);
- ``expand_shard`` names a shard's files by concatenation instead of two ``os.path.join`` calls per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from veritensor_fast.detectors.text import utf16_encoding
from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource, expand_shard


def _reference(head: bytes) -> tuple[str, int] | None:
    """The detection as it was written before (two slices, two counts)."""
    if b"\x00" not in head:
        return None
    if head.startswith(b"\xff\xfe\x00\x00") or head.startswith(b"\x00\x00\xfe\xff"):
        return None
    for bom, enc in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return enc, 2
    sample = head[: len(head) & ~1]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    half = len(even)
    z_even, z_odd = even.count(0), odd.count(0)
    if z_odd >= 0.4 * half and z_even <= 0.02 * half:
        enc = "utf-16-le"
    elif z_even >= 0.4 * half and z_odd <= 0.02 * half:
        enc = "utf-16-be"
    else:
        return None
    text = sample.decode(enc, "replace")
    printable = sum(1 for c in text if c.isprintable() or c in "\t\r\n")
    return (enc, 0) if printable >= 0.95 * len(text) else None


_TEXTS = ["plain ascii text\n" * 40, "héllo wörld, ça va?\n" * 30, "日本語のテキスト\n" * 30, "tab\tsep\r\n" * 50]


def test_utf16_text_is_still_recognised() -> None:
    for t in _TEXTS:
        for enc, want in (("utf-16-le", ("utf-16-le", 0)), ("utf-16-be", ("utf-16-be", 0))):
            data = t.encode(enc)[:4096]
            got = utf16_encoding(data)
            assert got == _reference(data)
            if t.isascii():
                assert got == want
        assert utf16_encoding(t.encode("utf-16")[:4096])[1] == 2  # type: ignore[index]  # with a BOM


def test_binary_heads_are_not_utf16() -> None:
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + bytes(range(256)) * 15
    for head in (elf[:4096], b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" * 300, b"\x00" * 4096):
        assert utf16_encoding(head) is None is _reference(head)


@given(st.binary(max_size=600) | st.lists(st.sampled_from([b"\x00", b"a", b"\n", b"\xe9", b"\x00a", b"a\x00",
                                                           b"\xff\xfe", b"\xfe\xff"]), max_size=400).map(b"".join))
def test_utf16_detection_matches_the_reference(head: bytes) -> None:
    assert utf16_encoding(head) == _reference(head)


def test_expanded_shards_name_files_exactly_as_the_plain_walk(tmp_path: Path, monkeypatch: Any) -> None:
    """``expand_shard`` builds each file's path and report path by concatenation on POSIX: the items must be
    exactly those of the unsharded walk (``os.path.join``), for every spelling of the roots."""
    top = tmp_path / "top"
    for d in ("", "a", "a/b", "c d", "é"):
        (top / d).mkdir(parents=True, exist_ok=True)
        for i in range(5):
            (top / d / f"f{i}.txt").write_text("x" * i)
    monkeypatch.chdir(tmp_path)
    for roots in (["top"], ["top/"], ["./top"], [str(top)], [str(top) + "/"], ["top/a", "top/c d"], ["top//a/"]):
        plain = [it for it in FileSource(roots, default_excludes=False).items() if isinstance(it, Item)]
        got: list[Item] = []
        for it in FileSource(roots, default_excludes=False).items_sharded(3, 1 << 20, stat_first=0):
            if isinstance(it, Item) and it.kind == "dir":
                items, errors, deferred = expand_shard(it)
                assert not errors and not deferred
                got.extend(items)
            elif isinstance(it, Item):
                got.append(it)
        assert sorted((i.key, i.path, i.size) for i in got) == sorted((i.key, i.path, i.size) for i in plain), roots
        assert len(plain) in (25, 15, 10)
