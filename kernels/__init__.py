"""Hot loops of veritensor_fast, installed as ``veritensor_fast.kernels``.

This top-level ``kernels/`` folder is mapped onto the ``veritensor_fast.kernels`` import name by
``pyproject.toml`` so that it can never collide with the unrelated ``kernels`` distribution on PyPI.

- ``hsdb``: one Hyperscan block-mode database for every rule: compile, serialise, cache, scan.
- ``entropy``: Shannon entropy of candidate tokens with numpy (never of whole buffers).
- ``hs_python``: the pure-Python fallback for ``hyperscan`` (see ``BACKEND``).

Importing this package chooses the matcher backend once per process: ``hyperscan`` when it imports, else the
fallback, which is then installed as ``sys.modules["hyperscan"]`` so every ``import hyperscan`` in the package
gets it. ``VERITENSOR_FAST_MATCHER=python`` forces the fallback, ``=hyperscan`` forbids it.
"""

from __future__ import annotations

import os
import sys

MATCHER_ENV = "VERITENSOR_FAST_MATCHER"


def _select_backend() -> str:
    want = os.environ.get(MATCHER_ENV, "").strip().lower() or "auto"
    if want not in ("auto", "hyperscan", "python"):
        raise ImportError(f"{MATCHER_ENV} must be auto, hyperscan or python, not {want!r}")
    if want != "python":
        try:
            import hyperscan  # noqa: F401
        except ImportError:
            if want == "hyperscan":
                raise
        else:
            return "hyperscan"
    from veritensor_fast.kernels import hs_python

    sys.modules["hyperscan"] = hs_python
    return "python"


#: ``hyperscan`` or ``python`` (the fallback: identical findings, slower).
BACKEND = _select_backend()
