"""Issue 16, history (hist17): provenance reads the whole history's ``git log --raw`` pass but needs the entries of
the few blobs with findings; ``parse_raw_z(tokens, only=...)`` skips the others before decoding anything. It
yields exactly the entries the full parse yields for those blobs (paths with newlines and non-ASCII characters, root
commits, merges, deletions), in the same order."""

from __future__ import annotations

import random
from pathlib import Path

from veritensor_fast import gitcmd
from veritensor_fast.sources.git_objects import nul_tokens, parse_raw_z
from veritensor_fast.sources.git_provenance import LOG_ARGS

from conftest import git_run, init_repo


def _history(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "r")
    rng = random.Random(17)
    names = ["a.txt", "dir/b.py", "new\nline.txt", "caf\xe9.md", "x y.yaml"]
    for i in range(12):
        if i == 5:
            git_run(repo, "checkout", "-q", "-b", "side")
        if i == 8:
            git_run(repo, "checkout", "-q", "main")
        name = rng.choice(names)
        p = repo / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"v{i} {rng.random()}\n")
        git_run(repo, "add", "-A")
        git_run(repo, "commit", "-q", "-m", f"c{i}")
    git_run(repo, "merge", "-q", "--no-edit", "-X", "theirs", "side")
    (repo / "a.txt").unlink()
    git_run(repo, "commit", "-q", "-am", "delete")
    return repo


def test_only_yields_what_the_full_parse_yields_for_those_blobs(tmp_path: Path) -> None:
    repo = _history(tmp_path)
    out = gitcmd.run(str(repo), [*LOG_ARGS, "--all"])
    full = list(parse_raw_z(nul_tokens(_Stream(out))))
    oids = sorted({oid for _h, oid, _p in full})
    assert len(full) >= 12 and any(b"\n" in p for _h, _o, p in full) and any(o == "0" * 40 for o in oids)
    rng = random.Random(3)
    for k in (0, 1, 3, len(oids)):
        want = set(rng.sample(oids, k))
        got = list(parse_raw_z(nul_tokens(_Stream(out)), {o.encode() for o in want}))
        assert got == [e for e in full if e[1] in want]


class _Stream:
    """A file-like ``read`` over bytes, in small chunks (tokens cut across reads)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + min(n, 97)]
        self.pos += len(out)
        return out
