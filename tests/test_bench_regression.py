"""bench/check_regression.py tracks veritensor-fast's speed-up over each peer in bench/peers.py results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import check_regression  # noqa: E402


def _peers_json(path: Path, vs_kf: float, vs_bl: float, recall: float | None = None) -> Path:
    vf = {"tool": "veritensor-fast", "wall_s": 1.0, "times": [1.0, 1.0, 1.0], "vf_speedup": 1.0,
          "vf_speedup_paired": 1.0}
    if recall is not None:
        vf["recall"] = recall
    rows = [vf,
            {"tool": "veritensor-fast@baseline", "wall_s": 1.1, "vf_speedup": 1.1, "vf_speedup_paired": 1.1},
            {"tool": "kingfisher", "wall_s": vs_kf, "vf_speedup": vs_kf, "vf_speedup_paired": vs_kf},
            {"tool": "betterleaks", "wall_s": vs_bl, "vf_speedup": vs_bl, "vf_speedup_paired": vs_bl}]
    path.write_text(json.dumps({"meta": {"corpus": "/tmp/vf-realtree-tree"}, "rows": rows}))
    return path


def test_peer_ratio_drop_beyond_threshold_fails(tmp_path: Path, capsys: object) -> None:
    base = _peers_json(tmp_path / "base.json", 2.0, 4.0)
    cur = _peers_json(tmp_path / "cur.json", 1.5, 4.1)  # -25 % against Kingfisher
    assert check_regression.main([str(base), str(cur), "--threshold", "0.15"]) == 1
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "REGRESSION" in out and "peers:vf-realtree-tree:kingfisher" in out
    assert "@baseline" not in out  # a same-run baseline checkout is not a peer


def test_peer_ratio_within_threshold_passes(tmp_path: Path) -> None:
    base = _peers_json(tmp_path / "base.json", 2.0, 4.0)
    cur = _peers_json(tmp_path / "cur.json", 1.8, 3.7)
    assert check_regression.main([str(base), str(cur), "--threshold", "0.15"]) == 0


def test_recall_drop_fails_even_when_faster(tmp_path: Path) -> None:
    base = _peers_json(tmp_path / "base.json", 2.0, 4.0, recall=1.0)
    cur = _peers_json(tmp_path / "cur.json", 3.0, 6.0, recall=0.9)
    assert check_regression.main([str(base), str(cur)]) == 1
