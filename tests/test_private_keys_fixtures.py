"""Real ``ssh-keygen -t dsa`` keys (committed test keys, tests/fixtures/ssh_keys/README.md) that were missed.

Ground truth: each file is one unencrypted OpenSSH-format DSA key, so exactly one ``private-key.pem`` finding,
severity critical. Before ``privkey.own_material`` all of them were missed: an OpenSSH key repeats its public
key (for DSA p, q, g, y: ~45% of the blob) in its private section, and when the two copies sit a multiple of 3
bytes apart deflate sees the copy in the base64, so the body compressed to 0.44 of its size, under the 0.55
floor meant for repeated lines and templates. The negatives below are templates in the same container that
must stay negative.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from veritensor_fast.detectors import privkey
from veritensor_fast.matcher import SecretMatcher
from veritensor_fast.rules import load_rules

from conftest import scan_json

MATCHER = SecretMatcher(load_rules())
KEYS = sorted((Path(__file__).parent / "fixtures" / "ssh_keys").glob("dsa-openssh-missed-*"))


def _rules(text: bytes) -> list[str]:
    return [m.rule.id for m in MATCHER.find(text)]


def _body(key: bytes) -> bytes:
    return b"".join(ln for ln in key.splitlines() if ln and not ln.startswith(b"-----"))


def _blob(key: bytes) -> bytes:
    return base64.b64decode(_body(key))


def _armour(blob: bytes) -> bytes:
    b64 = base64.b64encode(blob)
    lines = b"\n".join(b64[i:i + 70] for i in range(0, len(b64), 70))
    return b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + lines + b"\n-----END OPENSSH PRIVATE KEY-----\n"


def test_fixtures_are_the_keys_the_old_floor_missed() -> None:
    assert len(KEYS) >= 5
    for path in KEYS:
        body = _body(path.read_bytes())
        assert privkey.openssh_cipher(body) == b"none", path.name
        assert len(zlib.compress(body)) < privkey.MIN_COMPRESSED * len(body), path.name  # whole body: 0.44


@pytest.mark.parametrize("path", KEYS, ids=lambda p: p.name)
def test_missed_dsa_key_found_once(path: Path) -> None:
    key = path.read_bytes()
    assert _rules(key) == ["private-key.pem"]
    assert _rules(json.dumps({"private_key": key.decode()}).encode()) == ["private-key.pem"]
    assert _rules(b"\n".join(key.splitlines()[:10]) + b"\n") == ["private-key.pem"]  # cut off in a log


def test_cli_reports_each_missed_key_critical(tmp_path: Path) -> None:
    for path in KEYS:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    code, rep = scan_json(tmp_path)
    assert code == 1
    got = sorted((f["path"], f["rule_id"], f["severity"]) for f in rep["findings"])
    assert got == [(p.name, "private-key.pem", "critical") for p in KEYS]


def test_templates_in_the_openssh_container_stay_negative() -> None:
    blob = _blob(KEYS[0].read_bytes())
    pos = len(b"openssh-key-v1\x00")
    for _ in range(3):
        pos += 4 + struct.unpack_from(">I", blob, pos)[0]
    pub_end = pos + 4 + 4 + struct.unpack_from(">I", blob, pos + 4)[0]
    filler = b"\x00\x00\x00\x81\x00" + b"0123456789abcdef" * 24
    # A real public section and a repeated private section: the public key alone is not a private key.
    fake = blob[:pub_end] + struct.pack(">I", len(filler)) + filler
    assert _rules(_armour(fake)) == []
    # The real header followed by the same base64 line again and again.
    line = base64.b64encode(blob[:48])
    assert _rules(b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + (line + b"\n") * 12
                  + b"-----END OPENSSH PRIVATE KEY-----\n") == []


def test_own_material_drops_only_the_public_section() -> None:
    blob = _blob(KEYS[0].read_bytes())
    own = base64.b64decode(privkey.own_material(base64.b64encode(blob)))
    assert len(blob) - len(own) == 4 + 435  # the public-key string of this key, nothing else
    assert blob.endswith(own[-400:])
    pem = b"MIIBuwIBAAKBgQ" + base64.b64encode(blob)[16:]  # not openssh-key-v1: unchanged
    assert privkey.own_material(pem) == pem
    assert privkey.own_material(base64.b64encode(blob[:60])) == base64.b64encode(blob[:60])  # cut: unchanged
