"""review22: enc22's line-continuation decoder looked for ``(\\\\+)\\r?\\n`` from every backslash, so a long run of
backslashes that does not end a line cost its length squared per region (a 1 MB file of such lines around
continuation hits: 2.41 CPU-s on 260b088, 0.33 now; measured, not asserted). The regular expression now starts
at a run's first backslash only; this checks that it still joins exactly what shells and C join, against a
plain reference on generated text (odd runs ending a line join it, even runs are escaped backslashes)."""

from __future__ import annotations

import random

from veritensor_fast.detectors.escaped import decode_continuations


def _reference(region: bytes) -> tuple[bytes, list[int]] | None:
    out, pos, i, joined = bytearray(), [], 0, False
    while i < len(region):
        if region[i] == 0x5C:  # a run of backslashes: is it odd and does it end a line?
            j = i
            while j < len(region) and region[j] == 0x5C:
                j += 1
            nl = j + (region[j:j + 2] == b"\r\n") if region[j:j + 1] != b"\n" else j
            if (j - i) % 2 and region[nl:nl + 1] == b"\n":
                out += region[i:j - 1]
                pos.extend(range(i, j - 1))
                i, joined = nl + 1, True
                continue
            out += region[i:j]
            pos.extend(range(i, j))
            i = j
            continue
        out.append(region[i])
        pos.append(i)
        i += 1
    if not joined:
        return None
    pos.append(len(region))
    return bytes(out), pos


def test_continuations_join_as_before_on_generated_text() -> None:
    rng = random.Random(22)
    for _ in range(3000):
        region = bytes(rng.choice(b"ab\\\\\\\n\r_") for _ in range(rng.randrange(0, 40)))
        assert decode_continuations(region) == _reference(region), region


def test_long_backslash_runs() -> None:
    line = b"x" + b"\\" * 1000 + b"y\\\nz\n"
    assert decode_continuations(line) == (b"x" + b"\\" * 1000 + b"yz\n", [*range(1002), *range(1004, 1007)])
    assert decode_continuations(b"a" + b"\\" * 999 + b"\nb") == (b"a" + b"\\" * 998 + b"b",
                                                                  [*range(999), 1001, 1002])
