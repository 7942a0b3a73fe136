"""Rules as data: load the packaged YAML rule files (plus user files) into typed, frozen ``Rule`` objects.

Each rule's ``pattern`` compiles in both Hyperscan (candidate search, end offsets only) and Python ``re``
(confirmation in a bounded window, exact span of the ``secret`` group). Boundaries are added on the Python side
only, because Hyperscan has no look-around.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

SEVERITIES = ("info", "low", "medium", "high", "critical")
_KNOWN_KEYS = {
    "id", "name", "severity", "pattern", "min_entropy", "left", "right", "right_chars", "keywords",
    "strict_only", "references", "examples", "negative_examples", "description",
}
#: Longest parameter list of a terminal colour sequence (``ESC [ 38;2;255;255;255 m``) taken as a left boundary.
ANSI_PARAMS = 16
#: Left boundary: not preceded by a word character, unless that character ends a backslash escape such as
#: ``\n`` or ``\u0022`` (tokens inside JSON/Python string literals), a percent escape such as ``%2F`` or
#: ``%3D`` (tokens inside URL-encoded query strings and redirect URLs) or a terminal colour sequence
#: (``ESC[1m``, ``\u001b[32m``, ``\033[0;31m``: coloured logs and captured terminal output). Python's look-behind
#: is fixed-width, so the colour sequence is one look-behind per parameter length; the one-character class first
#: keeps the common case (a word character that ends no escape) to one test.
_LEFT_WORD = (r"(?:(?<![A-Za-z0-9_])|(?<=[nrtm0-9a-fA-F])(?:(?<=\\[nrt])|(?<=\\u[0-9a-fA-F]{4})|(?<=%[0-9a-fA-F]{2})"
              + "|(?<=m)(?:" + "|".join(rf"(?<=\[[0-9;]{{{k}}}m)" for k in range(ANSI_PARAMS + 1)) + ")))")
_MAX_WINDOW = 4096


class RuleError(Exception):
    """A rules file is malformed or a rule is invalid (the message names the file and rule id)."""


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    pattern: str
    min_entropy: float | None = None
    left: str = "word"
    right: str = "word"
    right_chars: str = "A-Za-z0-9_"
    keywords: tuple[str, ...] = ()
    strict_only: bool = False
    references: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    negative_examples: tuple[str, ...] = ()
    description: str = ""
    source: str = field(default="", compare=False)
    #: "re": confirmed by Python ``re`` (the vetted built-in rules); "re2": by RE2, linear time (user rules)
    engine: str = "re"

    @property
    def hs_pattern(self) -> bytes:
        return self.pattern.encode()

    def confirm_regex(self) -> Any:
        """The confirmation regex: ``finditer(buf, lo, hi)`` yields matches with ``span``/``start``/``group``
        by name, like ``re.Pattern``; user rules get the linear-time RE2 one (see ``safe_regex``)."""
        if self.engine == "re2":
            from veritensor_fast.rules.safe_regex import BoundedConfirm

            return BoundedConfirm(self.pattern, self.left == "word",
                                  self.right_chars if self.right == "word" else None)
        left = _LEFT_WORD if self.left == "word" else ""
        right = f"(?![{self.right_chars}])" if self.right == "word" else ""
        body, flags = self.pattern, 0
        if body.startswith("(?i)"):  # Python wants global flags first; apply them to the whole expression
            body, flags = body[4:], re.IGNORECASE
        return re.compile((left + "(?:" + body + ")" + right).encode(), flags)

    def max_width(self) -> int:
        """Longest match the pattern can produce, capped (unbounded repeats) at the confirmation window."""
        hi = _sre_parse().parse(self.pattern).getwidth()[1]
        return min(int(hi), _MAX_WINDOW)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str  # hash of every rule's matching fields: changes whenever results could change

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def _str_tuple(doc: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = doc.get(key, ())
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise RuleError(f"{where}: {key!r} must be a list of strings, not {v!r}")
    return tuple(v)


def _check_user_pattern(pattern: str, where: str) -> None:
    """A pattern from a user's rules file must be safe in every engine: compile in RE2 (linear time: no
    back-references, no look-around), compile in Hyperscan, and never match the empty string."""
    from veritensor_fast.kernels.hsdb import DatabaseError, compile_patterns
    from veritensor_fast.rules.safe_regex import UnsafePattern, check_pattern

    try:
        check_pattern(pattern)
    except UnsafePattern as exc:
        raise RuleError(f"{where}: pattern {exc}") from None
    try:
        min_width = _sre_parse().parse(pattern).getwidth()[0]
    except Exception:  # already compiled by re above; be defensive about parser internals
        min_width = 1
    if min_width == 0:
        raise RuleError(f"{where}: pattern can match the empty string")
    try:
        compile_patterns([pattern.encode()])
    except DatabaseError as exc:
        raise RuleError(f"{where}: pattern does not compile in Hyperscan: {exc}") from None


def _sre_parse() -> Any:
    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse
    return sre_parse


def _rule_from(doc: Any, source: str, user: bool = False) -> Rule:
    if not isinstance(doc, dict):
        raise RuleError(f"{source}: every entry of 'rules' must be a mapping, not {type(doc).__name__}")
    unknown = set(doc) - _KNOWN_KEYS
    rid = doc.get("id", "<no id>")
    where = f"{source}: rule {rid}"
    if unknown:
        raise RuleError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    for key in ("id", "name", "severity", "pattern"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise RuleError(f"{where}: missing or empty {key!r}")
    if doc["severity"] not in SEVERITIES:
        raise RuleError(f"{where}: severity must be one of {SEVERITIES}")
    try:
        re.compile(doc["pattern"].encode())
    except re.error as exc:
        raise RuleError(f"{where}: pattern does not compile in Python re: {exc}") from None
    if user:
        _check_user_pattern(doc["pattern"], where)
    ent = doc.get("min_entropy")
    if ent is not None and (isinstance(ent, bool) or not isinstance(ent, int | float) or not 0 <= ent <= 8):
        raise RuleError(f"{where}: min_entropy must be a number between 0 and 8 (bits per character), not {ent!r}")
    for key in ("left", "right"):
        if doc.get(key, "word") not in ("word", "none"):
            raise RuleError(f"{where}: {key!r} must be 'word' or 'none', not {doc[key]!r}")
    chars = doc.get("right_chars", "A-Za-z0-9_")
    if not isinstance(chars, str) or not chars or "]" in chars:
        raise RuleError(f"{where}: 'right_chars' must be a character-class body such as 'A-Za-z0-9_'")
    try:
        re.compile(f"[{chars}]")
    except re.error as exc:
        raise RuleError(f"{where}: 'right_chars' is not a valid character class: {exc}") from None
    if not isinstance(doc.get("strict_only", False), bool):
        raise RuleError(f"{where}: 'strict_only' must be true or false")
    if not isinstance(doc.get("description", ""), str):
        raise RuleError(f"{where}: 'description' must be a string")
    return Rule(
        id=doc["id"], name=doc["name"], severity=doc["severity"], pattern=doc["pattern"],
        min_entropy=float(ent) if ent is not None else None,
        left=str(doc.get("left", "word")), right=str(doc.get("right", "word")), right_chars=chars,
        keywords=_str_tuple(doc, "keywords", where), strict_only=bool(doc.get("strict_only", False)),
        references=_str_tuple(doc, "references", where), examples=_str_tuple(doc, "examples", where),
        negative_examples=_str_tuple(doc, "negative_examples", where),
        description=str(doc.get("description", "")), source=source, engine="re2" if user else "re",
    )


def _parse_file(text: str, source: str, user: bool = False) -> list[Rule]:
    import yaml  # imported here: a scan whose built-in rules come from the cache never needs it (start-up cost)

    # libyaml's safe loader parses the packaged rules ~5x faster than the pure-Python one (start-up cost)
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # a safe loader (the C one when available)
    except (yaml.YAMLError, RecursionError) as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError(f"{source}: expected a mapping with a 'rules' list")
    return [_rule_from(d, source, user) for d in data["rules"]]


def builtin_rule_texts() -> list[tuple[str, str]]:
    """``(file name, text)`` of each packaged ``*.yaml`` rule file, sorted. Read from the package directory
    when there is one: ``importlib.resources`` (only for a zip import) costs ~10 ms of start-up to import."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        names = [n for n in os.listdir(here) if n.endswith(".yaml")]
    except OSError:  # pragma: no cover - a zip import
        from importlib import resources

        pkg = resources.files(__name__)
        return sorted((p.name, p.read_text(encoding="utf-8")) for p in pkg.iterdir() if p.name.endswith(".yaml"))
    out = []
    for n in names:
        with open(os.path.join(here, n), encoding="utf-8") as f:
            out.append((n, f.read()))
    return sorted(out)


#: Fields of ``Rule`` a cached built-in rule is rebuilt from; tuples are stored as JSON lists.
_FIELDS = tuple(f.name for f in fields(Rule))
#: The JSON type each field must have in the cache: lists (tuples of strings), floats, booleans, else strings.
_KINDS = {"min_entropy": "float", "strict_only": "bool", "keywords": "list", "references": "list",
          "examples": "list", "negative_examples": "list"}


def _typed(kind: str, v: Any) -> bool:
    if kind == "list":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "float":
        return v is None or (isinstance(v, float) and not isinstance(v, bool))
    if kind == "bool":
        return isinstance(v, bool)
    return isinstance(v, str)


def builtin_rules() -> list[Rule]:
    """The packaged rules, parsed and validated. Parsing YAML and validating every pattern costs ~30 ms of
    start-up per process, so the result is cached on disk as JSON (never pickle: the cache is data, it is not
    run), keyed by a hash of the rule files and of this module's source (any change to either misses). A cache
    file that is missing, unreadable or malformed is ignored and rewritten."""
    texts = builtin_rule_texts()
    path = rules_cache_path(texts)
    from veritensor_fast.kernels.diskcache import cache_load, cache_store

    raw = cache_load(path)  # None: missing, or not trusted (another user could have written it)
    try:
        cached = _rules_from_json(raw) if raw is not None else None
    except Exception:  # missing, unreadable or not what this code writes: parse the YAML afresh
        cached = None
    if cached is not None:
        return cached
    rules = [r for name, text in texts for r in _parse_file(text, f"builtin:{name}")]
    cache_store(path, orjson.dumps([[getattr(r, k) for k in _FIELDS] for r in rules]))
    return rules


def rules_cache_path(texts: list[tuple[str, str]]) -> Path | None:
    """Where :func:`builtin_rules` caches the rules parsed from ``texts`` (``builtin_rule_texts``; None: no cache
    directory)."""
    h = hashlib.sha256(b"veritensor-fast-builtin-rules-v1\x00")
    h.update(Path(__file__).read_bytes())
    for name, text in texts:
        h.update(b"\x00" + name.encode() + b"\x00" + text.encode())
    from veritensor_fast.kernels.diskcache import cache_file

    return cache_file(f"rules-{h.hexdigest()[:32]}.json")


def _rules_from_json(raw: bytes) -> list[Rule] | None:
    """Rules written by :func:`builtin_rules`, or None when ``raw`` does not hold exactly that shape."""
    data = orjson.loads(raw)
    if not isinstance(data, list) or not data:
        return None
    out: list[Rule] = []
    for row in data:
        if not isinstance(row, list) or len(row) != len(_FIELDS) \
                or not all(_typed(_KINDS.get(k, "str"), v) for k, v in zip(_FIELDS, row, strict=True)):
            return None
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in zip(_FIELDS, row, strict=True)}
        out.append(Rule(**kw))
    return out


def load_rules(
    extra_files: Sequence[str | Path] = (),
    disabled: Iterable[str] = (),
    entropy_overrides: dict[str, float] | None = None,
) -> RuleSet:
    """Load the built-in rules plus ``extra_files``; drop ``disabled`` ids; apply entropy floor overrides."""
    rules: list[Rule] = builtin_rules()
    for path in extra_files:
        from veritensor_fast.safeio import MAX_RULES_BYTES, SmallFileError, read_regular_file

        try:
            raw = read_regular_file(path, "rules file", MAX_RULES_BYTES)
        except SmallFileError as exc:
            raise RuleError(str(exc)) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleError(f"{path}: rules file is not UTF-8 (byte {exc.start})") from None
        rules.extend(_parse_file(text, str(path), user=True))
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RuleError(f"{r.source}: duplicate rule id {r.id}")
        seen.add(r.id)
    drop = set(disabled)
    unknown = drop - seen
    if unknown:
        from veritensor_fast.models.rule_ids import MODEL_RULES  # dropped where model findings are made

        unknown -= set(MODEL_RULES)
    if unknown:
        raise RuleError(f"cannot disable unknown rule ids: {sorted(unknown)}")
    rules = [r for r in rules if r.id not in drop]
    if entropy_overrides:
        from dataclasses import replace

        bad = set(entropy_overrides) - seen
        if bad:
            raise RuleError(f"entropy override for unknown rule ids: {sorted(bad)}")
        rules = [replace(r, min_entropy=entropy_overrides[r.id]) if r.id in entropy_overrides else r for r in rules]
    h = hashlib.sha256(b"veritensor-fast-rules-v2")  # v2: colour sequences end a left boundary
    for r in rules:
        h.update(repr((r.id, r.pattern, r.min_entropy, r.left, r.right, r.right_chars, r.strict_only,
                       r.engine)).encode())
    return RuleSet(rules=tuple(rules), version=h.hexdigest()[:16])
