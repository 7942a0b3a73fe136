"""CPU seconds of one Hyperscan scan of the secrets database, rules compiled whole against rules whose leading
alternation is one expression per alternative (``matcher.rule_expressions``), on samples of a real tree.

    PYTHONPATH=. python3 bench/db_split.py /tmp/vf-realtree-tree [MB per sample]

Three samples: ``.py`` text, other text (JSON, YAML, Markdown, headers), and the first bytes of the largest
``.so`` (binary: scanned with the rules alone, as the text pass does). Each line: the best of 5 of
``time.process_time`` per database and the set of (rule, end) pairs, which must be equal.
"""

from __future__ import annotations

import os
import sys
import time

from veritensor_fast.kernels.hsdb import Scanner, compile_patterns
from veritensor_fast.matcher import aux_patterns, rule_expressions
from veritensor_fast.worker import ScanOptions


def sample(root: str, exts: tuple[str, ...], limit: int) -> bytes:
    out = bytearray()
    for dp, _dn, fn in sorted(os.walk(root)):
        for f in sorted(fn):
            if f.endswith(exts):
                with open(os.path.join(dp, f), "rb") as fh:
                    out += fh.read(limit - len(out))
                if len(out) >= limit:
                    return bytes(out)
    return bytes(out)


def largest(root: str, ext: str, limit: int) -> bytes:
    best = max(((os.path.getsize(os.path.join(dp, f)), os.path.join(dp, f)) for dp, _dn, fn in os.walk(root)
                for f in fn if f.endswith(ext) and not os.path.islink(os.path.join(dp, f))), default=(0, ""))
    if not best[1]:
        return b""
    with open(best[1], "rb") as fh:
        return fh.read(limit)


def best_of(sc: Scanner, buf: bytes, reps: int = 5) -> tuple[float, set[tuple[int, int]]]:
    t = 1e9
    hits: set[tuple[int, int]] = set()
    for _ in range(reps):
        t0 = time.process_time()
        hits = set(sc.scan(buf))
        t = min(t, time.process_time() - t0)
    return t, hits


def main(root: str, mb: int) -> int:
    rs = ScanOptions().ruleset()
    n = len(rs.rules)
    aux = aux_patterns(rs)
    whole = [r.hs_pattern for r in rs.rules]
    split, ids = rule_expressions(rs.rules)
    extra = list(range(n, n + len(aux)))
    dbs = {
        "full": (Scanner(compile_patterns(whole + aux)), Scanner(compile_patterns(split + aux, None, ids + extra))),
        "rules": (Scanner(compile_patterns(whole)), Scanner(compile_patterns(split, None, ids))),
    }
    limit = mb << 20
    samples = [("py", "full", sample(root, (".py",), limit)),
               ("text", "full", sample(root, (".json", ".yaml", ".yml", ".md", ".txt", ".h"), limit)),
               ("so", "rules", largest(root, ".so", limit))]
    ok = True
    for name, db, buf in samples:
        old, new = dbs[db]
        t_old, h_old = best_of(old, buf)
        t_new, h_new = best_of(new, buf)
        ok &= h_old == h_new
        print(f"{name:5} {len(buf) >> 20:4} MB {db:5} whole {len(buf) / t_old / 1e9:.2f} GB/s  split "
              f"{len(buf) / t_new / 1e9:.2f} GB/s  ({(t_new - t_old) / t_old:+.0%} CPU)  same hits: {h_old == h_new}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40))
