"""The one seam between a finished scan and anything that shows it: redaction and control-character escaping.

- ``redact_result(result, show_secrets)`` returns a copy of a ``ScanResult`` in which every occurrence of every
  secret the scan found is replaced by its redacted preview in every field that can show text: paths,
  messages, location keys and values, decoding chains, commit provenance, error paths and reasons, stats.
  A secret hides in those places when a scanned tree puts it in a file name, an archive member name, a
  notebook cell id, a JSON key or a commit message. ``Finding.secret`` itself is kept (reporters write it only
  with ``--show-secrets``); with ``show_secrets`` nothing is replaced. Every reporter runs behind it (see
  ``veritensor_fast.report.get_reporter``); library users call it before printing a result.
- ``escape_text(s)`` makes a string inert on a terminal: C0/C1 controls, DEL, bidirectional overrides and
  other invisible format characters become ``\\xNN`` (C0, DEL) / ``\\uNNNN`` escapes (C1 too: ``\\x80``-``\\xff`` is
  how ``findings.display_path`` shows a name's byte that is not UTF-8), and a run of backslashes right before
  one is doubled (the escape after an odd run is ours, as in a shown path).
- ``escape_json(doc)`` escapes the same characters (beyond what JSON requires) in a serialised JSON document.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from veritensor_fast.findings import Finding, ScanError, redact

#: Characters that change what a terminal shows without being visible themselves: C1 controls and DEL,
#: bidi embeddings/overrides/isolates and marks, zero-width and other format characters, line/paragraph
#: separators, interlinear annotation controls and Unicode tag characters: every character of the categories
#: Cc, Cf, Zl and Zp (Unicode 15.1; ``tests/test_trust24_terminal.py`` checks the running Python's database).
_INVISIBLE = ("\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e"
              "\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
              "\U0001d173-\U0001d17a\U000e0000-\U000e007f")
#: Such a character and the run of backslashes before it (doubled when the character is escaped: ``a\\`` + ESC
#: must not read like the text ``a\\x1b``, which ``findings.display_path`` shows ``a\\\\x1b``).
_TEXT_UNSAFE = re.compile(f"(\\\\*)([\x00-\x1f{_INVISIBLE}])")
_JSON_UNSAFE = re.compile(f"[{_INVISIBLE}]")  # JSON encoders already escape \x00-\x1f


def _escape_char(m: re.Match[str]) -> str:
    run, c = m.group(1), ord(m.group(2))
    if c < 0x80:  # C0 and DEL; a C1 control is ``\\u0085``: ``\\x85`` is what a shown path writes for a byte
        return f"{run}{run}\\x{c:02x}"
    return f"{run}{run}\\u{c:04x}" if c < 0x10000 else f"{run}{run}\\U{c:08x}"


def escape_text(s: object) -> str:
    """``s`` as a string that cannot move the cursor, erase, recolour or reorder what a terminal shows."""
    t = s if isinstance(s, str) else str(s)
    return _TEXT_UNSAFE.sub(_escape_char, t)


def _json_u(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}"


def escape_json(doc: str) -> str:
    """A serialised JSON document with invisible/control characters written as ``\\u`` escapes (still the
    same JSON value: such characters can only occur inside strings)."""
    return _JSON_UNSAFE.sub(_json_u, doc)


class Redactor:
    """Replaces every occurrence of a set of secrets in strings (longest first) with their previews."""

    #: Shorter "secrets" (a custom rule's) would redact ordinary words all over a report.
    MIN_LEN = 6

    def __init__(self, secrets: Iterable[str]) -> None:
        k = self.MIN_LEN
        self._preview: dict[str, str] = {}
        #: secrets by their first ``MIN_LEN`` characters, longest first: a linear pass over each string finds
        #: every occurrence (a regex alternation of thousands of secrets is far slower)
        self._by_head: dict[str, list[str]] = {}
        for s in {s for s in secrets if s and len(s) >= k}:
            self._preview[s] = redact(s)
            self._by_head.setdefault(s[:k], []).append(s)
        for bucket in self._by_head.values():
            if len(bucket) > 1:
                bucket.sort(key=lambda s: (-len(s), s))  # the longest secret at a position wins
        #: when secrets share few 3-character prefixes (``hf_``, ``sk-``, ``ghp``…), a few C-speed substring
        #: tests rule out nearly every field before the per-position check
        pre = {h[:3] for h in self._by_head}
        self._prefixes = tuple(pre) if len(pre) <= 32 else None
        self._memo: dict[str, str] = {}  # messages and location values repeat across findings

    def __bool__(self) -> bool:
        return bool(self._by_head)

    def text(self, s: str) -> str:
        k, heads = self.MIN_LEN, self._by_head
        if not heads or len(s) < k:
            return s
        if self._prefixes is not None and not any(p in s for p in self._prefixes):
            return s
        done = self._memo.get(s)
        if done is not None:
            return done
        cand = [i for i in range(len(s) - k + 1) if s[i:i + k] in heads]
        done = self._replace(s, cand[0]) if cand else s
        if len(self._memo) < 100_000:
            self._memo[s] = done
        return done

    def _replace(self, s: str, i: int) -> str:
        k, heads = self.MIN_LEN, self._by_head
        out: list[str] = []
        last = 0
        stop = len(s) - k
        while i <= stop:
            cands = heads.get(s[i:i + k])
            if cands is not None:
                hit = next((c for c in cands if s.startswith(c, i)), None)
                if hit is not None:
                    out += (s[last:i], self._preview[hit])
                    i = last = i + len(hit)
                    continue
            i += 1
        if not out:
            return s
        out.append(s[last:])
        return "".join(out)

    def value(self, v: Any) -> Any:
        """``v`` with every string inside (dict keys included) redacted; other values unchanged."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {self.value(k): self.value(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v)(self.value(x) for x in v)
        return v

    def finding(self, f: Finding) -> Finding:
        new = {
            "path": self.text(f.path), "message": self.text(f.message), "redacted": self.text(f.redacted),
            "location": self.value(f.location), "decoded": self.value(f.decoded), "commit": self.value(f.commit),
        }
        changed = {k: v for k, v in new.items() if v != getattr(f, k)}
        return dataclasses.replace(f, **changed) if changed else f

    def error(self, e: ScanError) -> ScanError:
        path, reason = self.text(e.path), self.text(e.reason)
        return e if (path, reason) == (e.path, e.reason) else dataclasses.replace(e, path=path, reason=reason)


def redact_result(result: Any, show_secrets: bool = False) -> Any:
    """A copy of ``result`` (a ``ScanResult``) safe to show: see the module docstring. Same type as given."""
    if show_secrets:
        return result
    r = Redactor(f.secret for f in result.findings if f.secret)
    if not r:
        return result
    return type(result)([r.finding(f) for f in result.findings], [r.error(e) for e in result.errors],
                        r.value(result.stats))
