"""Rules as data: load the packaged YAML rule files (plus user files) into typed, frozen ``Rule`` objects.

Each rule's ``pattern`` compiles in both Hyperscan (candidate search, end offsets only) and Python ``re``
(confirmation in a bounded window, exact span of the ``secret`` group). Boundaries are added on the Python side
only, because Hyperscan has no look-around.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SEVERITIES = ("info", "low", "medium", "high", "critical")
_KNOWN_KEYS = {
    "id", "name", "severity", "pattern", "min_entropy", "left", "right", "right_chars", "keywords",
    "strict_only", "references", "examples", "negative_examples", "description",
}
#: Left boundary: not preceded by a word character, unless that character ends a backslash escape such as
#: ``\n`` or ``\u0022`` (tokens inside JSON/Python string literals).
_LEFT_WORD = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt])|(?<=\\u[0-9a-fA-F]{4}))"
_MAX_WINDOW = 4096
#: libyaml's safe loader parses the packaged rules ~5x faster than the pure-Python one (start-up cost).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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

    @property
    def hs_pattern(self) -> bytes:
        return self.pattern.encode()

    def confirm_regex(self) -> re.Pattern[bytes]:
        left = _LEFT_WORD if self.left == "word" else ""
        right = f"(?![{self.right_chars}])" if self.right == "word" else ""
        body, flags = self.pattern, 0
        if body.startswith("(?i)"):  # Python wants global flags first; apply them to the whole expression
            body, flags = body[4:], re.IGNORECASE
        return re.compile((left + "(?:" + body + ")" + right).encode(), flags)

    def max_width(self) -> int:
        """Longest match the pattern can produce, capped (unbounded repeats) at the confirmation window."""
        try:
            from re import _parser as sre_parse  # type: ignore[attr-defined]
        except ImportError:  # pragma: no cover - Python 3.10
            import sre_parse
        hi = sre_parse.parse(self.pattern).getwidth()[1]
        return min(int(hi), _MAX_WINDOW)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str  # hash of every rule's matching fields: changes whenever results could change

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def _rule_from(doc: dict[str, Any], source: str) -> Rule:
    unknown = set(doc) - _KNOWN_KEYS
    rid = doc.get("id", "<no id>")
    if unknown:
        raise RuleError(f"{source}: rule {rid}: unknown keys {sorted(unknown)}")
    for key in ("id", "name", "severity", "pattern"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise RuleError(f"{source}: rule {rid}: missing or empty {key!r}")
    if doc["severity"] not in SEVERITIES:
        raise RuleError(f"{source}: rule {rid}: severity must be one of {SEVERITIES}")
    try:
        re.compile(doc["pattern"].encode())
    except re.error as exc:
        raise RuleError(f"{source}: rule {rid}: pattern does not compile in Python re: {exc}") from exc
    return Rule(
        id=doc["id"], name=doc["name"], severity=doc["severity"], pattern=doc["pattern"],
        min_entropy=float(doc["min_entropy"]) if doc.get("min_entropy") is not None else None,
        left=str(doc.get("left", "word")), right=str(doc.get("right", "word")),
        right_chars=str(doc.get("right_chars", "A-Za-z0-9_")),
        keywords=tuple(doc.get("keywords", ())), strict_only=bool(doc.get("strict_only", False)),
        references=tuple(doc.get("references", ())), examples=tuple(doc.get("examples", ())),
        negative_examples=tuple(doc.get("negative_examples", ())),
        description=str(doc.get("description", "")), source=source,
    )


def _parse_file(text: str, source: str) -> list[Rule]:
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (the C one when available)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError(f"{source}: expected a mapping with a 'rules' list")
    return [_rule_from(d, source) for d in data["rules"]]


def builtin_rule_texts() -> list[tuple[str, str]]:
    pkg = resources.files(__name__)
    return sorted((p.name, p.read_text(encoding="utf-8")) for p in pkg.iterdir() if p.name.endswith(".yaml"))


def load_rules(
    extra_files: Sequence[str | Path] = (),
    disabled: Iterable[str] = (),
    entropy_overrides: dict[str, float] | None = None,
) -> RuleSet:
    """Load the built-in rules plus ``extra_files``; drop ``disabled`` ids; apply entropy floor overrides."""
    rules: list[Rule] = []
    for name, text in builtin_rule_texts():
        rules.extend(_parse_file(text, f"builtin:{name}"))
    for path in extra_files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleError(f"{path}: cannot read rules file: {exc.strerror}") from exc
        rules.extend(_parse_file(text, str(path)))
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
    h = hashlib.sha256(b"veritensor-fast-rules-v1")
    for r in rules:
        h.update(repr((r.id, r.pattern, r.min_entropy, r.left, r.right, r.right_chars, r.strict_only)).encode())
    return RuleSet(rules=tuple(rules), version=h.hexdigest()[:16])
