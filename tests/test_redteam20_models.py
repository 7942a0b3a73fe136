"""redteam20: checkpoints real training code writes, and a payload hidden in a file of concatenated archives.

The bytes under ``tests/fixtures/real_models_rt20`` come from real torch (``make.py`` there; the version is in
``VERSIONS``); this suite never imports torch. Found on 8eea362:

- a tensor of a newer dtype (FP8 ``fnuz``, ``float8_e8m0fnu``, ``float4_e2m1fn_x2``, ``complex32``, ``bits*``),
  a dtype object in a checkpoint's dict, a quantized tensor's qscheme: "unknown global" findings, although
  torch's own ``weights_only`` loader allows each of them;
- a PyTorch Distributed Checkpoint (``torch.distributed.checkpoint.save``): nine CRITICAL findings on its
  ``.metadata`` (its dataclasses live under ``torch.distributed``) and a ``zip prefix`` anomaly on every
  ``.distcp``, which is one ``torch.save`` archive per item written one after the other;
- the malicious DCP (an ``os.system`` object in a non-tensor item, which ``dcp.load`` reads with
  ``torch.load(weights_only=False)``): only that same medium ``zip prefix`` anomaly, no CRITICAL: only the
  last archive of a ``.distcp`` was analysed;
- ``training_args.bin`` as transformers >= 4.38 writes it: its ``AcceleratorConfig`` dataclass, a high finding;
- sixteen scikit-learn 1.9.1 estimators fitted with their defaults (Gaussian processes, Gamma/Poisson/Tweedie
  regressors, calibration, Birch, bisecting k-means, univariate selectors, feature agglomeration, splines): 21
  "unknown global" findings on their kernels, losses, links, tree nodes and score functions;
- pickles of pandas 3.1 sparse, interval and nullable columns, ``pd.NA``, numpy masked and record arrays and a
  ``datetime.time``: 11 "unknown global" findings;
- a whole optimizer and scheduler (``torch.save(optimizer)``), a ``PackedSequence``, a ``TensorDataset``;
- whole-module pickles with spectral-norm or pruning hooks, or a ``TransformerEncoderLayer`` (its ``F.relu``,
  or ``torch._C._nn.gelu``, CRITICAL).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.base import AnalyzeOptions, ModelLimits

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_rt20"
OLD = Path(__file__).parent / "fixtures" / "real_models"

BENIGN = [
    "new_dtypes.pt", "dtype_objects.pt", "quantized.pt", "dynamic_quantized_state.pt", "spectral_norm_module.pt",
    "pruned_module.pt", "transformer_module.pt", "transformer_gelu_module.pt", "dcp/.metadata",
    "dcp/__0_0.distcp", "dcp_evil/.metadata", "training_args.bin", "seq2seq_training_args.bin",
    "sklearn_estimators.pkl", "pandas_numpy_types_p2.pkl", "pandas_numpy_types_p5.pkl", "whole_optimizer.pt",
]


def test_fixture_set_is_complete() -> None:
    listed = set((FIX / "VERSIONS").read_text().split("files:")[1].split())
    assert listed == set(BENIGN) | {"dcp_evil/__0_0.distcp"}


@pytest.mark.parametrize("name", BENIGN)
def test_real_benign_checkpoint_has_no_finding(name: str) -> None:
    assert analyze((FIX / name).read_bytes(), Path(name).name) == []


def test_payload_in_an_earlier_archive_of_a_distcp_is_critical() -> None:
    issues = analyze((FIX / "dcp_evil" / "__0_0.distcp").read_bytes(), "__0_0.distcp")
    crit = [i for i in issues if i.severity == "critical"]
    assert [i.evidence for i in crit] == ["posix.system"], issues
    assert crit[0].location and crit[0].location["member"] == "zip@0!archive/data.pkl"
    assert [i for i in issues if i.severity != "critical"] == [], issues


def test_cli_on_the_real_checkpoints_reports_only_the_payload() -> None:
    code, rep = scan_json(FIX, "--no-default-excludes")
    assert rep["errors"] == []
    assert [(f["path"], f["rule_id"], f["redacted"]) for f in rep["findings"]] == [
        ("dcp_evil/__0_0.distcp", "model.pickle.dangerous-global", "posix.system")]
    assert code == 1


def _cat(*names: str) -> bytes:
    return b"".join((OLD / n).read_bytes() for n in names)


@pytest.mark.parametrize("order", [("evil_torch.pt", "torch_state_dict.pt"),
                                   ("torch_state_dict.pt", "evil_torch.pt", "torch_checkpoint.pt")])
def test_every_archive_of_a_concatenation_is_analysed(order: tuple[str, ...]) -> None:
    issues = analyze(_cat(*order), "joined.pt")
    assert [i.evidence for i in issues if i.severity == "critical"] == ["posix.system"], issues
    assert not any(i.evidence == "zip prefix" for i in issues), issues


def test_a_prefix_that_is_no_archive_stays_an_anomaly_and_the_archives_after_it_are_analysed() -> None:
    data = b"\x80\x02junk that is no zip" + _cat("evil_torch.pt", "torch_state_dict.pt")
    issues = analyze(data, "joined.pt")
    assert [i.evidence for i in issues if i.severity == "critical"] == ["posix.system"], issues
    prefix = [i for i in issues if i.evidence == "zip prefix"]
    assert len(prefix) == 1 and "21 bytes precede" in prefix[0].message, issues


def test_too_many_concatenated_archives_is_a_limit_finding() -> None:
    data = _cat(*["torch_state_dict.pt"] * 4)
    opts = AnalyzeOptions(limits=ModelLimits(max_members=3))
    issues = analyze(data, "many.pt", opts)
    assert [(i.rule_id, i.severity) for i in issues] == [("model.archive.limit", "high")], issues
    assert analyze(data, "many.pt") == []
