"""model24: a stream with a ``builtins.getattr`` global stays on the walker's fast branch.

pdtz20 judged ``getattr`` by what it is applied to, counting every time a getattr value is put on the stack; to
count each memo GET it sent the rest of such a stream to the generic opcode branch (+44 % instructions for a
checkpoint whose metadata, a zoned ``datetime``, comes before its state dict). The fast branch now counts its own
GETs of a getattr value. Its verdict must be the generic branch's: each stream here is walked over ``bytes`` (the
fast branch) and over a ``PreadView`` of the same file (the generic branch only), and the two results compared
whole (globals used, issues, where it stopped, calls), for the real pdtz20 files and every hand-built stream of
``test_pdtz20_getattr``, each also prefixed with a memoized container so the fast branch runs first.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
import test_pdtz20_getattr as pdtz

from veritensor_fast.buffers import LargeFile
from veritensor_fast.models.pickle_scan import PickleWalker
from veritensor_fast.models.pickle_stream import decode_stream
from veritensor_fast.randread import PreadView

FIX = Path(__file__).parent / "fixtures" / "real_models_pdtz20"


def _norm(res: Any) -> Any:
    uses, issues, pos, ok, straddles, calls = res
    return (sorted((k, sorted(vars(v).items())) for k, v in uses.items()),
            [(i.rule_id, i.severity, i.message, i.evidence, i.location, i.error) for i in issues],
            pos, ok, list(straddles), calls)


def _both(data: bytes, tmp: Path) -> tuple[Any, Any]:
    fast = _norm(decode_stream(PickleWalker(), data, 0, len(data), discard=False, where="w"))
    p = tmp / "s.bin"
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    big = LargeFile(fd, os.fstat(fd))
    try:
        generic = _norm(decode_stream(PickleWalker(), PreadView(big), 0, len(data), discard=False, where="w"))
    finally:
        big.close()
    return fast, generic


def _streams() -> list[bytes]:
    out = []
    for name in pdtz.REAL:
        raw = (FIX / name).read_bytes()
        if raw[:2] == b"PK":
            with zipfile.ZipFile(FIX / name) as z:
                raw = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        out.append(raw)
    bodies = [pdtz.ZONE, pdtz.UNPICKLE,
              pdtz.GA + b"q\x00" + pdtz.ZI + b"q\x01" + pdtz.s("_unpickle") + b"\x86R" + pdtz.s("UTC") + b"\x88\x86R"
              + b"h\x00h\x01" + pdtz.s("_unpickle") + b"\x86R" + pdtz.s("Asia/Tokyo") + b"\x88\x86R\x86"]
    bodies += list(_HOSTILE)
    pre = b"}q\x05(K\x01K\x02u"  # a memoized dict filled on the fast branch first
    for body in bodies:
        out += [b"\x80\x02" + body + b".", b"\x80\x02" + pre + b"0" + body + b".",
                b"\x80\x02" + body + b"h\x00" * 3 + b"." if body.startswith(pdtz.GA + b"q\x00") else b"\x80\x02."]
    return out


def _hostile() -> list[bytes]:
    marks = getattr(pdtz.test_every_other_use_of_getattr_stays_critical, "pytestmark", [])
    return [body for m in marks if m.name == "parametrize" for body in m.args[1]]


_HOSTILE = _hostile()


def test_the_hostile_bodies_were_found() -> None:
    assert len(_HOSTILE) >= 20


@pytest.mark.parametrize("i", range(len(_streams())))
def test_fast_and_generic_branches_agree(i: int, tmp_path: Path) -> None:
    fast, generic = _both(_streams()[i], tmp_path)
    assert fast == generic
