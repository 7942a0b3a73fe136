"""Exact example values published by vendors (the Firebase SDK's sample API keys, which gitleaks allowlists) are
not findings; a key that differs from one of them in a single character still is."""

from __future__ import annotations

import pytest

from veritensor_fast.matcher import KNOWN_PUBLIC, SecretMatcher
from veritensor_fast.rules import load_rules


@pytest.fixture(scope="module")
def matcher() -> SecretMatcher:
    return SecretMatcher(load_rules())


@pytest.mark.parametrize("key", sorted(KNOWN_PUBLIC))
def test_published_example_key_is_not_a_finding(matcher: SecretMatcher, key: bytes) -> None:
    assert matcher.find(b'apiKey: "' + key + b'",\n') == []


@pytest.mark.parametrize("key", sorted(KNOWN_PUBLIC)[:5])
def test_a_key_one_character_away_is_still_found(matcher: SecretMatcher, key: bytes) -> None:
    swapped = key[:-3] + (b"Q" if key[-3:-2] != b"Q" else b"R") + key[-2:]
    found = matcher.find(b'apiKey: "' + swapped + b'",\n')
    assert [m.secret for m in found] == [swapped]
