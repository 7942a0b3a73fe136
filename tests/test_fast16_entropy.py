"""Entropy floors without numpy (issue 16): importing numpy cost every scan that met a candidate ~0.13 CPU-s
per process (measured), more than the rest of the start-up. ``entropy.below`` decides each floor in pure
Python and asks numpy only for a token within ``_EPS`` of its floor, so its answers are exactly
``shannon_many(t) < floor`` — checked here against numpy itself, including floors equal to a token's own
entropy (the only place the two roundings can disagree)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from tests.conftest import hf_token
from veritensor_fast.kernels import entropy
from veritensor_fast.rules import load_rules


def _tokens() -> list[bytes]:
    rng = random.Random(16)
    alphabets = [b"abcdef0123456789", b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
                 bytes(range(256)), b"ab", b"abcdefgh"]
    toks = [bytes(rng.choice(a) for _ in range(n)) for a in alphabets
            for n in (0, 1, 2, 3, 5, 8, 16, 20, 32, 34, 40, 64, 100, 257) for _ in range(6)]
    toks += [bytes(range(k)) for k in (1, 2, 4, 8, 16, 32, 64, 128, 256)]  # entropy exactly log2(k)
    return toks


def test_below_decides_as_numpy_does() -> None:
    toks = _tokens()
    ref = entropy.shannon_many(toks)
    floors = sorted({r.min_entropy for r in load_rules().rules if r.min_entropy is not None} | {1.0, 3.0, 4.3, 8.0})
    for floor in floors:
        assert entropy.below(toks, [floor] * len(toks)) == [bool(x < floor) for x in ref], floor
    own = [float(x) for x in ref]  # every token exactly at its floor: numpy decides
    assert entropy.below(toks, own) == [bool(x < f) for x, f in zip(ref, own, strict=True)]
    nudged = [f + 1e-15 for f in own]
    assert entropy.below(toks, nudged) == [bool(x < f) for x, f in zip(ref, nudged, strict=True)]
    assert entropy.below(toks, [None] * len(toks)) == [False] * len(toks)


def test_pure_python_entropy_is_within_the_margin() -> None:
    toks = [t for t in _tokens() if t]
    ref = entropy.shannon_many(toks)
    assert max(abs(entropy._shannon_py(t) - float(r)) for t, r in zip(toks, ref, strict=True)) < entropy._EPS / 1e3


_PROBE = """
import atexit, sys
atexit.register(lambda: print("NUMPY", "numpy" in sys.modules, file=sys.stderr))
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", "scan", sys.argv[1], "--jobs", "1", "-q", "--no-progress"]
main()
"""


def test_a_scan_with_findings_never_imports_numpy(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    (target / "a.py").write_text(f'TOKEN = "{hf_token()}"\nX = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"\n')
    (target / "b.env").write_text("AWS_SECRET_ACCESS_KEY=abcdefghij0123456789abcdefghij0123456789\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    p = subprocess.run([sys.executable, "-c", _PROBE, str(target)], capture_output=True, text=True, cwd=tmp_path,
                       env=env, timeout=120, check=False)
    assert p.returncode == 1, p.stderr  # the token was found
    assert "NUMPY False" in p.stderr, p.stderr
