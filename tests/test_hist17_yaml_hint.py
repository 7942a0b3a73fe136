"""Issue 16, history (hist17): a YAML file is searched for a Secret manifest or a Docker config with ``find`` of
the words every such match holds before the regex (``encoded.yaml_hinted``). In a history of Helm/Kubernetes
configs the regex alone cost 59 us a 7.5 KB file. Same answer as the regex, checked on random texts built from
its pieces; the regex is not run on a file that holds none of the words."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veritensor_fast.detectors import encoded
from veritensor_fast.findings import Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token

_PIECES = st.sampled_from(["kind:", "kind: ", " ", "\t", "\n", '"', "'", "Secret", "Secrets", "secret", "SecretX",
                           "dockerconfigjson", "dockercfg", "docker", "cfg", "configjson", "x", "Kind:", ":"])


@given(st.lists(_PIECES, max_size=12))
def test_same_answer_as_the_regex(parts: list[str]) -> None:
    data = "".join(parts).encode()
    want = encoded._YAML_HINT.search(data) is not None
    assert encoded.yaml_hinted(data) == want
    assert encoded.yaml_hinted(bytearray(data)) == want
    assert encoded.yaml_hinted(memoryview(data)) == want  # no ``find``: the regex decides


def test_regex_runs_only_where_a_word_is(monkeypatch: pytest.MonkeyPatch) -> None:
    tok = hf_token()
    calls: list[int] = []
    real = encoded._YAML_HINT

    class Counting:
        def search(self, buf: Any) -> Any:
            calls.append(len(buf))
            return real.search(buf)

    monkeypatch.setattr(encoded, "_YAML_HINT", Counting())
    ctx = WorkerContext(ScanOptions())
    plain = b"replicas: 3\nimage: nginx\n" * 300
    manifest = (b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: "
                + base64.b64encode(tok.encode()) + b"\n")
    found = {}
    for name, data in (("values.yaml", plain), ("secret.yaml", manifest)):
        item = Item("file", name, name, len(data))
        sc = ItemScan(ctx, item)
        found[name] = ctx.scan_item(data, item, sc)
    assert calls == [len(manifest)]
    assert found["values.yaml"] == [] and [f.secret for f in found["secret.yaml"]] == [tok]
