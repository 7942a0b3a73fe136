"""review19: the AST budget's estimate is an upper bound on the parse's peak also for a source that ends in a
syntax error. CPython then parses the whole source a second time with its error rules on, and keeps ~1.6 KiB
per token: on the integration branch a unit was charged 1 KiB, so a dense 392 KB source ending in ``a a``
was admitted under the 384 MiB budget and peaked at 609 MB. Measured in a fresh subprocess under an
address-space cap."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from veritensor_fast.detectors.pyast_budget import DEFAULT_BUDGET, UNIT_COST, parse_cost, parse_units

PEAK = r"""
import ast, json, sys


def status(key):
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith(key + ":"))


src = sys.stdin.buffer.read()
before = status("VmRSS")  # resident now (ru_maxrss would carry the forking parent's peak over exec)
try:
    ast.parse(src)
except SyntaxError:
    pass
print(json.dumps({"kb": status("VmHWM") - before}))
"""


def _peak(src: bytes) -> int:
    out = subprocess.run(["prlimit", "--as=2000000000", "--", sys.executable, "-c", PEAK], input=src,
                         capture_output=True, timeout=60, check=True)
    return int(json.loads(out.stdout)["kb"]) * 1024


@pytest.mark.parametrize("src", [
    b"a\n" * 30000 + b"a a\n",  # the worst shape measured: a second, error-rule parse of every line
    b"a;" * 60000 + b"\na a\n",
    b"[a]\n" * 15000 + b"a a\n",
    b"a\n" * 30000,  # parses: ~922 B a unit
], ids=["lines-then-error", "semicolons-then-error", "lists-then-error", "lines"])
def test_the_estimate_bounds_the_peak_of_a_source_with_a_syntax_error(src: bytes) -> None:
    peak, units = _peak(src), parse_units(src)
    assert peak <= units * UNIT_COST, f"{peak} B peak for {units} units ({peak // units} B a unit)"


def test_the_default_admits_the_same_sources() -> None:
    """The fix changes what the budget says, not what is parsed: 384 Ki units, as before."""
    assert DEFAULT_BUDGET // UNIT_COST == 384 << 10
    dense = b"a\n" * (192 << 10)
    assert parse_cost(dense) <= DEFAULT_BUDGET < parse_cost(dense + b"a\n")
