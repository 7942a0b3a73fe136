"""model22: ONNX external data whose ``location`` leaves the model's directory (CVE-2024-27318 class).

Fixtures written by ``onnx`` 1.23 (``tests/fixtures/real_models_m22/make.py``; this suite never imports onnx):
a model with its tensor in ``weights.bin`` beside it (``save_as_external_data``), the same tensor inline, an ``If``
node whose branches hold ``Constant`` tensors (subgraph attributes), and twins whose ``location`` is
``../../etc/passwd``, ``/etc/passwd``, or (inside the ``If`` branch) ``../../../home/user/.ssh/id_ed25519``.
onnx 1.23 itself refuses to load the twins (``ValidationError``, checked by hand); onnx before 1.16 and loaders
that join the path themselves read the named file into the model. On 75722a6 every twin gave **no finding** (an
``.onnx`` file was never looked at); now each is a HIGH ``model.onnx.external-path``, and the real files none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.onnx_ext import escapes, external_data_issues

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_m22"
RULE = "model.onnx.external-path"


@pytest.mark.parametrize("name", ["plain.onnx", "subgraph.onnx", "onnx_external/model.onnx"])
def test_real_models_give_nothing(name: str) -> None:
    assert analyze((FIX / name).read_bytes(), Path(name).name) == []


@pytest.mark.parametrize(("name", "location"), [
    ("evil_traversal.onnx", "../../etc/passwd"),
    ("evil_absolute.onnx", "/etc/passwd"),
    ("evil_subgraph.onnx", "../../../home/user/.ssh/id_ed25519"),
])
def test_escaping_location_is_high(name: str, location: str) -> None:
    issues = analyze((FIX / name).read_bytes(), name)
    assert [(i.rule_id, i.severity, i.evidence) for i in issues] == [(RULE, "high", location)]


def test_location_rules() -> None:
    for bad in ("../x", "a/../../x", "..\\x", "/abs", "\\\\server\\share\\x", "C:\\w.bin", "c:/w.bin", ".."):
        assert escapes(bad), bad
    for ok in ("weights.bin", "sub/dir/w.bin", "..weights", "a..b/c", "./w.bin", "w..bin"):
        assert escapes(ok) is None, ok


def test_not_onnx_and_damage_never_raise() -> None:
    raw = (FIX / "evil_traversal.onnx").read_bytes()
    assert external_data_issues(b"plain text, not a protobuf\n" * 10, "") == []
    for k in range(len(raw)):  # every single-byte damage: a finding, nothing, or "not fully analysed"
        bad = bytearray(raw)
        bad[k] ^= 0xFF
        for i in external_data_issues(bytes(bad), ""):
            assert i.rule_id in (RULE, "model.onnx.invalid")
    for cut in range(len(raw)):
        external_data_issues(raw[:cut], "")


def test_deep_nesting_is_bounded() -> None:
    # a graph inside an attribute inside a node inside a graph ..., 200 deep: stopped, reported, no recursion error
    def field(num: int, body: bytes) -> bytes:
        n, out = len(body), bytearray([(num << 3) | 2])
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out) + body
    body = b""
    for _ in range(200):
        body = field(1, field(5, field(6, body)))  # node -> attribute -> g
    issues = external_data_issues(field(7, body), "")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.onnx.invalid", "high")]


def test_cli_reports_the_twins_only() -> None:
    code, rep = scan_json(FIX)
    onnx = sorted(Path(f["path"]).name for f in rep["findings"] if f["rule_id"].startswith("model.onnx"))
    assert onnx == ["evil_absolute.onnx", "evil_subgraph.onnx", "evil_traversal.onnx"]
    for f in rep["findings"]:
        if f["rule_id"] == RULE:
            assert f["severity"] == "high"


def _field(num: int, body: bytes) -> bytes:
    n, out = len(body), bytearray([(num << 3) | 2])
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out) + body


def test_token_shaped_location_is_not_shown_whole(token: str) -> None:
    # the location's bytes run into the protobuf's next tag byte, so the secret rules may not see a token there:
    # the finding shows a cut run, never the whole credential
    entry = _field(1, b"location") + _field(2, f"../{token}".encode())
    model = _field(7, _field(5, _field(1, b"W") + _field(13, entry) + b"\x70\x01"))
    [issue] = external_data_issues(model, "")
    assert token not in issue.message and token not in issue.evidence and token[:4] in issue.evidence
