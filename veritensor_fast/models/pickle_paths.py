"""Paths that an object rebuilt by a pickle makes its loader open, judged at the object's ``BUILD``.

- joblib's old ``NDArrayWrapper``/``ZNDArrayWrapper`` (``joblib_arrays.external_file``): ``joblib.load`` runs
  ``np.load(<filename>, allow_pickle=True)`` on a file next to the pickle; one outside its directory is
  ``model.joblib.external-file``.
- PyTorch Distributed Checkpoint ``_StorageInfo`` (the ``.metadata`` pickle, or a rank's ``__N.metadata``):
  ``FileSystemReader.read_data`` opens ``Path(checkpoint_dir) / relative_path`` and ``torch.load``s the slice it
  names. ``pathlib`` follows ``..`` and lets an absolute ``relative_path`` replace the directory, so a hostile
  ``.metadata`` makes ``dcp.load`` read any file the user can read (and feed it to ``torch.load``). The writer
  always stores a bare file name (``__0_0.distcp``); an absolute one, one that climbs out with ``..`` or one that
  is no string (a ``pathlib`` object: ``Path / PosixPath("/etc/x")`` is absolute too) is
  ``model.dcp.external-path`` (high). The scanner never follows it. Set through ``BUILD`` (how ``pickle`` writes
  a dataclass: a state dict, or a ``(None, slots)`` pair) or given to the class call positionally.
"""

from __future__ import annotations

import re
from typing import Any

from veritensor_fast.models.base import ModelIssue, shown_path
from veritensor_fast.models.joblib_arrays import external_file
from veritensor_fast.models.pickle_issues import loc
from veritensor_fast.models.pickle_values import Call, Dict, Global

#: Where ``_StorageInfo`` lives (``torch.distributed.checkpoint.filesystem``; older releases kept the name).
STORAGE_INFO = frozenset({("torch.distributed.checkpoint.filesystem", "_StorageInfo")})


def escapes(path: str) -> str | None:
    """Why ``path``, joined to a directory, names a file outside it, or None."""
    if path[:1] in ("/", "\\") or re.match(r"[A-Za-z]:", path):
        return "an absolute path"
    if ".." in re.split(r"[\\/]", path):
        return "a path that climbs out with '..'"
    return None


def _dcp_issue(value: Any, where: str, at: int) -> ModelIssue | None:
    if isinstance(value, str):
        why = escapes(value)
        shown = shown_path(value)
    elif isinstance(value, Call):
        why, shown = "no string (an object: joined with '/' it may name any file)", "<object>"
    else:
        return None
    if why is None:
        return None
    return ModelIssue(
        "model.dcp.external-path", "high",
        f"Distributed Checkpoint metadata names the storage file {shown!r}, {why}: dcp.load opens it relative to "
        "the checkpoint directory and torch.loads the slice it names (a file outside the checkpoint)", shown,
        loc(where, at))


def _add(issues: list[ModelIssue], bad: ModelIssue | None) -> None:
    """Append ``bad`` unless the same path was reported already (every tensor of a checkpoint names its file)."""
    if bad is not None and not any(i.rule_id == bad.rule_id and i.evidence == bad.evidence for i in issues):
        issues.append(bad)


def path_issue(tgt: Any, state: Any, where: str, at: int, issues: list[ModelIssue]) -> None:
    """Report ``BUILD`` of ``state`` onto ``tgt`` when it makes the loader open a file outside the pickle's
    (checkpoint's) directory."""
    ext = external_file(tgt, state)
    if ext is not None:
        shown = shown_path(ext, 80)
        issues.append(ModelIssue(
            "model.joblib.external-file", "high",
            f"joblib array header makes joblib.load run np.load({shown!r}, allow_pickle=True) on a file "
            "outside the pickle's directory (that file's pickle runs too)", shown, loc(where, at)))
        return
    if not (isinstance(tgt, Call) and isinstance(tgt.func, Global)
            and (tgt.func.module, tgt.func.name) in STORAGE_INFO):
        return
    if isinstance(state, tuple) and len(state) == 2:  # (state, slotstate): both are set as attributes
        state = state[1] if isinstance(state[1], Dict) and "relative_path" in state[1].items else state[0]
    if isinstance(state, Dict) and "relative_path" in state.items:
        _add(issues, _dcp_issue(state.items["relative_path"], where, at))


def call_issue(func: Global, args: Any, where: str, at: int, issues: list[ModelIssue]) -> None:
    """``_StorageInfo(relative_path, offset, length)`` called with its path first (``REDUCE``)."""
    if (func.module, func.name) in STORAGE_INFO and isinstance(args, tuple) and args:
        _add(issues, _dcp_issue(args[0], where, at))
