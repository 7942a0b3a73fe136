"""Hypothesis fuzzing of the pickle walker and the zip reader: no exception escapes, every input gets a verdict."""

from __future__ import annotations

import io
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.models import ModelIssue, analyze
from veritensor_fast.models.pickle_scan import PickleWalker

_OPS = list(b"(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrstu)GBC" + bytes(range(0x80, 0x99)))
_FRAGS = [b"os\n", b"system\n", b"\x8c\x02os", b"\x8c\x06system", b"\x93", b"R", b"\x85", b"q\x00", b"h\x00",
          b"\x95\x05\x00\x00\x00\x00\x00\x00\x00", b"\x80\x04", b"S'x'\n", b"I1\n", b"."]

pickleish = st.lists(st.one_of(st.sampled_from(_FRAGS), st.sampled_from(_OPS).map(lambda b: bytes([b])),
                               st.binary(max_size=8)), max_size=60).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pickleish)
def test_pickle_walker_never_raises(data: bytes) -> None:
    res = PickleWalker().analyze(data)
    assert isinstance(res.issues, list)
    if data and not res.clean_stop and res.streams:
        # a stream that did not end cleanly was reported as not fully analysed
        assert any(i.rule_id in ("model.pickle.truncated", "model.pickle.corrupt", "model.pickle.limit")
                   for i in res.issues)
    out = analyze(b"\x80\x04" + data, "x.pkl")
    assert all(isinstance(i, ModelIssue) for i in out)


def _zip(members: list[tuple[str, bytes]], deflate: bool) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for n, d in members:
            z.writestr(n, d)
    return bio.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["a", "data.pkl", "x/y", "b.npy"]), pickleish), min_size=1, max_size=3,
                unique_by=lambda t: t[0]),
       st.booleans(), st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6))
def test_zip_reader_never_raises_on_mutations(members: list[tuple[str, bytes]], deflate: bool,
                                              flips: list[tuple[int, int]]) -> None:
    data = bytearray(_zip(members, deflate))
    for pos, val in flips:
        if data:
            data[pos % len(data)] = val
    out = analyze(bytes(data), "m.zip")
    assert all(isinstance(i, ModelIssue) for i in out)
    if not flips and any(d.startswith(b"\x80\x04\x8c\x02os\x8c\x06system\x93") for _, d in members):
        assert any(i.severity == "critical" for i in out)  # an unmutated archive keeps its verdict
