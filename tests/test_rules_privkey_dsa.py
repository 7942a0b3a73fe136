"""An OpenSSH DSA key whose two copies of the public key line up in base64 deflates to ~0.44 of its size, and the
repeated-template check (0.55) refused it: ``tests/test_private_keys.py`` failed on about one run in six. Keys
are made with ``ssh-keygen`` until one has that alignment (about one in six), then must be found."""

from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from veritensor_fast.matcher import SecretMatcher
from veritensor_fast.rules import load_rules

MATCHER = SecretMatcher(load_rules())


def _body(pem: bytes) -> bytes:
    return b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_openssh_dsa_key_with_aligned_public_key_copies_is_found(tmp_path: Path) -> None:
    for i in range(80):
        key = tmp_path / f"id_dsa_{i}"
        r = subprocess.run(["ssh-keygen", "-q", "-t", "dsa", "-N", "", "-C", "", "-f", str(key)],
                           capture_output=True)
        if r.returncode != 0:
            pytest.skip("this ssh-keygen makes no DSA keys")
        pem = key.read_bytes()
        body = _body(pem)
        if len(zlib.compress(body)) < 0.55 * len(body):
            break
    else:  # pragma: no cover - probability ~(5/6)**80
        pytest.skip("no aligned key in 80 tries")
    assert [m.rule.id for m in MATCHER.find(pem)] == ["private-key.pem"]
    # a repeated template with the real OpenSSH magic is still refused
    fake = b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + (body[:70] + b"\n") * 20 + b"-----END OPENSSH PRIVATE KEY-----\n"
    assert MATCHER.find(fake) == []
