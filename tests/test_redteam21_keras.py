"""redteam21: Keras advisories. Each config is the advisory's shape, in a ``.keras`` zip written here (nothing is
loaded). On 4863df0 a ``get_file``/``load_model``/``set_global_attribute`` function object outside a Lambda, and a
lookup layer's vocabulary path, gave no finding; a TFSMLayer was only high.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from veritensor_fast.models import analyze


def _keras(layers: list[dict]) -> bytes:
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.10.0"}))
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 32)
    return b.getvalue()


def _fn(module: str, name: str) -> dict:
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


@pytest.mark.parametrize("module,name", [
    ("keras.utils", "get_file"),  # CVE-2025-8747 (GHSA-c9rc-mg46-23w3): download to any path under safe_mode
    ("keras.models", "load_model"),  # CVE-2025-9906: load a second model with safe_mode=False
    ("keras.src.saving.serialization_lib", "set_global_attribute"),  # CVE-2025-9906: safe_mode flag flipped
    ("keras.config", "enable_unsafe_deserialization"),  # CVE-2025-9906
])
def test_keras_gadget_function_object_is_critical(module: str, name: str) -> None:
    # as an activation (no Lambda at all) and as a Lambda's function (the advisories' form)
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2, "activation": _fn(module, name)}}
    lam = {"module": "keras.layers", "class_name": "Lambda",
           "config": {"function": _fn(module, name), "arguments": {"origin": "http://x.invalid/a", "fname": "/tmp/a"}}}
    for layer in (dense, lam):
        issues = analyze(_keras([layer]), "m.keras")
        assert any(i.severity == "critical" and i.evidence == name for i in issues), issues


def test_tfsmlayer_is_critical_cve_2026_1462() -> None:
    layer = {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"filepath": "/tmp/evil_savedmodel"}}
    issues = analyze(_keras([layer]), "m.keras")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.keras.tfsmlayer", "critical")]


@pytest.mark.parametrize("cls", ["StringLookup", "IntegerLookup", "TextVectorization"])
def test_lookup_vocabulary_path_ghsa_qg93_c7p6_gg7f(cls: str) -> None:
    layer = {"module": "keras.layers", "class_name": cls, "config": {"vocabulary": "/etc/passwd"}}
    issues = analyze(_keras([layer]), "m.keras")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.keras.vocabulary-path", "high")]


def test_inline_vocabulary_and_builtin_activations_stay_quiet() -> None:
    layers = [{"module": "keras.layers", "class_name": "StringLookup", "config": {"vocabulary": ["a", "b"]}},
              {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2, "activation": "relu"}},
              {"module": "keras.layers", "class_name": "Dense",
               "config": {"units": 2, "activation": _fn("keras.activations", "gelu")}}]
    assert analyze(_keras(layers), "m.keras") == []


def test_keras_zip_with_config_json_alone() -> None:
    """Keras ``load_model`` opens any zip named ``.keras`` and builds the model from ``config.json`` before it
    looks for ``metadata.json`` or the weights. On 4863df0 such a file gave no finding (the Keras layout needed
    one of the other two members)."""
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"layers": [
        {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"filepath": "/tmp/evil_savedmodel"}}]}}
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
    issues = analyze(b.getvalue(), "m.keras")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.keras.tfsmlayer", "critical")]
    assert analyze(b.getvalue(), "archive.zip") == []  # load_model does not take it for a Keras model
