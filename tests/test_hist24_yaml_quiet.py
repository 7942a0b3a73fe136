"""Issue 16, history (hist24): the batch gate asks the ``encoded`` detector about each YAML blob left without a hit
(7.4k in a 6k-commit history). It used to run three ``find``s for the hint words, then two Hyperscan scans
(``possible``) and the run scan (``raw_candidates``); now one single-match scan for a run of ``MIN_RUN`` base64
characters or a hint word (``B64Decoder.any_run``) answers nearly every file, and the old path only a file it
flags. Same answer: checked against the old definition on random texts built from the pieces that decide it
(runs just under and over ``MIN_RUN``, mixed and single case, wrapped base64, the hint words, line breaks)."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors import encoded
from veritensor_fast.detectors.b64_scan import MIN_RUN
from veritensor_fast.findings import Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token

_CTX = WorkerContext(ScanOptions())
_ENC = next(d for d in _CTX.detectors if d.name == "encoded")
_TOK = hf_token()
_B64 = base64.b64encode(_TOK.encode()).decode()
_PIECES = st.sampled_from([
    "a" * (MIN_RUN - 1), "a" * MIN_RUN, "Ab" * (MIN_RUN // 2), "Ab" * (MIN_RUN // 2 + 1), "AB" * MIN_RUN,
    "x9+/" * 7, "x9-_" * 7, _B64, _B64[:40], _B64[40:], "=", "==", " ", "\t", "\n", "\r\n", ": ", "key: ",
    "kind: Secret", "kind:", "Secret", "dockerconfigjson", "dockercfg", "data:\n  token: ", "\x00", "é",
    "QUJD" * 10 + "\n" + "QUJD" * 10, "-" * 30, "0123456789" * 3,
])


def _old_quiet(data: bytes) -> bool:
    """``EncodedSecrets.quiet`` of a YAML text file before hist24."""
    dec = _ENC.decoder
    if len(data) <= encoded.MAX_YAML and encoded.yaml_hinted(data):
        return False
    return next(iter(dec.candidates(data)), None) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=14))
def test_same_answer_as_before(parts: list[str]) -> None:
    data = "".join(parts).encode()
    if 0 in data[:4096]:
        return  # binary: another branch of ``quiet``, unchanged
    item = Item("blob", "0" * 40, "deploy/values.yaml", len(data))
    assert _ENC.quiet(item, data, data[:4096]) == _old_quiet(data)
    assert _ENC.quiet_batch([item], [data], [data[:4096]]) == [_old_quiet(data)]
    if not _ENC.decoder.any_run(data, encoded._HINT_WORDS):  # no run, no word: no candidate, not hinted
        assert next(iter(_ENC.decoder.candidates(data)), None) is None
        assert not encoded.yaml_hinted(data)


def test_quiet_and_loud_yaml_files_scan_as_before() -> None:
    """A YAML file with nothing, one with a long identifier only, one with a wrapped base64 secret and a Secret
    manifest: the gate's answer agrees with the detector's own scan."""
    wrapped = base64.b64encode((_TOK + " " * 40).encode()).decode()
    cases = {
        "plain.yaml": b"replicas: 3\nimage: nginx:1.25\n" * 200,
        "ident.yaml": b"name: " + b"very_long_snake_case_identifier_name_here" + b"\n",
        "wrapped.yaml": ("blob: |\n  " + wrapped[:40] + "\n  " + wrapped[40:] + "\n").encode(),
        "secret.yaml": b"kind: Secret\ndata:\n  token: " + _B64.encode() + b"\n",
    }
    for name, data in cases.items():
        item = Item("file", name, name, len(data))
        quiet = _ENC.quiet(item, data, data[:4096])
        sc = ItemScan(_CTX, item)
        found = _CTX.scan_item(data, item, sc)
        if quiet:
            assert found == [], name
        assert quiet == (name in ("plain.yaml", "ident.yaml")), name
    assert any(f.secret == _TOK for f in _CTX.scan_item(cases["secret.yaml"], Item("file", "s.yaml", "s.yaml", 1),
                                                         ItemScan(_CTX, Item("file", "s.yaml", "s.yaml", 1))))
