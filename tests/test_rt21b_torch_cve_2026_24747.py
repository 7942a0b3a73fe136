"""rt21b: CVE-2026-24747 (GHSA-63cw-57p8-fm3p): ``torch.load(weights_only=True)`` before 2.10 corrupts memory on
a pickle that uses only allowlisted globals but rebuilds a tensor past its storage, or applies SETITEM(S) to a
tensor. The fixtures are real ``torch.save`` output (``fixtures/real_models_rt21b/make_cve.py``); torch 2.13
rejects each hostile one and loads the benign views. On 413ad37 none gave a finding.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.pickle_torch import StorageRef, persistent_id, rebuild_issue, setitem_issue
from veritensor_fast.models.pickle_values import Call, Global

FIX = Path(__file__).parent / "fixtures"
RT21B = FIX / "real_models_rt21b"
RULE = "model.pickle.memory-corruption"


@pytest.mark.parametrize("name", ["cve_24747_setitem.pt", "cve_24747_setitems.pt", "cve_24747_past.pt",
                                  "cve_24747_past_legacy.pt"])
def test_cve_2026_24747_hostile_checkpoint_is_critical(name: str) -> None:
    issues = analyze((RT21B / name).read_bytes(), name)
    assert [(i.rule_id, i.severity) for i in issues] == [(RULE, "critical")], issues
    assert "CVE-2026-24747" in issues[0].message


@pytest.mark.parametrize("name", ["cve_24747_views.pt", "cve_24747_views_legacy.pt"])
def test_cve_2026_24747_real_views_to_the_end_of_a_storage_are_quiet(name: str) -> None:
    assert analyze((RT21B / name).read_bytes(), name) == []


def test_cve_2026_24747_no_real_model_fixture_is_judged_corrupt() -> None:
    """Every real checkpoint of the fixture sets (state dicts, views, legacy, TorchScript, DCP, ...) stays free
    of the rule."""
    seen = 0
    for path in sorted(FIX.glob("real_models*/**/*")):
        if path.is_file() and path.suffix in (".pt", ".pth", ".bin", ".ckpt", ".distcp", ".pt2", "") \
                and not path.name.startswith(("cve_24747", "evil")):  # the hostile twins beside real files
            seen += 1
            assert not [i for i in analyze(path.read_bytes(), path.name) if i.rule_id == RULE], path
    assert seen >= 10


def _rebuild(args: tuple[object, ...]) -> list[str]:
    issue = rebuild_issue(Global("torch._utils", "_rebuild_tensor_v2"), args, 0, "")
    return [] if issue is None else [issue.message]


def test_cve_2026_24747_reach_is_judged_from_literals_only() -> None:
    s = StorageRef(12)
    assert _rebuild((s, 0, (12,), (1,))) == [] and _rebuild((s, 11, (1,), (1,))) == []
    assert _rebuild((s, 0, (3, 4), (4, 1))) == [] and _rebuild((s, 12, (0,), (1,))) == []
    assert _rebuild((s, 12, (1,), (1,))) and _rebuild((s, 0, (4, 4), (4, 1))) and _rebuild((s, 0, (2,), (-1,)))
    assert _rebuild((s, 0, (2, 2), (1,)))  # dimensions and strides disagree
    from veritensor_fast.models.pickle_values import Opaque

    assert _rebuild((Opaque("persistent id"), 0, (10**9,), (1,))) == []  # no literal element count: not judged
    assert _rebuild((s, Opaque("x"), (100,), (1,))) == []
    assert type(persistent_id(("storage", Global("torch", "FloatStorage"), "0", "cpu", 12))) is StorageRef
    assert type(persistent_id(("storage", Global("torch", "FloatStorage"), "0", "cpu", 12, (0, 4)))) is not StorageRef
    tensor = Call(Global("torch._utils", "_rebuild_tensor_v2"))
    assert setitem_issue(tensor, 0, "") is not None
    assert setitem_issue(Call(Global("collections", "OrderedDict")), 0, "") is None
