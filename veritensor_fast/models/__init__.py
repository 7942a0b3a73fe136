"""Static analysis of model files: ``analyze(buf, name, options) -> list[ModelIssue]``. Nothing is ever executed.

This package ``__init__`` is deliberately empty of imports: the scanner imports ``veritensor_fast.models.sniff``
for every file and must not pay for the analysers (25-75 ms) until a file actually sniffs as a model, pickle or
archive. The public names below are loaded on first attribute access (PEP 562). The analyser itself lives in
``veritensor_fast.models.analyzer``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veritensor_fast.models.analyzer import Analyzer, analyze, is_candidate
    from veritensor_fast.models.base import AnalyzeOptions, ModelIssue, ModelLimits

__all__ = ["Analyzer", "AnalyzeOptions", "ModelIssue", "ModelLimits", "analyze", "is_candidate"]

_LAZY = {
    "Analyzer": "veritensor_fast.models.analyzer",
    "analyze": "veritensor_fast.models.analyzer",
    "is_candidate": "veritensor_fast.models.analyzer",
    "AnalyzeOptions": "veritensor_fast.models.base",
    "ModelIssue": "veritensor_fast.models.base",
    "ModelLimits": "veritensor_fast.models.base",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
