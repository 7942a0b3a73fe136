"""redteam21: files real libraries write give no finding; a hostile twin of each family is CRITICAL.

The bytes under ``tests/fixtures/real_models_rt21`` come from real torch, numpy, joblib, safetensors, gguf,
keras and h5py (``make.py`` there; the versions are in ``VERSIONS``); this suite never imports them.

An ``.npy``/``.npz`` object array of plain data (strings, dicts, None, nested arrays, dates, Decimals, complex,
bytes, frozensets) gives no finding: loading it constructs values only. Only an object array whose pickle calls
something dangerous is reported (``model.npy.object`` info, then the pickle's own findings).

A legacy Keras ``.h5`` keeps its ``model.h5.not-covered`` info note (the HDF5 structure is not parsed, so the
note stays even when the configuration is found), and nothing else.

Found on 4863df0:

- a PyTorch Distributed Checkpoint written with ``SerializationFormat.SAFETENSORS`` (torch 2.13): its ``.distcp``
  is the ``torch.save`` archives of the non-tensor items, then one safetensors blob of the tensors. With over
  64 KiB of tensors no zip end record sits near the end: four findings on the benign file ("no EOCD", two zip
  anomalies, trailing data), and the same noise around the payload of the hostile one;
- ``evil_lambda_escaped.h5`` (a real Keras ``.h5`` whose ``model_config`` spells ``Lambda`` and
``__lambda__`` with JSON escapes and other spacing; Keras ``json.loads`` it back) gave only the info note: the
``.h5`` check was a byte search for ``"class_name": "Lambda"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.formats import hdf5_check

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_rt21"

BENIGN = [
    "scripted_module.pt", "traced_module.pt", "exported.pt2", "legacy_checkpoint.pt", "arrays.joblib",
    "arrays.joblib.zlib", "arrays.joblib.gzip", "arrays.joblib.bz2", "arrays.joblib.lzma", "arrays.joblib.xz",
    "arrays.joblib.lz4", "object_plain_types.npy", "object_plain_types.npz", "all_dtypes.safetensors",
    "typed_kv.gguf", "functional.keras", "dcp_safetensors/.metadata", "dcp_safetensors/__0_0.distcp",
    "dcp_safetensors_evil/.metadata",
]
#: hostile twin -> (rule, evidence) of its CRITICAL finding(s)
EVIL = {
    "evil_scripted_module.pt": {("model.pickle.dangerous-global", "posix.system")},
    "evil_legacy_checkpoint.pt": {("model.pickle.dangerous-global", "posix.system")},
    "evil_arrays.joblib.xz": {("model.pickle.dangerous-global", "posix.system")},
    "evil_object_nested.npy": {("model.pickle.dangerous-global", "posix.system")},
    "evil_lambda.keras": {("model.keras.lambda", "Lambda"), ("model.keras.lambda", "__lambda__")},
    "evil_lambda.h5": {("model.keras.lambda", "Lambda"), ("model.keras.lambda", "__lambda__")},
    "evil_lambda_escaped.h5": {("model.keras.lambda", "Lambda"), ("model.keras.lambda", "__lambda__")},
    "evil_template.gguf": {("model.gguf.template", "__init__")},
    "dcp_safetensors_evil/__0_0.distcp": {("model.pickle.dangerous-global", "posix.system")},
}


def test_fixture_set_is_complete() -> None:
    listed = set((FIX / "VERSIONS").read_text().split("files:")[1].split())
    assert listed == set(BENIGN) | set(EVIL) | {"functional.h5"}


@pytest.mark.parametrize("name", BENIGN)
def test_real_file_has_no_finding(name: str) -> None:
    assert analyze((FIX / name).read_bytes(), Path(name).name) == []


def test_real_keras_h5_has_only_the_not_covered_note() -> None:
    issues = analyze((FIX / "functional.h5").read_bytes(), "functional.h5")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.h5.not-covered", "info")]


@pytest.mark.parametrize("name", sorted(EVIL))
def test_hostile_twin_is_critical(name: str) -> None:
    issues = analyze((FIX / name).read_bytes(), Path(name).name)
    crit = {(i.rule_id, i.evidence) for i in issues if i.severity == "critical"}
    assert crit == EVIL[name], issues


def test_escaped_h5_lambda_has_no_literal_lambda_bytes() -> None:
    """The twin really hides the names from a byte search: only the JSON reading finds them."""
    raw = (FIX / "evil_lambda_escaped.h5").read_bytes()
    assert b"Lambda" not in raw and b"__lambda__" not in raw and b"\\u004cambda" in raw


def test_h5_json_search_is_bounded() -> None:
    """Candidate JSON text with no end: a ``high`` limit finding, not a hang."""
    blob = b"\x89HDF\r\n\x1a\nmodel_config" + b'{"a":' * 200_000
    issues = hdf5_check(blob, "", max_json=1 << 20)
    assert ("model.keras.invalid", "high") in {(i.rule_id, i.severity) for i in issues}
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # json.loads (and so Keras) fails on it too
    issues = hdf5_check(b"\x89HDF\r\n\x1a\nmodel_config" + deep + b"\x00", "")
    assert ("model.keras.invalid", "high") in {(i.rule_id, i.severity) for i in issues}
    nested = b'{"a":' * 500 + b'{"class_name": "\\u004cambda"}' + b"}" * 500  # as deep as json.loads reads
    issues = hdf5_check(b"\x89HDF\r\n\x1a\nmodel_config" + nested + b"\x00", "")
    assert {(i.rule_id, i.severity) for i in issues} == {("model.h5.not-covered", "info"),
                                                          ("model.keras.lambda", "critical")}


def test_cli_reports_exactly_the_twins() -> None:
    code, rep = scan_json(FIX, "--no-default-excludes")
    assert rep["errors"] == []
    crit = {(f["path"], f["rule_id"]) for f in rep["findings"] if f["severity"] == "critical"}
    assert {p for p, _ in crit} == set(EVIL)
    others = {(f["path"], f["rule_id"]) for f in rep["findings"] if f["severity"] != "critical"}
    assert others == {("functional.h5", "model.h5.not-covered"), ("evil_lambda.h5", "model.h5.not-covered"),
                      ("evil_lambda_escaped.h5", "model.h5.not-covered"),
                      ("evil_object_nested.npy", "model.npy.object")}
    assert code == 1


@pytest.mark.parametrize("member,kind", [
    ("exported/data/weights/weight_0", "torch"),  # torch.load(weights_only=False) when use_pickle
    ("exported/data/constants/tensor_constant_0", "torch"),  # torch.load(weights_only=False)
    ("exported/data/constants/opaque_obj_0", "proto0"),  # pickle.loads
    ("exported/data/constants/opaque_obj_1", "proto4"),  # pickle.loads
])
def test_pickled_members_of_a_real_pt2_archive_are_analysed(member: str, kind: str) -> None:
    """``torch.export.load`` (torch 2.13, ``pt2_archive/_package.py``) unpickles these members of a ``.pt2``; the
    real archive with one of them replaced by a payload is CRITICAL at that member."""
    import io
    import zipfile

    payload = {"torch": (Path(__file__).parent / "fixtures" / "real_models" / "evil_torch.pt").read_bytes(),
               "proto0": b"cposix\nsystem\n(S'echo pwned'\ntR.",
               "proto4": b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R."}[kind]
    src = zipfile.ZipFile(FIX / "exported.pt2")
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for info in src.infolist():
            z.writestr(info.filename, payload if info.filename == member else src.read(info))
        if member not in src.namelist():
            z.writestr(member, payload)
    issues = analyze(b.getvalue(), "model.pt2")
    assert [(i.severity, i.evidence) for i in issues] == [("critical", "posix.system")], issues
    assert issues[0].location and issues[0].location["member"].startswith(member)
