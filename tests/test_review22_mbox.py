"""review22: a real mailbox is quoted-printable throughout; its decoding budget grows with its size.

enc22 bounded the escaped pass at 4 MiB of decoded runs per file (then a ``limit`` error, exit 3). A mailbox
written by Python's own ``mailbox``/``email`` packages (UTF-8 text, quoted-printable bodies: a soft line break every
76 columns) spends about two bytes of decoded lines per byte, so every real mailbox over ~2 MB was "incomplete",
and a token cut by a soft break in a later message was not found (260b088: exit 3, no finding; 75722a6 skipped
the rest silently after 4,096 runs). The bounds now grow with the file (linear cost); a file denser than any
producer writes still stops at them (``test_enc22_limits``).
"""

from __future__ import annotations

import email.charset
import mailbox
import random
from email.mime.text import MIMEText
from pathlib import Path

from veritensor_fast.detectors import escaped

from conftest import hf_token, scan_json

#: The scanner runs under an address-space cap (these inputs test its bounds)
CAP = 2_000_000_000

WORDS = ("der die das Stra\u00dfe \u00fcber \u00c4rger \u00e9t\u00e9 caf\u00e9 na\u00efve r\u00e9sum\u00e9 the quick brown "
         "fox jumps over the lazy dog configuration server deployment").split()


def test_a_large_real_mailbox_is_decoded_to_its_end(tmp_path: Path) -> None:
    rng = random.Random(22)
    t = hf_token(rng)
    cs = email.charset.Charset("utf-8")
    cs.body_encoding = email.charset.QP
    box = mailbox.mbox(str(tmp_path / "list.mbox"))
    for i in range(800):
        text = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(100)) for _ in range(5))
        if i == 799:
            text += f"\n\nThe deploy key for the caf\u00e9 team is now: {t} thanks.\n"
        m = MIMEText(text, _charset=cs)
        m["Subject"], m["From"] = f"Re: Frage {i}", "a@example.org"
        box.add(m)
    box.close()
    raw = (tmp_path / "list.mbox").read_bytes()
    assert t.encode() not in raw and len(raw) > escaped.MAX_RUN_BYTES // 2  # ~2 bytes decoded per byte
    code, rep = scan_json(tmp_path / "list.mbox", cap=CAP)
    assert rep["errors"] == []
    assert [(f["rule_id"], f.get("decoded")) for f in rep["findings"]] == [
        ("huggingface.user-token", "quoted-printable")]
    assert code == 1
