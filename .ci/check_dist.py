"""Check a built wheel (and sdist) hold what an installed veritensor-fast needs: ``python .ci/check_dist.py DIST_DIR``.

A wheel that lacks the rules YAML, the report schema, the kernels package or ``py.typed`` installs fine and
then fails at run time (or silently loses typing), so ``.ci/run`` checks the real artefacts after
``python -m build``. Exit 0 when both are complete; else one line per missing piece and exit 1.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def required_wheel_files(root: Path = ROOT) -> list[str]:
    """Every file the installed package needs, from the source tree (new rules files are included)."""
    pkg = root / "veritensor_fast"
    need = ["veritensor_fast/__init__.py", "veritensor_fast/__main__.py", "veritensor_fast/cli.py",
            "veritensor_fast/py.typed", "veritensor_fast/report/findings.schema.json"]
    need += [f"veritensor_fast/rules/{p.name}" for p in sorted((pkg / "rules").glob("*.yaml"))]
    need += [f"veritensor_fast/kernels/{p.name}" for p in sorted((root / "kernels").glob("*.py"))]
    for sub in sorted(p for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        need += [f"veritensor_fast/{sub.name}/{p.name}" for p in sorted(sub.glob("*.py"))]
    return sorted(set(need))


def check_wheel(names: list[str], metadata: str, entry_points: str, root: Path = ROOT) -> list[str]:
    """Problems with a wheel, given its member names, METADATA and entry_points.txt."""
    have = set(names)
    problems = [f"wheel lacks {n}" for n in required_wheel_files(root) if n not in have]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in have):
        problems.append("wheel lacks the LICENSE file")
    if "License-Expression: Apache-2.0" not in metadata:
        problems.append("wheel METADATA lacks License-Expression: Apache-2.0")
    if "veritensor-fast = veritensor_fast.cli:main" not in entry_points:
        problems.append("wheel lacks the veritensor-fast console script")
    return problems


def check_sdist(names: list[str], readme: str = "") -> list[str]:
    """Problems with an sdist, given its member names (relative to its top directory) and its README text:
    every ``docs/`` page the README links must travel with it."""
    need = ["LICENSE", "README.md", "pyproject.toml", "kernels/hsdb.py", "veritensor_fast/py.typed",
            "veritensor_fast/report/findings.schema.json"]
    need += sorted(set(re.findall(r"\]\((docs/[\w./-]+?\.md)", readme)))
    return [f"sdist lacks {n}" for n in need if n not in set(names)]


def check_dist(dist: Path) -> list[str]:
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {dist}, found {len(wheels)} and {len(sdists)}"]
    with zipfile.ZipFile(wheels[0]) as z:
        names = z.namelist()
        info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        problems = check_wheel(names, z.read(f"{info}/METADATA").decode(), z.read(f"{info}/entry_points.txt").decode())
    with tarfile.open(sdists[0]) as t:
        members = {m.name.split("/", 1)[1]: m for m in t.getmembers() if "/" in m.name}
        f = t.extractfile(members["README.md"]) if "README.md" in members else None
        problems += check_sdist(list(members), f.read().decode("utf-8") if f else "")
    return problems


if __name__ == "__main__":
    found = check_dist(Path(sys.argv[1]))
    for p in found:
        print(f"check_dist: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)
