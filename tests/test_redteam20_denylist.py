"""redteam20: callables that run code, load a nested pickle or reach the network are CRITICAL, not "unknown".

On 8eea362 each of these gave only a ``model.pickle.unknown-global`` finding (high when called): the names
come from picklescan's ``_unsafe_globals`` (its 2025 advisories) and from published CVEs, and are not on this
project's denylist. Each is written the two ways a pickle imports a name (STACK_GLOBAL, GLOBAL) and called.
"""

from __future__ import annotations

import pytest

from veritensor_fast.models import analyze


def _su(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _payloads(module: str, name: str) -> list[bytes]:
    call = _su("echo pwned") + b"\x85R."  # one argument, REDUCE, STOP
    return [b"\x80\x04" + _su(module) + _su(name) + b"\x93" + call,
            b"\x80\x02" + f"c{module}\n{name}\n".encode() + b"X\x0a\x00\x00\x00echo pwned\x85R."]


CASES = [
    ("doctest", "debug_script", "picklescan _unsafe_globals: runs a script under pdb"),
    ("doctest", "debug_src", "runs the examples of a docstring"),
    ("torch.utils._config_module", "ConfigModule.load_config", "picklescan: pickle.loads of its argument"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers", "picklescan: pickle.loads of its data"),
    ("torch.utils.bottleneck.__main__", "run_cprofile", "picklescan: exec of a code string"),
    ("numexpr", "evaluate", "CVE-2023-39631: numexpr.evaluate reached eval"),
    ("sympy", "sympify", "sympify evaluates strings (eval)"),
    ("sympy.parsing.sympy_parser", "parse_expr", "parse_expr evaluates strings (eval)"),
    ("jsonpickle", "decode", "jsonpickle builds any object by name"),
    ("aiohttp", "request", "network access (exfiltration)"),
    ("pandas", "read_pickle", "loads a pickle file by path"),
    ("pandas.io.pickle", "read_pickle", "loads a pickle file by path"),
]


@pytest.mark.parametrize("module,name,why", CASES, ids=[f"{m}.{n}" for m, n, _ in CASES])
def test_code_running_callable_is_critical(module: str, name: str, why: str) -> None:
    for data in _payloads(module, name):
        issues = analyze(data, "model.pkl")
        crit = [i for i in issues if i.severity == "critical" and i.rule_id == "model.pickle.dangerous-global"]
        assert [i.evidence for i in crit] == [f"{module}.{name}"], (why, issues)


def test_pandas_frames_stay_reviewed_data() -> None:
    """The exact names above never reach what pandas' own pickles use."""
    from pathlib import Path

    fix = Path(__file__).parent / "fixtures" / "pandas_pickles"
    files = sorted(p for p in fix.iterdir() if p.name.startswith("frame."))
    assert files
    for p in files:
        assert analyze(p.read_bytes(), p.name) == [], p
