"""``veritensor-fast rules check``: run every rule's examples and negative examples through both engines and
say, for a failure, which example and why (the pattern, the entropy floor or the placeholder filter)."""

from __future__ import annotations

from collections.abc import Iterator

from veritensor_fast.kernels import entropy
from veritensor_fast.matcher import SecretMatcher, is_placeholder, python_only_match
from veritensor_fast.rules import Rule, RuleSet


def _candidates(rule: Rule, text: str) -> list[bytes]:
    out = []
    for m in rule.confirm_regex().finditer(text.encode()):
        sec = m.group("secret") if "secret" in m.re.groupindex and m.group("secret") else m.group(0)
        out.append(bytes(sec))
    return out


def _filter_reason(rule: Rule, sec: bytes) -> str | None:
    shown = sec.decode("utf-8", "replace")
    if rule.min_entropy is not None:
        h = entropy.shannon(sec)
        if h < rule.min_entropy:
            return f"the entropy floor rejects {shown!r} ({h:.2f} < min_entropy {rule.min_entropy})"
    if is_placeholder(sec):
        return f"the placeholder filter rejects {shown!r} (a placeholder word or a sequential run)"
    return None


def why_missed(rule: Rule, text: str, hs_ok: bool) -> str:
    cands = _candidates(rule, text)
    if not cands:
        return "the pattern (Python re, with its boundaries) does not match it"
    reasons = [r for r in (_filter_reason(rule, c) for c in cands) if r]
    if len(reasons) == len(cands):
        return "; ".join(reasons)
    if not hs_ok:
        return "Python re matches it but Hyperscan does not (the pattern means different things in the engines)"
    return "not matched"  # pragma: no cover - both engines agree it matches


def why_matched(rule: Rule, text: str, hs_hit: bool, py_hit: bool) -> str:
    engines = " and ".join(e for e, hit in (("Hyperscan", hs_hit), ("Python re", py_hit)) if hit)
    kept = [c for c in _candidates(rule, text) if _filter_reason(rule, c) is None]
    what = f" as {kept[0].decode('utf-8', 'replace')!r}" if kept else ""
    floor = f" (entropy {entropy.shannon(kept[0]):.2f}, floor {rule.min_entropy})" if kept and rule.min_entropy else ""
    return f"{engines} match{'es' if ' and ' not in engines else ''} it{what}{floor}, and it is not a placeholder"


def check(rs: RuleSet) -> Iterator[str]:
    """One line per failing example."""
    m = SecretMatcher(rs, strict=True)
    for r in rs.rules:
        for i, ex in enumerate(r.examples):
            hs_ok = any(x.rule.id == r.id for x in m.find(ex.encode()))
            if not (hs_ok and python_only_match(r, ex)):
                yield f"FAIL {r.id}: example #{i} {ex!r} is not matched: {why_missed(r, ex, hs_ok)}"
        for i, ex in enumerate(r.negative_examples):
            hs_hit = any(x.rule.id == r.id for x in m.find(ex.encode()))
            py_hit = python_only_match(r, ex)
            if hs_hit or py_hit:
                yield f"FAIL {r.id}: negative example #{i} {ex!r} is matched: {why_matched(r, ex, hs_hit, py_hit)}"
