"""Generate a synthetic git repository with ``git fast-import``, plus a ground-truth JSON of planted secrets.

Deterministic for a given seed and sizes. The history is mostly linear on ``main`` with side branches that are
merged back and lightweight tags; every commit edits a few files (source, YAML config and notebooks), so the
repository holds many versions of each file. Synthetic secrets (never real: random strings in the shape of a
provider's tokens) are added in one commit and, except a few, deleted some commits later; decoys that must not
be reported (placeholders, low-entropy look-alikes) are planted the same way.

Ground truth (``--truth``): ``{"secrets": [{rule_id, fingerprint, redacted, path, blob, commit, removed_in,
at_head}], "decoys": [{text_sha256, path, blob, commit}], "stats": {...}}``. ``blob`` and ``commit`` are the
object ids of the blob that introduced the secret at ``path`` and of the commit that added it.

Small instance (tests): ``python corpora/gen_git_repo.py OUT --commits 300``. Benchmark instance (>= 20k
commits, >= 200k blob versions): ``python corpora/gen_git_repo.py OUT --commits 20000 --changes 10``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALNUM = string.ascii_letters + string.digits
B32 = string.ascii_uppercase + "234567"
WORDS = ("model data train eval loss batch layer token config value result index cache load save parse check "
         "update build input output weight tensor score label split shard epoch step rate optim grad norm mask "
         "embed attn head proj query key vocab text image audio stream queue worker pool task job run").split()


def _tok(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


#: Planted secret shapes: rule id -> (generator, line template). All synthetic.
SECRET_KINDS: list[tuple[str, Any, str]] = [
    ("huggingface.user-token", lambda r: "hf_" + _tok(r, 34), 'HF_TOKEN = "{}"'),
    ("huggingface.org-token", lambda r: "api_org_" + _tok(r, 34), "org_token: {}"),
    ("github.token", lambda r: "ghp_" + _tok(r, 36), "GITHUB_TOKEN={}"),
    ("aws.access-key-id", lambda r: "AKIA" + _tok(r, 16, B32), 'aws_access_key_id = "{}"'),
    ("openai.api-key", lambda r: "sk-proj-" + _tok(r, 48), "client = OpenAI(api_key='{}')"),
]

#: Look-alikes that no rule may report (placeholders, low entropy, wrong length, embedded in a longer word).
DECOYS = [
    'HF_TOKEN = "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
    'token = "hf_YOUR_TOKEN_HERE"',
    "api_key = 'hf_abcdefghijklmnopqrstuvwxyzABCDEFGH'",
    'GITHUB_TOKEN="ghp_************************************"',
    'aws_access_key_id = "AKIAXXXXXXXXXXXXXXXX"',
    "myhf_4Qo4YXgInJMnyILA98MzEdxuVdZ7JzXB51 = 1",
]


def fingerprint(rule_id: str, secret: str) -> str:
    return hashlib.sha256(rule_id.encode() + b"\x00" + secret.encode()).hexdigest()


def blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@dataclass
class _File:
    path: str
    lines: list[str]
    notebook: bool = False
    planted: dict[int, str] = field(default_factory=dict)  # secret index -> line text

    def render(self) -> bytes:
        if not self.notebook:
            return ("\n".join(self.lines) + "\n").encode()
        cells = []
        for i in range(0, len(self.lines), 12):
            src = [ln + "\n" for ln in self.lines[i:i + 12]]
            cells.append({"cell_type": "code", "execution_count": i // 12 + 1, "metadata": {}, "outputs": [],
                          "source": src})
        nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
        return (json.dumps(nb, indent=1) + "\n").encode()


def _line(rng: random.Random) -> str:
    n = rng.randint(5, 9)
    w = rng.choices(WORDS, k=n)
    kind = rng.random()
    if kind < 0.4:
        return f"{w[0]}_{w[1]} = {'_'.join(w[2:4])}({', '.join(w[4:])})"
    if kind < 0.6:
        return f"    # {' '.join(w)} {rng.randint(0, 99999)}"
    if kind < 0.8:
        return f"    {w[0]}: {rng.randint(0, 1 << 20)}  # {' '.join(w[1:])}"
    return "def " + "_".join(w[:3]) + f"(self, {w[3]}, {w[4]}=None):"


def generate(out: str | os.PathLike[str], commits: int = 300, files: int = 200, avg_size: int = 4000,
             changes: int = 6, secrets: int = 40, decoys: int = 20, seed: int = 7, branch_every: int = 97,
             tag_every: int = 150, truth: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Build the repository at ``out`` (must not exist) and return (and write) the ground truth."""
    rng = random.Random(seed)
    out = Path(out)
    subprocess.run(["git", "init", "-q", "-b", "main", str(out)], check=True)
    marks_file = out / ".git" / "gen-marks"
    proc = subprocess.Popen(["git", "-C", str(out), "fast-import", "--quiet", f"--export-marks={marks_file}"],
                            stdin=subprocess.PIPE, bufsize=1 << 20)
    assert proc.stdin is not None
    w = proc.stdin
    lines_per_file = max(4, avg_size // 40)
    tree: dict[str, _File] = {}
    for i in range(files):
        r = rng.random()
        if r < 0.06:
            p = f"notebooks/nb_{i:05d}.ipynb"
        elif r < 0.2:
            p = f"configs/cfg_{i:05d}.yaml"
        else:
            p = f"src/pkg{i % 37:02d}/mod_{i:05d}.py"
        n = max(2, int(rng.gauss(lines_per_file, lines_per_file / 3)))
        tree[p] = _File(p, [_line(rng) for _ in range(n)], notebook=p.endswith(".ipynb"))
    paths = sorted(tree)
    # Plan secrets and decoys: index -> (add commit, remove commit or None).
    plan_add: dict[int, list[int]] = {}
    plan_del: dict[int, list[int]] = {}
    sec_meta: list[dict[str, Any]] = []
    for s in range(secrets):
        rule_id, gen, tmpl = SECRET_KINDS[s % len(SECRET_KINDS)]
        value = gen(rng)
        c_add = rng.randrange(1, max(2, commits - 2))
        keep = s % 8 == 0  # a few stay at HEAD
        c_del = None if keep else min(commits - 1, c_add + rng.randint(1, 40))
        if c_del is not None and c_del <= c_add:
            c_del = None
        sec_meta.append({"rule_id": rule_id, "secret": value, "line": tmpl.format(value), "path": rng.choice(paths),
                         "add": c_add, "del": c_del, "decoy": False})
    for d in range(decoys):
        c_add = rng.randrange(1, max(2, commits - 1))
        sec_meta.append({"rule_id": None, "secret": None, "line": DECOYS[d % len(DECOYS)], "path": rng.choice(paths),
                         "add": c_add, "del": min(commits - 1, c_add + rng.randint(1, 30)), "decoy": True})
    for idx, m in enumerate(sec_meta):
        plan_add.setdefault(m["add"], []).append(idx)
        if m["del"] is not None and m["del"] > m["add"]:
            plan_del.setdefault(m["del"], []).append(idx)

    mark = 0
    commit_marks: list[int] = []
    versions = 0
    content_bytes = 0
    intro: dict[int, tuple[str, int]] = {}  # secret index -> (blob oid, commit mark)

    def emit_blob(data: bytes) -> int:
        nonlocal mark
        mark += 1
        w.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)))
        w.write(data)
        w.write(b"\n")
        return mark

    def emit_commit(ref: str, ts: int, msg: str, parents: list[int], mods: list[tuple[str, int]]) -> int:
        nonlocal mark
        mark += 1
        author = rng.choice(["Ada Lovelace <ada@example.com>", "Alan Turing <alan@example.com>",
                             "Grace Hopper <grace@example.com>"])
        m = msg.encode()
        w.write(b"commit %s\nmark :%d\nauthor %s %d +0000\ncommitter %s %d +0000\ndata %d\n%s\n"
                % (ref.encode(), mark, author.encode(), ts, author.encode(), ts, len(m), m))
        if parents:
            w.write(b"from :%d\n" % parents[0])
            for p in parents[1:]:
                w.write(b"merge :%d\n" % p)
        for path, bm in mods:
            w.write(b"M 100644 :%d %s\n" % (bm, path.encode()))
        w.write(b"\n")
        return mark

    def edit(f: _File) -> None:
        for _ in range(rng.randint(1, 3)):
            if not f.lines:
                f.lines.append(_line(rng))
            j = rng.randrange(len(f.lines))
            if f.lines[j] in f.planted.values():
                j = len(f.lines)
                f.lines.append(_line(rng))
            else:
                f.lines[j] = _line(rng)

    def write_files(touched: list[_File], c_index: int | None) -> list[tuple[str, int]]:
        nonlocal versions, content_bytes
        mods = []
        for f in touched:
            data = f.render()
            bm = emit_blob(data)
            versions += 1
            content_bytes += len(data)
            mods.append((f.path, bm))
            if c_index is not None:
                oid = None
                for sidx in f.planted:
                    if sidx not in intro:
                        oid = oid or blob_oid(data)
                        intro[sidx] = (oid, -1)
        return mods

    ts0 = 1_600_000_000
    head = 0
    for c in range(commits):
        touched: dict[str, _File] = {}
        new_secret_idx: list[int] = []
        for idx in plan_add.get(c, []):
            m = sec_meta[idx]
            f = tree[m["path"]]
            pos = rng.randrange(len(f.lines) + 1)
            f.lines.insert(pos, m["line"])
            f.planted[idx] = m["line"]
            touched[f.path] = f
            new_secret_idx.append(idx)
        for idx in plan_del.get(c, []):
            m = sec_meta[idx]
            f = tree[m["path"]]
            if idx in f.planted:
                f.lines.remove(f.planted.pop(idx))
                touched[f.path] = f
        for p in rng.sample(paths, min(changes, len(paths))):
            if p not in touched:
                edit(tree[p])
                touched[p] = tree[p]
        mods = write_files(list(touched.values()), c)
        head = emit_commit("refs/heads/main", ts0 + c * 3600, f"commit {c}: update {len(mods)} files",
                           [head] if head else [], mods)
        for sidx in new_secret_idx:
            if sidx in intro and intro[sidx][1] == -1:
                intro[sidx] = (intro[sidx][0], head)
        commit_marks.append(head)
        if branch_every and c and c % branch_every == 0:
            # a side branch of three commits (own files only), merged back into main
            side = head
            for k in range(3):
                p = rng.choice(paths)
                f = _File(p + f".side{c}_{k}", [_line(rng) for _ in range(20)])
                bm = emit_blob(f.render())
                versions += 1
                side = emit_commit(f"refs/heads/feature/f{c}", ts0 + c * 3600 + 60 * (k + 1),
                                   f"feature {c} step {k}", [side], [(f.path, bm)])
            head = emit_commit("refs/heads/main", ts0 + c * 3600 + 600, f"Merge feature/f{c}", [head, side], [])
        if tag_every and c and c % tag_every == 0:
            w.write(b"reset refs/tags/v%d\nfrom :%d\n\n" % (c, head))
    w.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "-C", str(out), "checkout", "-q", "-f", "main"], check=True)
    marks: dict[int, str] = {}
    for line in marks_file.read_text().splitlines():
        mk, oid = line.split()
        marks[int(mk[1:])] = oid
    marks_file.unlink()
    sec_out: list[dict[str, Any]] = []
    dec_out: list[dict[str, Any]] = []
    for idx, m in enumerate(sec_meta):
        blob, cmark = intro.get(idx, ("", 0))
        entry = {"path": m["path"], "blob": blob, "commit": marks.get(cmark, ""),
                 "removed_in": marks.get(commit_marks[m["del"]], "") if m["del"] is not None else None}
        if m["decoy"]:
            dec_out.append({"text_sha256": hashlib.sha256(m["line"].encode()).hexdigest(), **entry})
        else:
            sec_out.append({"rule_id": m["rule_id"], "fingerprint": fingerprint(m["rule_id"], m["secret"]),
                            "redacted": m["secret"][:5] + "…" + m["secret"][-2:], **entry,
                            "at_head": m["del"] is None})
    result = {"secrets": sec_out, "decoys": dec_out,
              "stats": {"commits": len(marks) - versions, "blob_versions": versions, "content_bytes": content_bytes,
                        "seed": seed, "files": files, "avg_size": avg_size, "changes": changes}}
    tpath = Path(truth) if truth else out.with_name(out.name + ".truth.json")
    tpath.write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="repository directory to create")
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--files", type=int, default=200, help="files in the working tree")
    ap.add_argument("--avg-size", type=int, default=4000, help="average file size in bytes")
    ap.add_argument("--changes", type=int, default=6, help="files edited per commit")
    ap.add_argument("--secrets", type=int, default=40)
    ap.add_argument("--decoys", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--truth", help="ground-truth JSON path (default: OUT.truth.json)")
    a = ap.parse_args(argv)
    if os.path.exists(a.out):
        print(f"{a.out} exists", file=sys.stderr)
        return 2
    res = generate(a.out, a.commits, a.files, a.avg_size, a.changes, a.secrets, a.decoys, a.seed, truth=a.truth)
    print(json.dumps(res["stats"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
