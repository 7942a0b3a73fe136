"""Print the declared minimum version of every runtime dependency that applies to this Python, as pins.

``.ci/run`` installs these into a throwaway virtualenv (a lowest-versions install) and runs the tests there,
so a floor in ``pyproject.toml`` is one that was actually tested. ``name>=X`` becomes ``name>=X,<=X.post999999``:
the floor release or one of its post-releases (e.g. ``ijson 3.2.0.post0``), never a later release.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def lowest_pins(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins: list[str] = []
    for dep in deps:
        req = Requirement(dep)
        if req.marker is not None and not req.marker.evaluate():
            continue
        floors = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        if len(floors) != 1:
            raise SystemExit(f"{dep!r}: expected exactly one lower bound")
        pins.append(f"{req.name}>={floors[0]},<={floors[0]}.post999999")
    return pins


if __name__ == "__main__":
    print("\n".join(lowest_pins(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
