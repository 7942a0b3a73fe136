"""Fuzzing the container readers (models/containers.py, detectors/archive.py, the model analyser's archive
recursion) through the worker: zips of every compression method, tar (plain, gzip, bzip2, xz), gzip and 7z
archives built with the standard writers, with generated members (text with a token, notebooks, pickles,
nested archives), then mutated (byte flips, inserts, deletes, truncation). Contract: see fuzzkit; an
unmutated archive must also give up the token planted in a text member."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zipfile
from typing import Any

import py7zr
from fuzzkit import examples, mutate, scan_bytes, secrets_found, token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
edits = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 3), st.integers(0, 255)), max_size=6)

ZIP_METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


def member_bodies(tok: str) -> st.SearchStrategy[bytes]:
    nb = ('{"cells":[{"cell_type":"code","metadata":{},"outputs":[],"source":["k = \\"' + tok + '\\"\\n"]}],'
          '"metadata":{},"nbformat":4,"nbformat_minor":5}').encode()
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=100).map(str.encode),
        st.just(nb),
        st.builds(lambda v, p: pickle.dumps(v, protocol=p),
                  st.recursive(st.none() | st.integers() | st.text(max_size=10) | st.binary(max_size=10),
                               lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=4), i, max_size=3),
                               max_leaves=8), st.integers(0, 5)),
    )


names = st.sampled_from(["a.txt", "b.py", "c.ipynb", "data.pkl", "archive/data/0", "x.npy", "n.zip", "t.tar.gz",
                         "d/", "../evil", "e.json", "f.yaml", "weights.pt", "s.7z", "u.gz"])


def build_zip(members: list[tuple[str, bytes]], method: int) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", method) as z:
        for n, d in members:
            z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d, compress_type=method)
    return bio.getvalue()


def build_tar(members: list[tuple[str, bytes]], mode: str) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w" if mode == "w:gz" else mode) as t:  # type: ignore[call-overload]
        for n, d in members:
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    # the same bytes every time (tarfile's gzip header holds the current time): examples replay exactly
    return gzip.compress(bio.getvalue(), mtime=0) if mode == "w:gz" else bio.getvalue()


def build_7z(members: list[tuple[str, bytes]]) -> bytes:
    bio = io.BytesIO()
    with py7zr.SevenZipFile(bio, "w") as z:
        for n, d in members:
            z.writestr(d, n.replace("..", "_").strip("/") or "x")
    return bio.getvalue()


@st.composite
def archives(draw: st.DrawFn) -> tuple[str, bytes, str]:
    tok = token(draw(st.integers(0, 2**32)))
    body = member_bodies(tok)
    members = draw(st.lists(st.tuples(names, body), max_size=4, unique_by=lambda t: t[0]))
    # a nested archive, and one text member that carries the token
    if draw(st.booleans()):
        inner = build_zip([("inner.txt", f"k={tok}\n".encode()), *members[:1]], draw(st.sampled_from(ZIP_METHODS)))
        members.append(("nested.zip", inner))
    members.append(("secret.env", f"HF_TOKEN={tok}\n".encode()))
    kind = draw(st.sampled_from(["zip", "tar", "tar.gz", "tar.bz2", "tar.xz", "gz", "7z"]))
    if kind == "zip":
        data = build_zip(members, draw(st.sampled_from(ZIP_METHODS)))
        name = draw(st.sampled_from(["a.zip", "model.pt", "b.npz", "c.bin", "noext"]))
    elif kind == "7z":
        data = build_7z(members)
        name = "a.7z"
    elif kind == "gz":
        data = gzip.compress(members[-1][1] + b"".join(d for _, d in members[:-1]), mtime=0)
        name = draw(st.sampled_from(["a.env.gz", "b.pkl.gz", "c.gz"]))
    else:
        mode = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}[kind]
        data = build_tar(members, mode)
        name = "a." + kind
    return name, data, tok


#: Formats whose members the secret pass reads today (plain .tar and .tar.bz2/.tar.xz are left to the raw
#: text pass and the model analyser).
TOKEN_FORMATS = (".zip", ".7z", ".tar.gz", ".gz", ".pt", ".npz", ".bin", "noext")


@settings(max_examples=examples(60), **SETTINGS)
@given(archives())
def test_archives_keep_the_contract_and_give_up_the_token(arch: tuple[str, bytes, str]) -> None:
    name, data, tok = arch
    res = scan_bytes(data, name, secrets=(tok,))
    if name.endswith(TOKEN_FORMATS):
        assert tok in secrets_found(res), (name, res.errors)


@settings(max_examples=examples(150), **SETTINGS)
@given(archives(), edits)
def test_mutated_archives_keep_the_contract(arch: tuple[str, bytes, str], ed: list[tuple[int, int, int]]) -> None:
    name, data, tok = arch
    scan_bytes(mutate(data, ed), name, secrets=(tok,))


@settings(max_examples=examples(60), **SETTINGS)
@given(st.binary(max_size=300), st.sampled_from([b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b\x08", b"7z\xbc\xaf\x27\x1c",
                                                 b"BZh9", b"\xfd7zXZ\x00"]),
       st.sampled_from(["a.zip", "a.tar.gz", "a.gz", "a.7z", "a.pt", "a.bz2", "a.xz", "noext"]))
def test_random_bytes_behind_archive_magic_keep_the_contract(tail: bytes, magic: bytes, name: str) -> None:
    scan_bytes(magic + tail, name)
