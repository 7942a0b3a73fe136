#!/usr/bin/env bash
# Scaling run for a many-core machine: generate the monorepo corpus, then scan it with --jobs 1/2/4/8/16
# (median of ROUNDS wall times each, page cache warm) and write a results file.
#
#   bash bench/scaling.sh [OUT_FILE]      (env: SIZE_MB=500 FILES=20000 ROUNDS=3 JOBS="1 2 4 8 16" PY=python3)
#
# Run from the repository root after `pip install -e .`. Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
SIZE_MB=${SIZE_MB:-500}
FILES=${FILES:-20000}
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-"1 2 4 8 16"}
CORPUS=${CORPUS:-corpora/out/scaling-monorepo}
OUT=${1:-bench/results/scaling-$(nproc)cpu-$(date +%Y%m%d-%H%M).md}
mkdir -p "$(dirname "$OUT")"

if [ ! -f "$CORPUS/ground_truth.json" ]; then
  "$PY" -m corpora.gen_monorepo --size-mb "$SIZE_MB" --files "$FILES" --out "$CORPUS"
fi
# warm the page cache
find "$CORPUS" -type f -print0 | xargs -0 cat > /dev/null

"$PY" - "$CORPUS" "$OUT" "$ROUNDS" $JOBS <<'PYEOF'
import json, os, platform, statistics, subprocess, sys, time
corpus, out, rounds, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(j) for j in sys.argv[4:]]
nbytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(corpus) for f in fs if f != "ground_truth.json")
truth = json.load(open(os.path.join(corpus, "ground_truth.json")))
rows = []
for j in jobs:
    times, rss = [], []
    for _ in range(rounds):
        rep = os.path.join(corpus, "..", f".scaling-{j}.json")
        cmd = [sys.executable, "-m", "veritensor_fast.cli", "scan", corpus, "--format", "json", "--no-progress",
               "-o", rep, "--exclude", "ground_truth.json", "--jobs", str(j)]
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd)
        _, status, ru = os.wait4(p.pid, 0)
        times.append(time.perf_counter() - t0)
        rss.append(ru.ru_maxrss / 1024)
    found = {(f["path"], f["fingerprint"]) for f in json.load(open(rep))["findings"]}
    recall = sum((s["path"], s["fingerprint"]) in found for s in truth["secrets"]) / len(truth["secrets"])
    os.unlink(rep)
    wall = statistics.median(times)
    rows.append((j, wall, nbytes / 1e6 / wall, max(rss), recall))
    print(f"jobs {j:3}: {wall:7.2f} s {nbytes / 1e6 / wall:8.1f} MB/s recall {recall:.3f}", file=sys.stderr)
base = rows[0][1]
lines = [f"# Scaling: {corpus} ({nbytes / 1e6:.0f} MB)", "",
         f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
         f"Python {platform.python_version()}, median of {rounds}, page cache warm, load {os.getloadavg()[0]:.2f}.", "",
         "| --jobs | wall s | MB/s | speed-up vs --jobs 1 | peak RSS MB (largest process) | recall |", "|---|---|---|---|---|---|"]
lines += [f"| {j} | {w:.2f} | {m:.0f} | {base / w:.2f}x | {r:.0f} | {rc:.3f} |" for j, w, m, r, rc in rows]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "wrote $OUT" >&2
