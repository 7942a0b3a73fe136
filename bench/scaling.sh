#!/usr/bin/env bash
# Scaling run for a many-core machine: generate the monorepo corpus, then scan it with --jobs 1/2/4/8/16
# (median of ROUNDS wall times each, page cache warm) and write a results file with the curve, the speed-up
# and efficiency against --jobs 1, peak RSS, recall, and where the CPU went (bench/cpu_split.py: the parent's
# CPU while the pool runs against the workers', the workers' CPU inside batches, worker idle time, the tail
# (seconds between the first and the last worker's last batch: a straggler), parent microseconds per file).
#
#   bash bench/scaling.sh [--max-jobs N] [--corpus DIR] [--rounds N] [--no-default-excludes] [OUT_FILE]
#   env: SIZE_MB=500 FILES=20000 ROUNDS=3 JOBS="1 2 4 8 16" PY=python3 CORPUS=dir (any tree; recall needs
#        the generator's ground_truth.json) SPLIT=1 (0: skip the CPU split)
#
# JOBS defaults to 1 2 4 8 16 capped at the CPUs this process may use (nproc) or --max-jobs, plus that cap
# itself. The real tree: --corpus /tmp/vf-realtree-tree --no-default-excludes. Run from the repository root
# after `pip install -e .`, on a machine nothing else is using (the load average is recorded before every
# run). Nothing is downloaded. A quick check on a 2-core machine: --max-jobs 2 --rounds 1.
set -euo pipefail
cd "$(dirname "$0")/.."
# this tree's code for the CLI and for bench/cpu_split.py's child (it runs in a temporary directory)
export PYTHONPATH="${PYTHONPATH:-$PWD}"
PY=${PY:-python3}
SIZE_MB=${SIZE_MB:-500}
FILES=${FILES:-20000}
ROUNDS=${ROUNDS:-3}
SPLIT=${SPLIT:-1}
NCPU=$(nproc)
MAXJ=$NCPU
NDE=0
OUT_ARG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs) MAXJ=$2; shift 2 ;;
    --corpus) CORPUS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-default-excludes) NDE=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) OUT_ARG=$1; shift ;;
  esac
done
if [ -z "${JOBS:-}" ]; then
  JOBS=""
  for j in 1 2 4 8 16; do [ "$j" -le "$MAXJ" ] && JOBS="$JOBS $j"; done
  case " $JOBS " in *" $MAXJ "*) ;; *) JOBS="$JOBS $MAXJ" ;; esac
fi
CORPUS=${CORPUS:-corpora/out/scaling-monorepo}
OUT=${OUT_ARG:-bench/results/scaling-${NCPU}cpu-$(date +%Y%m%d-%H%M).md}
mkdir -p "$(dirname "$OUT")"

if [ ! -d "$CORPUS" ]; then
  "$PY" -m corpora.gen_monorepo --size-mb "$SIZE_MB" --files "$FILES" --out "$CORPUS"
fi
# warm the page cache
find "$CORPUS" -type f -print0 | xargs -0 cat > /dev/null

"$PY" - "$CORPUS" "$OUT" "$ROUNDS" "$SPLIT" "$NDE" $JOBS <<'PYEOF'
import json, os, platform, statistics, subprocess, sys, time
corpus, out, rounds, split = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
nde = ["--no-default-excludes"] if sys.argv[5] == "1" else []
jobs = [int(j) for j in sys.argv[6:]]
nbytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(corpus) for f in fs
             if f != "ground_truth.json" and os.path.isfile(os.path.join(d, f)))
gt = os.path.join(corpus, "ground_truth.json")
truth = json.load(open(gt)) if os.path.exists(gt) else None
rows = []
for j in jobs:
    times, rss, cpu, loads = [], [], [], []
    for _ in range(rounds):
        rep = os.path.join(os.path.dirname(os.path.abspath(corpus)), f".scaling-{j}.json")
        cmd = [sys.executable, "-m", "veritensor_fast.cli", "scan", corpus, "--format", "json", "--no-progress",
               "--no-config", "-o", rep, "--exclude", "ground_truth.json", "--jobs", str(j), *nde]
        loads.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd)
        _, status, ru = os.wait4(p.pid, 0)
        times.append(time.perf_counter() - t0)
        rss.append(ru.ru_maxrss / 1024)
        cpu.append(ru.ru_utime + ru.ru_stime)  # the CLI and its workers (reaped by it)
    found = {(f["path"], f["fingerprint"]) for f in json.load(open(rep))["findings"]}
    recall = (sum((s["path"], s["fingerprint"]) in found for s in truth["secrets"]) / len(truth["secrets"])
              if truth else float("nan"))
    os.unlink(rep)
    sp = {}
    if split:  # one in-process run: the parent's CPU while the pool runs against the workers'
        r = subprocess.run([sys.executable, "bench/cpu_split.py", corpus, "--jobs", str(j), *nde],
                           capture_output=True, text=True, check=False)
        sp = json.loads(r.stdout) if r.returncode == 0 and r.stdout.startswith("{") else {}
    wall = statistics.median(times)
    rows.append((j, wall, nbytes / 1e6 / wall, max(rss), recall, statistics.median(cpu), max(loads), sp))
    brief = {k: v for k, v in sp.items() if k not in ("workers", "longest_batches")}
    print(f"jobs {j:3}: {wall:7.2f} s {nbytes / 1e6 / wall:8.1f} MB/s cpu {statistics.median(cpu):.2f} s "
          f"recall {recall:.3f} {json.dumps(brief)}", file=sys.stderr)
base = rows[0][1]
lines = [f"# Scaling: {corpus} ({nbytes / 1e6:.0f} MB)", "",
         f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
         f"Python {platform.python_version()}, median of {rounds}, page cache warm.", "",
         "| --jobs | wall s | MB/s | speed-up vs --jobs 1 | efficiency | CPU s (all processes) | parent CPU s while the pool runs | worker CPU s | CPU s in batches | parent share | parent µs/file | worker idle s | tail s | modules workers import | tasks (walking, parts) | gaps between tasks s | parent starved s | longest task CPU s | peak RSS MB (largest process) | recall | max load before |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for j, w, m, r, rc, c, ld, sp in rows:
    g = lambda k: sp.get(k, "")  # noqa: E731
    lines.append(f"| {j} | {w:.2f} | {m:.0f} | {base / w:.2f}x | {base / w / j:.0%} | {c:.2f} | {g('parent_scan_cpu')} | "
                 f"{g('worker_cpu')} | {g('batch_cpu')} | {g('parent_share')} | {g('parent_us_per_file')} | "
                 f"{g('worker_idle_s')} | {g('tail_s')} | {g('worker_new_modules')} | {g('tasks')} ({g('walk_tasks') or g('tree_tasks')}, {g('part_tasks')}) | {g('gaps_s')} | {g('starved_s')} | "
                 f"{max((b[1] for b in sp.get('longest_batches', [])), default='')} | {r:.0f} | {rc:.3f} | {ld:.2f} |")
lines += ["", "parent share = parent CPU while the pool runs / (that + worker CPU). The parent is one thread, so "
          "the curve flattens near (1 - share) / share workers (Amdahl). CPU in batches: the same work at every "
          "--jobs, so growth with N is per-worker overhead. tail: seconds between the first worker's last batch "
          "and the last one's (a straggler: the longest batches are in the cpu_split line printed above). tasks: batches "
          "run; walking: those that listed part of the tree (with a pool the workers list all but the first 1,024 "
          "files); parts: parts of large files split across tasks. gaps: worker seconds between one task's end and "
          "the next one's start; parent starved: seconds the parent waited with fewer tasks in flight than workers. Amdahl at N workers: the serial start (CLI "
          "start-up, first listing, fork), the parent's CPU while the pool runs, and the longest task."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "wrote $OUT" >&2
