"""Which repository git opens: the path the user named, whatever git's location variables say.

git reads where the repository is from its environment before it looks at ``-C PATH``: ``GIT_DIR``,
``GIT_WORK_TREE``, ``GIT_COMMON_DIR``, ``GIT_INDEX_FILE``, ``GIT_OBJECT_DIRECTORY``,
``GIT_ALTERNATE_OBJECT_DIRECTORIES``, ``GIT_NAMESPACE``, ``GIT_CEILING_DIRECTORIES``... Inherited blindly, a
``GIT_DIR`` exported in a shell, or set by git for the hook the scanner runs from, makes ``scan --history B``
read repository A and report A's secrets as B's. git sets some of them on purpose for the repository it runs a
hook in, and a scan from that hook must read what they name: the index being committed
(``GIT_INDEX_FILE=<git dir>/index.lock`` or ``next-index-*.lock``), a linked worktree's ``GIT_DIR``, a push's
quarantine (``GIT_DIR=.``, ``GIT_OBJECT_DIRECTORY`` / ``GIT_QUARANTINE_PATH`` = ``<repo>/objects/tmp_objdir-*``,
``GIT_ALTERNATE_OBJECT_DIRECTORIES=<repo>/objects``).

:func:`locate` decides, once per repository scanned and in the process that lists it, which of them describe
*that* repository: it asks git (without any of them) which git directory the path has, then keeps

- ``GIT_DIR`` / ``GIT_COMMON_DIR`` / ``GIT_WORK_TREE`` that name (relative to the current directory) that git
  directory / its common directory / its work tree; where the path has no repository of its own, ``GIT_DIR``
  with a ``GIT_WORK_TREE`` holding the path (a work tree kept apart from its git directory);
- ``GIT_INDEX_FILE`` inside that git directory or its common directory; ``GIT_OBJECT_DIRECTORY``,
  ``GIT_QUARANTINE_PATH`` and each ``GIT_ALTERNATE_OBJECT_DIRECTORIES`` entry inside its common directory;

each as an absolute path; every other location variable is dropped for that repository's git commands. The
decision is a *target* string (:func:`join`): the absolute path, the kept variables and a token unique to this
decision, NUL-separated (no path or variable holds a NUL). Sources put it in each item's ``origin``, so it
travels with the task: a worker (a forked process, a Dask worker with its own environment) runs git with the
decision made here, never its own inherited variables (``gitcmd`` drops them all). The token makes
``git_guard``'s per-process answer new for each scan (a repository changed between two scans is checked again).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping

#: Inherited variables that say which repository, index, objects or refs git reads: none reaches a git child
#: unless :func:`locate` kept it for the repository (see the module docstring).
LOCATION = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_QUARANTINE_PATH", "GIT_PREFIX", "GIT_SHALLOW_FILE",
    "GIT_REPLACE_REF_BASE", "GIT_IMPLICIT_WORK_TREE", "GIT_INTERNAL_SUPER_PREFIX", "GIT_REF_PARANOIA",
})
_SEP = "\0"
_TOKEN = "@"
_serial = itertools.count(1)


def join(path: str, env: Mapping[str, str], token: str = "") -> str:
    """A target: ``path``, then ``NAME=value`` for each kept variable, then ``@token`` (NUL-separated)."""
    parts = [path, *(f"{k}={v}" for k, v in sorted(env.items()))]
    if token:
        parts.append(_TOKEN + token)
    return _SEP.join(parts)


def split(target: str) -> tuple[str, dict[str, str]]:
    """``(path, kept variables)`` of a target; a plain path keeps none."""
    path, *rest = target.split(_SEP)
    env = {}
    for part in rest:
        k, eq, v = part.partition("=")
        if eq and k in LOCATION:
            env[k] = v
    return path, env


def rebase(target: str, path: str) -> str:
    """``target`` with its path replaced by ``path`` (the same decision: the same repository, seen from there)."""
    _old, sep, rest = target.partition(_SEP)
    return path + sep + rest


def has_token(target: str) -> bool:
    """True for a target :func:`locate` made (one decision, one scan)."""
    return target.rpartition(_SEP)[2].startswith(_TOKEN) and _SEP in target


def path_of(target: str) -> str:
    """The path part of a target (a plain path is its own)."""
    return target.partition(_SEP)[0]


def _real(p: str, base: str) -> str:
    return os.path.realpath(os.path.join(base, p))


def _inside(p: str, top: str) -> bool:
    return p == top or p.startswith(top.rstrip("/") + "/")


def _own(path: str, env: Mapping[str, str], worktree: bool, token: str) -> tuple[str, str, str] | None:
    """``(git dir, common dir, work tree or "")`` (real paths) git finds for ``path`` with only ``env`` of the
    location variables, or None when git finds none (or refuses the repository: the scan reports that)."""
    from veritensor_fast import gitcmd

    d = path if os.path.isdir(path) else os.path.dirname(path) or "."
    try:
        out = gitcmd.run(join(d, env, token), ["rev-parse", "--absolute-git-dir", "--git-common-dir",
                                        "--is-bare-repository"]).decode("utf-8", "surrogateescape").splitlines()
        top = ""
        if worktree and len(out) >= 3 and out[2].strip() == "false":
            top = gitcmd.run(join(d, env, token), ["rev-parse", "--show-toplevel"]).decode("utf-8", "surrogateescape").strip()
    except gitcmd.GitError:
        return None
    if len(out) < 3:
        return None
    return (os.path.realpath(out[0]), _real(out[1], d), os.path.realpath(top) if top else "")


def locate(path: str, environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """The target for ``path`` (see the module docstring) and the names of the location variables dropped."""
    environ = os.environ if environ is None else environ
    path = os.path.abspath(path)
    given = {k: environ[k] for k in LOCATION if environ.get(k)}
    token = f"{os.getpid()}.{next(_serial)}"
    if not given:
        return join(path, {}, token), []
    try:
        cwd = os.getcwd()
    except OSError:  # the current directory was removed: relative values name nothing
        cwd = "/nonexistent"
    keep: dict[str, str] = {}
    own = _own(path, {}, "GIT_WORK_TREE" in given, token)
    if "GIT_DIR" in given:
        g = _real(given["GIT_DIR"], cwd)
        wt = _real(given["GIT_WORK_TREE"], cwd) if "GIT_WORK_TREE" in given else ""
        if own is not None and g == own[0]:
            keep["GIT_DIR"] = g
        elif own is None and wt and _inside(os.path.realpath(path), wt):
            # a work tree kept apart from its git directory (``--git-dir=~/.cfg --work-tree=~``)
            own = _own(path, {"GIT_DIR": g, "GIT_WORK_TREE": wt}, True, token)
            if own is not None:
                keep.update(GIT_DIR=g, GIT_WORK_TREE=wt)
    if own is not None:
        gitdir, common, top = own
        if "GIT_WORK_TREE" in given and "GIT_WORK_TREE" not in keep and top and \
                _real(given["GIT_WORK_TREE"], cwd) == top and ("GIT_DIR" in keep or "GIT_DIR" not in given):
            keep["GIT_WORK_TREE"] = top
        if "GIT_COMMON_DIR" in given and _real(given["GIT_COMMON_DIR"], cwd) == common:
            keep["GIT_COMMON_DIR"] = common
        if "GIT_INDEX_FILE" in given:
            idx = given["GIT_INDEX_FILE"]
            real = os.path.join(_real(os.path.dirname(idx) or ".", cwd), os.path.basename(idx))
            if _inside(real, gitdir) or _inside(real, common):
                keep["GIT_INDEX_FILE"] = real
        for k in ("GIT_OBJECT_DIRECTORY", "GIT_QUARANTINE_PATH"):
            if k in given and _inside(_real(given[k], cwd), common):
                keep[k] = _real(given[k], cwd)
        if "GIT_ALTERNATE_OBJECT_DIRECTORIES" in given:
            # entries a push quarantine names (``<repo>/objects``); a quoted entry (a path with a colon) is dropped
            alts = [_real(a, cwd) for a in given["GIT_ALTERNATE_OBJECT_DIRECTORIES"].split(":")
                    if a and not a.startswith('"')]
            alts = [a for a in alts if _inside(a, common) and ":" not in a]
            if alts:
                keep["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = ":".join(dict.fromkeys(alts))
    return join(path, keep, token), sorted(set(given) - set(keep))
