"""Regenerate docs/rules.md from the rules data: ``python scripts/gen_rules_doc.py`` (``--check``: exit 1 if
the committed file is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from veritensor_fast.explain import rules_catalogue

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def main(argv: list[str]) -> int:
    text = rules_catalogue()
    if "--check" in argv:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python scripts/gen_rules_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
