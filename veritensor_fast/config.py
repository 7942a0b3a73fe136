"""Project configuration: ``[tool.veritensor-fast]`` in ``pyproject.toml`` or a ``.veritensor-fast.toml`` file.

Trust: a scanned tree never configures its own audit. A config applies only when the user names it
(``--config FILE``) or stands in it: ``.veritensor-fast.toml``, then ``pyproject.toml`` (only if it has a
``[tool.veritensor-fast]`` table) in the current directory (for ``--staged``/``--since-commit`` also the git
top-level when the current directory is inside that repository). A config file inside a scanned target
elsewhere is not applied (``untrusted_configs`` finds it so the CLI can say so); ``--no-config`` ignores all.
In ``.veritensor-fast.toml`` the keys sit at top level (a ``[tool.veritensor-fast]`` table is accepted too).

Keys may be spelled with ``_`` or ``-``. Unknown keys and wrongly typed values raise ``ConfigError`` naming the
key. Relative paths (``rules``, ``baseline``) are relative to the directory of the (trusted) config file.
Command-line flags override scalar keys; list keys (``exclude``, ``rules``, ``disabled_rules``,
``allow_globals``) are extended by the matching flags. ``show_secrets`` is deliberately not configurable.
Config files are read only if they are regular files of at most 1 MiB (``safeio.MAX_CONFIG_BYTES``). An
unreadable or invalid ``pyproject.toml`` without our table is skipped with a note; one that mentions our table
(searched in its first 64 MiB) is an error.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from veritensor_fast.findings import SEVERITY_ORDER
from veritensor_fast.worker import ScanOptions

CONFIG_FILE = ".veritensor-fast.toml"
PYPROJECT = "pyproject.toml"
TABLE = "veritensor-fast"
TABLE_ALIAS = "veritensor_fast"


class ConfigError(Exception):
    """The configuration file is unreadable, not TOML, or holds an unknown key or a wrongly typed value."""


@dataclass(frozen=True)
class Config:
    """Settings from a config file. ``None`` means "not set" (the command-line default applies)."""

    exclude: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()  # extra YAML rules files (absolute, resolved against the config's directory)
    disabled_rules: tuple[str, ...] = ()
    fail_severity: str | None = None
    entropy: tuple[tuple[str, float], ...] = ()  # rule id -> entropy floor (bits per character)
    allow_globals: tuple[str, ...] = ()  # extra pickle globals, "module.qualname"
    jobs: int | None = None
    strict_secrets: bool | None = None
    include_outputs: bool | None = None
    follow_symlinks: bool | None = None
    max_file_size: int | None = None
    baseline: str | None = None  # baseline file (absolute, resolved against the config's directory)
    inline_ignores: bool | None = None
    ignore_model_findings_inline: bool | None = None
    allow_secrets: tuple[str, ...] = ()  # regexes of known, harmless values (test fixtures, public demo keys)
    decode_base64: bool | None = None
    base64_depth: int | None = None
    python_ast: bool | None = None
    source: str = ""  # the file this came from ("" = no file)


def _str_list(key: str, v: Any, base: Path | None = None) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"key '{key}' must be a list of strings")
    if base is not None:
        return tuple(str(base / x) for x in v)
    return tuple(v)


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"key '{key}' must be true or false")
    return v


def _int(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"key '{key}' must be a non-negative integer")
    return v


def _severity(key: str, v: Any) -> str:
    if not isinstance(v, str) or v not in SEVERITY_ORDER:
        raise ConfigError(f"key '{key}' must be one of {', '.join(SEVERITY_ORDER)}")
    return v


def _entropy(key: str, v: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(v, dict):
        raise ConfigError(f"key '{key}' must be a table of rule id = entropy floor")
    out = []
    for rid, floor in v.items():
        if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor <= 8:
            raise ConfigError(f"key '{key}.{rid}' must be a number between 0 and 8 (bits per character)")
        out.append((rid, float(floor)))
    return tuple(sorted(out))


def _regexes(key: str, v: Any) -> tuple[str, ...]:
    from veritensor_fast.rules.safe_regex import UnsafePattern, check_pattern

    pats = _str_list(key, v)
    for p in pats:
        try:
            re.compile(p)
        except re.error as exc:
            raise ConfigError(f"key '{key}': {p!r} is not a valid regular expression ({exc})") from None
        try:
            check_pattern(p)
        except UnsafePattern as exc:
            raise ConfigError(f"key '{key}': {exc}") from None
    return pats


def _path(key: str, v: Any, base: Path) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"key '{key}' must be a path string")
    return str(base / v)


_PARSERS: dict[str, Callable[[str, Any, Path], Any]] = {
    "exclude": lambda k, v, b: _str_list(k, v),
    "rules": lambda k, v, b: _str_list(k, v, b),
    "disabled_rules": lambda k, v, b: _str_list(k, v),
    "fail_severity": lambda k, v, b: _severity(k, v),
    "entropy": lambda k, v, b: _entropy(k, v),
    "allow_globals": lambda k, v, b: _str_list(k, v),
    "jobs": lambda k, v, b: _int(k, v),
    "strict_secrets": lambda k, v, b: _bool(k, v),
    "include_outputs": lambda k, v, b: _bool(k, v),
    "follow_symlinks": lambda k, v, b: _bool(k, v),
    "max_file_size": lambda k, v, b: _int(k, v),
    "baseline": _path,
    "inline_ignores": lambda k, v, b: _bool(k, v),
    "ignore_model_findings_inline": lambda k, v, b: _bool(k, v),
    "allow_secrets": lambda k, v, b: _regexes(k, v),
    "decode_base64": lambda k, v, b: _bool(k, v),
    "base64_depth": lambda k, v, b: _int(k, v),
    "python_ast": lambda k, v, b: _bool(k, v),
}
KNOWN_KEYS = tuple(_PARSERS)
assert set(KNOWN_KEYS) == {f.name for f in fields(Config)} - {"source"}


def parse_table(table: dict[str, Any], base: Path, source: str) -> Config:
    """Validate one settings table into a ``Config``; ``base`` resolves relative paths."""
    values: dict[str, Any] = {}
    for raw_key, v in table.items():
        key = raw_key.replace("-", "_")
        parser = _PARSERS.get(key)
        if parser is None:
            hint = " (show_secrets can only be given on the command line)" if key == "show_secrets" else ""
            raise ConfigError(f"{source}: unknown key '{raw_key}'{hint}; known keys: {', '.join(KNOWN_KEYS)}")
        if key in values:
            raise ConfigError(f"{source}: key '{raw_key}' is given twice")
        try:
            values[key] = parser(raw_key, v, base)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return Config(**values, source=source)


def _read_toml(path: Path) -> dict[str, Any]:
    from veritensor_fast.safeio import MAX_CONFIG_BYTES, SmallFileError, read_regular_file

    try:
        raw = read_regular_file(path, "config file", MAX_CONFIG_BYTES)
    except SmallFileError as exc:
        raise ConfigError(str(exc)) from None
    if sys.version_info >= (3, 11):  # imported here: a scan with no config file never needs it (start-up cost)
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _mentions_us(path: Path) -> bool:
    """Whether the file's bytes mention our table (so a TOML error in it concerns our settings)."""
    from veritensor_fast.safeio import SmallFileError, read_regular_file

    try:  # searched, not parsed: a file too large to parse that names our table is an error, not skipped
        data = read_regular_file(path, "config file")
        return TABLE.encode() in data or TABLE_ALIAS.encode() in data
    except SmallFileError:
        return False


def _table(doc: dict[str, Any], path: Path, dedicated: bool) -> dict[str, Any] | None:
    tool = doc.get("tool")
    section = tool.get(TABLE) if isinstance(tool, dict) else None
    if section is None and isinstance(tool, dict):
        section = tool.get(TABLE_ALIAS)  # [tool.veritensor_fast]: the package's import name, accepted too
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.{TABLE}] must be a table")
    if not dedicated:
        return section
    rest = {k: v for k, v in doc.items() if k != "tool" or section is None}
    if section is not None:
        if rest:
            raise ConfigError(f"{path}: unknown key '{next(iter(rest))}' next to [tool.{TABLE}]")
        return section
    return rest


def load_file(path: str | os.PathLike[str]) -> Config:
    """Load an explicit config file: a ``pyproject.toml`` (its ``[tool.veritensor-fast]`` table) or a
    dedicated file (top-level keys)."""
    p = Path(path)
    doc = _read_toml(p)
    table = _table(doc, p, dedicated=p.name != PYPROJECT)
    return parse_table(table or {}, p.resolve().parent, str(p))


def discover(dirs: Iterable[str | os.PathLike[str]], notes: list[str] | None = None) -> Path | None:
    """The config file that applies: the first of ``.veritensor-fast.toml`` / ``pyproject.toml`` (with our
    table) found in ``dirs``, in order. A ``pyproject.toml`` that cannot be read or parsed and does not
    mention our table is skipped, with a line added to ``notes``."""
    seen: set[Path] = set()
    for d in dirs:
        dp = Path(d).resolve()
        if dp in seen:
            continue
        seen.add(dp)
        cand = dp / CONFIG_FILE
        if cand.exists() or cand.is_symlink():
            return cand  # not a regular file: load_file says so (exit 2), rather than skipping it silently
        cand = dp / PYPROJECT
        if cand.exists():
            try:
                tool = _read_toml(cand).get("tool")
            except ConfigError as exc:
                if _mentions_us(cand):
                    raise
                if notes is not None:
                    notes.append(f"ignoring {cand}: {exc} (it has no [tool.{TABLE}] table)")
                continue
            if isinstance(tool, dict) and (TABLE in tool or TABLE_ALIAS in tool):
                return cand
    return None


def untrusted_configs(dirs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Config files in scanned directories that are not applied (they belong to the scanned content): a
    ``.veritensor-fast.toml``, or a ``pyproject.toml`` whose bytes mention our table (never parsed)."""
    out: list[Path] = []
    seen: set[Path] = set()
    for d in dirs:
        try:
            dp = Path(d).resolve()
        except OSError:
            continue
        if dp in seen:
            continue
        seen.add(dp)
        cand = dp / CONFIG_FILE
        if cand.exists() or cand.is_symlink():
            out.append(cand)
        elif (dp / PYPROJECT).is_file() and _mentions_us(dp / PYPROJECT):
            out.append(dp / PYPROJECT)
    return out


def load_config(explicit: str | os.PathLike[str] | None, search_dirs: Sequence[str | os.PathLike[str]],
                notes: list[str] | None = None) -> Config:
    """``--config FILE`` if given, else the discovered file, else an empty ``Config``."""
    if explicit is not None:
        return load_file(explicit)
    found = discover(search_dirs, notes)
    return load_file(found) if found is not None else Config()


@dataclass(frozen=True)
class Effective:
    """The settings a scan runs with: config file values overridden (scalars) or extended (lists) by flags."""

    options: ScanOptions
    excludes: tuple[str, ...]
    follow_symlinks: bool
    max_file_size: int
    jobs: int  # 0: all cores
    fail_severity: str
    baseline: str | None
    config: str | None = None  # the config file applied (absolute), None: none


def _pick(cli: Any, cfg: Any, default: Any) -> Any:
    return cli if cli is not None else cfg if cfg is not None else default


def effective(cfg: Config, *, exclude: Sequence[str] = (), rules: Sequence[str] = (),
              disabled_rules: Sequence[str] = (), allow_globals: Sequence[str] = (),
              strict_secrets: bool | None = None, include_outputs: bool | None = None,
              follow_symlinks: bool | None = None, max_file_size: int | None = None, jobs: int | None = None,
              fail_severity: str | None = None, baseline: str | None = None) -> Effective:
    """Merge ``cfg`` with command-line values (``None``/empty = flag not given)."""
    options = ScanOptions(
        strict_secrets=_pick(strict_secrets, cfg.strict_secrets, False),
        include_outputs=_pick(include_outputs, cfg.include_outputs, True),
        rule_files=(*cfg.rules, *rules),
        disabled_rules=tuple(dict.fromkeys((*cfg.disabled_rules, *disabled_rules))),
        entropy_overrides=cfg.entropy,
        allow_globals=tuple(dict.fromkeys((*cfg.allow_globals, *allow_globals))),
        inline_ignores=_pick(None, cfg.inline_ignores, True),
        ignore_model_findings_inline=_pick(None, cfg.ignore_model_findings_inline, False),
        allow_secrets=cfg.allow_secrets,
        decode_base64=_pick(None, cfg.decode_base64, True),
        base64_depth=_pick(None, cfg.base64_depth, 2),
        python_ast=_pick(None, cfg.python_ast, True),
    )
    return Effective(
        options=options,
        excludes=tuple(dict.fromkeys((*cfg.exclude, *exclude))),
        follow_symlinks=_pick(follow_symlinks, cfg.follow_symlinks, False),
        max_file_size=_pick(max_file_size, cfg.max_file_size, 0),
        jobs=_pick(jobs or None, cfg.jobs, 0),
        fail_severity=_pick(fail_severity, cfg.fail_severity, "low"),
        baseline=_pick(baseline, cfg.baseline, None),
        config=os.path.abspath(cfg.source) if cfg.source else None,
    )
