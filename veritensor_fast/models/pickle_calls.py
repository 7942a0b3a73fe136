"""What a call of a global does in the pickle walker's opcode loop (``pickle_stream``): the global is marked called,
a nested loader's literal bytes are analysed (``StreamHooks._nested``), an allocating builtin with a huge integer
argument is a finding, and the few results that matter later are kept (``_codecs.encode`` of a string,
``copyreg`` reconstructors, the first arguments). Nothing is ever called.
"""

from __future__ import annotations

from typing import Any, Protocol

from veritensor_fast.models.allowlist import ALLOCATORS, NESTED_LOADERS, dangerous_reason, ident
from veritensor_fast.models.base import ModelIssue, ModelLimits
from veritensor_fast.models.pickle_issues import GlobalUse, loc
from veritensor_fast.models.pickle_paths import call_issue
from veritensor_fast.models.pickle_reader import Reader
from veritensor_fast.models.pickle_torch import rebuild_issue
from veritensor_fast.models.pickle_values import Call, Global


class StreamHooks(Protocol):
    """What ``decode_stream`` asks of its walker (``PickleWalker``)."""

    limits: ModelLimits
    storages: dict[str, int] | None

    def _resolve(self, module: str, name: str, proto: int) -> tuple[str, str, str | None, bool]: ...

    def _nested(self, data: Any, args: Any, issues: list[ModelIssue], where: str, at: int) -> None: ...

    def _joblib_array(self, data: Any, r: Reader, end: int, state: Any, uses: dict[str, GlobalUse],
                      issues: list[ModelIssue], where: str, discard: bool, depth: int) -> Any: ...


def global_call(func: Global, args: Any, at: int, uses: dict[str, GlobalUse], hooks: Any, data: Any,
                issues: list[ModelIssue], where: str, expand_limit: int) -> Call:
    """The value the walker keeps for ``func(*args)`` at offset ``at``, recording what the call means."""
    u = uses.get(func.key) or next((v for k, v in uses.items() if k.startswith(func.key + "@")), None)
    if u is not None:
        u.called = True
    if (func.module, func.name) in NESTED_LOADERS:
        hooks._nested(data, args, issues, where, at)
    if func.module == "_codecs" and func.name == "encode" and isinstance(args, tuple) and args \
            and isinstance(args[0], str):
        return Call(func, args[0])
    if func.module == "builtins" and func.name in ALLOCATORS and isinstance(args, tuple):
        big = max((a for a in args if type(a) is int), default=0)
        if big > expand_limit * 100:
            issues.append(ModelIssue(
                "model.pickle.dos", "high",
                f"pickle calls builtins.{func.name} with {big:,}: loading it allocates (or iterating "
                "it produces) that many elements", "allocation", loc(where, at)))
    if func.module == "torch._utils" and (bad := rebuild_issue(func, args, at, where)):
        issues.append(bad)
    if func.name == "_StorageInfo":  # DCP: its storage file's path (``pickle_paths``)
        call_issue(func, args, where, at, issues)
    if func.module == "copyreg" and func.name in ("_reconstructor", "__newobj__") and args \
            and isinstance(args[0], Global):
        return Call(args[0], args=tuple(args[1:4]))  # an instance of that class
    return Call(func, args=tuple(args[:4]) if isinstance(args, tuple) else ())


def invalid_name(module: str, at: int, uses: dict[str, GlobalUse]) -> None:
    """A GLOBAL/INST whose name is no identifier: pickle imports the module (running its code) before the name
    lookup fails; only a dangerous module is reported (a text file may start "cword\\nsome words\\n")."""
    reason = dangerous_reason(module, "x") if ident(module) else None
    if reason:
        uses[f"{module}.<invalid name>"] = GlobalUse(
            module, "<invalid name>", at, "GLOBAL (module imported, then the name is invalid)", reason=reason)


def expansion_issue(expand_limit: int, ops: int, location: dict[str, Any]) -> ModelIssue:
    """The finding of a structure that memo/DUP references expand past ``expand_limit`` elements."""
    return ModelIssue(
        "model.pickle.dos", "high",
        f"pickle builds a structure of more than {expand_limit:,} elements from {ops:,} opcodes by "
        "re-using memo/DUP references (\"billion laughs\"): hashing, comparing, printing or copying "
        "it after (or while) loading exhausts CPU or memory", "expansion", location)
