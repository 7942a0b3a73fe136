"""Issue 16 (history, hist23): a full sweep's listing reads the pack-order listing once, names each path once, and
``Item`` is built without a name lookup per field; every listing and every ``Item`` stays what it was.

Behaviour only (what is listed, at which path, how often git's output is read), never time."""

from __future__ import annotations

import dataclasses
import inspect
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from test_hist18_overlap import _listing as _listed
from test_hist18_overlap import _tricky

from veritensor_fast import history
from veritensor_fast.findings import Item, display_path
from veritensor_fast.history import scan_history
from veritensor_fast.sources import git_walk
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.sources.git_spool import Spool
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token


def _listing(repo: Path, early: bool) -> tuple[Any, Any]:
    """Items and errors of ``test_hist18_overlap``'s listing (its stats left out)."""
    return _listed(repo, early)[:2]


# -- Item ---------------------------------------------------------------------------------------------------


def test_item_init_takes_exactly_the_fields_with_their_defaults() -> None:
    """``Item`` defines its own ``__init__``: its parameters must stay the dataclass fields, in order, with the
    same defaults (a field added without it fails here)."""
    params = list(inspect.signature(Item.__init__).parameters.values())[1:]
    fields = dataclasses.fields(Item)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        want = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert p.default == want, f.name


def test_item_is_the_same_frozen_value_it_was() -> None:
    a = Item("blob", "k" * 40, "src/a.py", 7, "/r")
    b = Item(kind="blob", key="k" * 40, path="src/a.py", size=7, origin="/r")
    assert a == b and hash(a) == hash(b)
    assert (a.dev, a.ino, a.follow, a.entries, a.span) == (0, 0, False, (), ())
    assert repr(a) == ("Item(kind='blob', key='kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk', path='src/a.py', size=7, "
                       "origin='/r', dev=0, ino=0, follow=False, entries=(), span=())")
    full = Item("file", "/x", "x", 9, "", 3, 4, True, (("n", 1, 2, 3),), (0, 9, 9, 1))
    assert pickle.loads(pickle.dumps(full)) == full
    assert dataclasses.replace(a, span=(1, 2)) == Item("blob", "k" * 40, "src/a.py", 7, "/r", span=(1, 2))
    assert dataclasses.astuple(full)[-2:] == ((("n", 1, 2, 3),), (0, 9, 9, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.path = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Item("blob", "k")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Item("blob", "k", "p", nope=1)  # type: ignore[call-arg]
    assert not hasattr(a, "__dict__")


# -- one name per path --------------------------------------------------------------------------------------

_PATHS = [b"src/a.py", b"", b"a\nb.txt", "d\u00e9j\u00e0/\u2603.py".encode(), b"caf\xe9.txt", b"x\xed\xa0\x80y",
          b"\xff\xfe", b"tab\there", b"\x01ctl", "\U0001f600".encode(), b"ok\x80"]


@pytest.mark.parametrize("raw", _PATHS)
def test_log_path_is_named_as_display_path_of_fsdecode(raw: bytes) -> None:
    assert git_walk._display(raw) == display_path(os.fsdecode(raw))


def _tokens(entries: list[tuple[str, bytes]]) -> list[bytes]:
    toks = [b"\x01" + b"c" * 40 + b" 1700000000"]
    for i, (oid, path) in enumerate(entries):
        toks += [(b"\n" if i == 0 else b"") + b":000000 100644 " + b"0" * 40 + b" " + oid.encode() + b" A", path]
    return toks


def test_log_names_give_display_paths_once() -> None:
    oids = [f"{i:040x}" for i in range(1, len(_PATHS) + 1)]
    got = list(git_walk.log_names(_tokens(list(zip(oids, _PATHS, strict=True)))))
    assert got == [(o, display_path(os.fsdecode(p))) for o, p in zip(oids, _PATHS, strict=True)]


# -- the pack-order listing read once ---------------------------------------------------------------------------


def _repo(tmp_path: Path) -> Path:
    """``test_hist18_overlap``'s repository (secrets on two branches, a path with a newline, a copy, a deletion, a
    tag on a blob) with a non-UTF-8 path and a tag on a tree (listed apart from the log), repacked."""
    repo = _tricky(tmp_path)
    os.makedirs(repo / "d", exist_ok=True)
    (repo / os.fsdecode(b"d/caf\xe9.txt")).write_text(f"K = '{hf_token()}'\n")
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-q", "-m", "non-UTF-8 path")
    git_run(repo, "tag", "treetag", "HEAD~1^{tree}")
    git_run(repo, "repack", "-adq")
    return repo


def test_overlapped_one_walk_reads_the_pack_listing_once_and_lists_the_same(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The overlapped listing (a pool beside the walk) used to read and split the whole pack-order listing twice:
    once for the blobs that may go early, once for the rest after the walk. It is read once now, and lists what
    the sequential listing and the two-walk (``rev-list``) listing list, at the same paths."""
    repo = _repo(tmp_path)
    reads: list[list[str]] = []
    real = Spool.lines

    def lines(self: Spool) -> Any:
        reads.append(list(self.args))
        return real(self)

    monkeypatch.setattr(Spool, "lines", lines)
    early = _listing(repo, True)
    pack_reads = [a for a in reads if "--batch-all-objects" in a]
    assert len(pack_reads) == 1, pack_reads
    reads.clear()
    assert _listing(repo, False) == early
    monkeypatch.setattr(GitHistorySource, "one_walk", False)
    assert _listing(repo, True) == early and _listing(repo, False) == early
    paths = {p for _, _, p, _ in early[0]}
    assert display_path(os.fsdecode(b"d/caf\xe9.txt")) in paths and "d/caf\\xe9.txt" in paths
    assert "copy.py" in paths or "s0.py" in paths


def test_overlapped_sweep_same_records_as_one_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Findings with provenance, whole records: a pool beside the one walk (the overlapped listing) against one
    job (the sequential listing)."""
    repo = _repo(tmp_path)
    base = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert len(base.findings) >= 6
    assert [dataclasses.asdict(f) for f in r.findings] == [dataclasses.asdict(f) for f in base.findings]
    assert [(e.path, e.kind, e.reason) for e in r.errors] == [(e.path, e.kind, e.reason) for e in base.errors]
    assert any("caf" in f.path and f.commit for f in r.findings)


def test_spool_lines_are_git_output_lines(tmp_path: Path) -> None:
    """``Spool.lines`` reads a megabyte at a time: the same lines as git's output split at its newlines."""
    from veritensor_fast.sources import git_list

    repo = _repo(tmp_path)
    sp = Spool(str(repo), git_list.PACK_ORDER)
    try:
        got = list(sp.lines())
    finally:
        sp.close()
    want = git_run(repo, *git_list.PACK_ORDER).stdout.splitlines()
    assert got == [w.encode() for w in want] and len(got) > 20


def test_kept_rows_are_the_pack_listing_rows_in_order() -> None:
    """The overlapped listing's rows for after the walk, packed, give back what ``reachable_in_pack_order`` reads:
    blobs with their sizes, objects git could not read (size -1, first row too), an id of another length."""
    from veritensor_fast.sources.git_overlap import OverlappedListing

    class _Fake:
        def __init__(self, lines: list[bytes]) -> None:
            self._lines = lines

        def lines(self) -> list[bytes]:
            return self._lines

    a, b, c, d = "a" * 40, "b" * 40, "c" * 40, "d" * 64
    lines = [f"{c} missing".encode(), f"{a} blob 12 {'0' * 40}".encode(), f"{'e' * 40} tree 30 {'0' * 40}".encode(),
             f"{b} blob 7 {a}".encode(), f"{d} blob 5 {'0' * 40}".encode(), b"", f"{'f' * 40} ambiguous".encode()]
    sizes, rows = OverlappedListing(_Fake(lines), _Fake(lines))._whole_blobs()  # type: ignore[arg-type]
    assert sizes == {a: 12, d: 5}
    assert list(rows) == [(c, "missing", -1), (a, "blob", 12), (b, "blob", 7), (d, "blob", 5),
                          ("f" * 40, "ambiguous", -1)]
