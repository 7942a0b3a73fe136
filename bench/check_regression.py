"""Compare a pytest-benchmark JSON run against a saved baseline on machine-independent ratios.

Each end-to-end and kernel benchmark stores ``ratio_vs_read`` in ``extra_info``: its MB/s divided by a plain
read of the same files measured in the same run. Ratios cancel out most of the machine's speed and load, so a
drop of a ratio is a real regression. Benchmarks without the ratio fall back to ``mb_per_s`` (or the mean time)
only with ``--absolute``.

    python bench/check_regression.py BASELINE CURRENT [--threshold 0.15] [--absolute]

BASELINE / CURRENT: a JSON file written by ``--benchmark-json`` / ``--benchmark-save``, or a directory (the
newest ``*.json`` below it is taken, e.g. ``.benchmarks``). Exit status 1 when any benchmark regressed by more
than the threshold, 2 on a usage error.

A ``bench/peers.py`` JSON (``bench/results/*.json``) is compared the same way on ``speedup_vs_peer``: the
median of veritensor-fast's per-round speed-ups over each peer (time of the peer / time of veritensor-fast in
the same round), one entry per corpus and peer, e.g. ``peers:monorepo:kingfisher``; and on veritensor-fast's
recall where the corpus has ground truth::

    python bench/check_regression.py bench/results/realtree-1.35gb-2cpu.json /tmp/realtree-now.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, dict[str, Any]]:
    if path.is_dir():
        runs = sorted(path.rglob("*.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise SystemExit(f"check_regression: no *.json under {path}")
        path = runs[-1]
    data = json.loads(path.read_text())
    if "rows" in data and "meta" in data:
        return from_peers(data)
    return {b["fullname"]: b for b in data.get("benchmarks", [])}


def from_peers(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One pseudo-benchmark per peer of a ``bench/peers.py`` run: veritensor-fast's speed-up over it."""
    corpus = Path(str(data["meta"].get("corpus", "corpus"))).name
    vf = next((r for r in data["rows"] if r.get("tool") == "veritensor-fast"), None)
    out: dict[str, dict[str, Any]] = {}
    if vf is None:
        return out
    for r in data["rows"]:
        if r.get("tool") == "veritensor-fast" or "@" in str(r.get("tool")):
            continue
        ratio = r.get("vf_speedup_paired") or r.get("vf_speedup")
        if not ratio:
            continue
        info: dict[str, Any] = {"speedup_vs_peer": float(ratio)}
        if "recall" in vf:
            info["recall"] = vf["recall"]
        out[f"peers:{corpus}:{r['tool']}"] = {"fullname": f"peers:{corpus}:{r['tool']}", "extra_info": info}
    return out


def metric(b: dict[str, Any], absolute: bool) -> tuple[str, float] | None:
    info = b.get("extra_info") or {}
    if "ratio_vs_read" in info:
        return "ratio_vs_read", float(info["ratio_vs_read"])
    if "speedup_vs_peer" in info:
        return "speedup_vs_peer", float(info["speedup_vs_peer"])
    if not absolute:
        return None
    if "mb_per_s" in info:
        return "mb_per_s", float(info["mb_per_s"])
    return "1/mean", 1.0 / float(b["stats"]["mean"])


def compare(base: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]], threshold: float,
            absolute: bool) -> tuple[list[str], list[str]]:
    rows, bad = [], []
    for name in sorted(set(base) & set(cur)):
        mb, mc = metric(base[name], absolute), metric(cur[name], absolute)
        if mb is None or mc is None or mb[0] != mc[0] or mb[1] <= 0:
            continue
        change = mc[1] / mb[1] - 1.0
        flag = "REGRESSION" if change < -threshold else "ok"
        rows.append(f"{flag:10} {name:60} {mb[0]:13} {mb[1]:10.4g} -> {mc[1]:10.4g} ({change:+.1%})")
        if flag != "ok":
            bad.append(name)
        rec_b, rec_c = base[name].get("extra_info", {}).get("recall"), cur[name].get("extra_info", {}).get("recall")
        if rec_b is not None and rec_c is not None and rec_c < rec_b:
            rows.append(f"{'REGRESSION':10} {name:60} recall {rec_b} -> {rec_c}")
            bad.append(name + " (recall)")
    return rows, bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline", type=Path)
    ap.add_argument("current", type=Path)
    ap.add_argument("--threshold", type=float, default=0.15, help="allowed relative drop (default 0.15 = 15%%)")
    ap.add_argument("--absolute", action="store_true", help="also compare benchmarks that carry no ratio")
    a = ap.parse_args(argv)
    try:
        base, cur = load(a.baseline), load(a.current)
    except (OSError, ValueError) as exc:
        print(f"check_regression: {exc}", file=sys.stderr)
        return 2
    rows, bad = compare(base, cur, a.threshold, a.absolute)
    if not rows:
        print("check_regression: no comparable benchmarks (same names, with ratio_vs_read or speedup_vs_peer)",
              file=sys.stderr)
        return 2
    print("\n".join(rows))
    if bad:
        print(f"\n{len(bad)} regression(s) beyond {a.threshold:.0%}: {', '.join(bad)}")
        return 1
    print(f"\nno regression beyond {a.threshold:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
