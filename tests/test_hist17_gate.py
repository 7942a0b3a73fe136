"""Issue 16, history (hist17): the quiet items of a batch of git objects skip the detectors (``batch_gate``).

A quiet item is plain text with no hit of the rules database in one scan over the whole batch (and, for Python,
not admitted by the AST prefilter). The tests check that a quiet item is one the detectors find nothing in
(ground truth: the detectors run over it alone), that a sweep finds the same with and without the gate on every
shape the gate's conditions name, and that the gate turns itself off where its reasoning would not hold."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veritensor_fast import batch_gate
from veritensor_fast.findings import Item
from veritensor_fast.history import scan_history
from veritensor_fast.kernels import BACKEND
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import git_run, hf_token, init_repo, zip_bytes

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the gate needs the Hyperscan database")

_CTX: dict[ScanOptions, WorkerContext] = {}


def _ctx(options: ScanOptions | None = None) -> WorkerContext:
    o = options or ScanOptions()
    if o not in _CTX:
        _CTX[o] = WorkerContext(o)
    return _CTX[o]


def _alone(ctx: WorkerContext, item: Item, buf: bytes) -> tuple[list[Any], list[Any]]:
    """What the detectors find in ``buf`` scanned on its own (the worker's per-item path)."""
    sc = ItemScan(ctx, item)
    found = ctx.scan_item(buf, item, sc)
    return found, sc.errors


def _quiet(ctx: WorkerContext, named: list[tuple[str, bytes]]) -> set[int]:
    items = [Item("blob", f"{i:040x}", p, len(b)) for i, (p, b) in enumerate(named)]
    gate = batch_gate.Gate(ctx)
    assert gate.enabled
    return gate.quiet(items, [(b, lambda: None) for _p, b in named])


def _gzip_b64(text: bytes) -> bytes:
    out = base64.b64encode(gzip.compress(text, mtime=0))
    assert out.startswith(b"H4sI")
    return out


def test_a_hit_at_either_edge_of_a_piece_is_its_own() -> None:
    """Hits at a piece's first or last byte (the concatenation's seams) keep that item out of the quiet set; a
    token cut in two by the seam is in neither piece alone, so both stay quiet (and nothing is found in them)."""
    ctx = _ctx()
    # a fixed token: a random tail starting with a protocol 0/1 pickle opcode (N, J, M...) is not plain (the model
    # detector may read it), so e.txt would be left to the detectors, rightly, in about 9 % of random tokens
    tok = hf_token(random.Random(0)).encode()
    assert tok[20:21] not in b"NJMKILFSVcdlt(]})"
    named = [
        ("a.txt", tok + b" starts this file"),
        ("b.txt", b"this file ends with " + tok),
        ("c.txt", b"nothing to see here\n" * 20),
        ("d.txt", b"first half " + tok[:20]),
        ("e.txt", tok[20:] + b" second half"),
        ("f.txt", base64.b64encode(b"token=" + tok)),  # a base64 needle at offset 0
        ("g.txt", _gzip_b64(b"token = " + tok)),  # the start-anchored compressed-stream needle at offset 0
        ("h.txt", b""),
        ("i.txt", b"x = 1\n" + tok),
    ]
    quiet = _quiet(ctx, named)
    assert quiet == {2, 3, 4, 7}
    for i, (p, b) in enumerate(named):  # ground truth: what the detectors find in each item alone
        found, errors = _alone(ctx, Item("blob", "0" * 40, p, len(b)), b)
        assert bool(found or errors) == (i not in quiet and i != 3 and i != 4), (p, found, errors)


def test_python_admitted_by_the_ast_prefilter_is_not_quiet() -> None:
    """A token built from two literals has no candidate of the rules database, yet the AST pass finds it."""
    ctx = _ctx()
    tok = hf_token()
    src = f'PREFIX = "{tok[:3]}"\nKEY = PREFIX + "{tok[3:]}"\n'.encode()
    named = [("m.py", src), ("m.txt", src), ("q.py", b"def f():\n    return 'plain'\n")]
    quiet = _quiet(ctx, named)
    assert 0 not in quiet and 2 in quiet
    found, _ = _alone(ctx, Item("blob", "0" * 40, "m.py", len(src)), src)
    assert [f.decoded for f in found] == ["python-ast"]
    assert _alone(ctx, Item("blob", "0" * 40, "m.txt", len(src)), src) == ([], [])


def _claimed_shapes(tok: bytes) -> list[tuple[str, bytes]]:
    """Items a detector claims by name or by content (most of them hold ``tok``)."""
    cell = {"cell_type": "code", "metadata": {}, "source": ["k = 1\n", f"h = '{tok.decode()}'\n"], "outputs": [],
            "execution_count": 1}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    k8s = (b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: |\n    "
           + base64.b64encode(tok) + b"\n")
    utf16 = ("token = " + tok.decode() + "\n").encode("utf-16-le")
    return [
        ("nb.ipynb", json.dumps(nb).encode()),
        ("nb_noext", json.dumps(nb).encode()),
        ("k8s.yaml", k8s),
        ("wrapped.yml", b"v: |\n    " + base64.b64encode(b"key " + tok)[:30] + b"\n    "
         + base64.b64encode(b"key " + tok)[30:] + b"\n"),
        ("evil.txt", b"cos\nsystem\n(S'echo hi'\ntR."),
        ("arch.bin", zip_bytes({"inner.txt": b"t = " + tok})),
        ("x.txt.gz", gzip.compress(b"t = " + tok, mtime=0)),
        ("u16.txt", utf16),
        ("bin.dat", b"\x00\x01\x02" + base64.b64encode(b"k=" + tok) + b"\x00"),
        ("model.pkl", b"cos\nsystem\n(S'echo hi'\ntR."),
    ]


def test_items_a_detector_claims_are_never_quiet() -> None:
    ctx = _ctx()
    tok = hf_token().encode()
    named = _claimed_shapes(tok) + [("plain.txt", b"just words\n"), ("values.yaml", b"replicas: 3\nimage: nginx\n")]
    assert _quiet(ctx, named) == {len(named) - 2, len(named) - 1}


def test_yaml_is_quiet_only_without_a_hint_or_a_base64_run() -> None:
    """The encoded pass parses YAML that mentions a Secret or a Docker config, and decodes every base64 run of a
    YAML file (indented block scalars hide the needles): such a file is never quiet, even with no hit."""
    ctx = _ctx()
    run = base64.b64encode(b"just some bytes, no token at all, long enough").decode()
    named = [("a.yaml", b"kind: Secret\ndata: {}\n"), ("b.yml", f"blob: {run}\n".encode()),
             ("c.yaml", b"auths: dockerconfigjson\n"), ("d.yaml", b"a: 1\nb: [x, y]\n")]
    assert _quiet(ctx, named) == {3}


@contextlib.contextmanager
def counting_gate(monkeypatch: pytest.MonkeyPatch, gate: bool) -> Iterator[list[int]]:
    """While in the block: the gate on (``gate``) or off; the one-element list counts the items it called quiet."""
    calls = [0]
    real = batch_gate.Gate.quiet

    def counting(self: Any, batch: Any, got: Any) -> set[int]:
        q = real(self, batch, got)
        calls[0] += len(q)
        return q

    with monkeypatch.context() as m:
        m.setattr(batch_gate.Gate, "quiet", counting)
        if not gate:
            m.setattr(batch_gate, "KINDS", frozenset())
        yield calls


def _sweep(repo: Path, gate: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], int]:
    with counting_gate(monkeypatch, gate) as calls:
        r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    rows = sorted((f.rule_id, f.path, f.line, f.column, f.fingerprint, f.decoded or "",
                   json.dumps(f.location, sort_keys=True), (f.commit or {}).get("id")) for f in r.findings)
    return rows, sorted((e.path, e.kind, e.reason) for e in r.errors), calls[0]


def test_sweep_finds_the_same_with_and_without_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shape at once in one history: plain files (quiet), tokens at a file's edges, base64 and gzip+base64
    tokens at offset 0, AST-only Python, the claimed shapes, a token in a file name, an inline-ignored token, a
    file over the piece limit, a token in a commit message. The gate changes nothing that is reported."""
    rng = random.Random(17)
    repo = init_repo(tmp_path / "r")
    toks = [hf_token(rng) for _ in range(12)]
    files: dict[str, bytes] = {f"plain{i}.txt": f"line {i}\n".encode() * (i + 1) for i in range(30)}
    files.update({f"src{i}.py": f"def f{i}():\n    return {i}\n".encode() for i in range(30)})
    files.update({
        "edge_start.txt": toks[0].encode() + b" at the start",
        "edge_end.txt": b"at the end " + toks[1].encode(),
        "b64.txt": base64.b64encode(b"token=" + toks[2].encode()),
        "gz.txt": _gzip_b64(b"token = " + toks[3].encode()),
        "ast.py": f'P = "{toks[4][:3]}"\nK = P + "{toks[4][3:]}"\n'.encode(),
        f"{toks[5]}.txt": b"a quiet file with a loud name\n",
        "ignored.txt": f"k = '{toks[6]}'  # veritensor-fast: ignore\n".encode(),
        "big.txt": b"filler line\n" * (batch_gate.MAX_PIECE // 12 + 10) + toks[7].encode(),
    })
    files.update(_claimed_shapes(toks[8].encode()))
    files.update({f"conf{i}.yaml": f"name: svc{i}\nreplicas: {i}\n".encode() for i in range(10)})
    for name, data in files.items():
        (repo / name).write_bytes(data)
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-q", "-m", f"add files; deploy key {toks[9]}")
    (repo / "edge_end.txt").write_bytes(b"rewritten, token gone\n")
    git_run(repo, "commit", "-q", "-am", "second")

    with_gate, errors_gate, quiet = _sweep(repo, True, monkeypatch)
    without, errors_plain, none = _sweep(repo, False, monkeypatch)
    assert with_gate == without and errors_gate == errors_plain
    assert quiet >= 70 and none == 0  # the plain files, plain YAML and the commits without tokens were quiet
    paths = {r[1] for r in with_gate}
    for p in ("edge_start.txt", "edge_end.txt", "b64.txt", "gz.txt", "ast.py", f"{toks[5]}.txt", "big.txt",
              "k8s.yaml", "nb.ipynb", "arch.bin", "x.txt.gz", "u16.txt", "evil.txt"):
        assert any(q == p or q.startswith(p + "!") for q in paths), (p, sorted(paths))
    assert any(q.startswith("commit:") for q in paths) and "ignored.txt" not in paths


_FRAGS = st.sampled_from(["plain words ", "\n", "x = 1\n", "'", '"', "hf_", "aGZf", "H4sI", "eJ", "=", " + ",
                          "Secret", "kind: ", "ghp_", "AKIA", "sk-", "xoxb-"])


@st.composite
def _piece(draw: Any) -> tuple[str, bytes]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            parts.append(hf_token(rng))
        elif kind == 1:
            parts.append(base64.b64encode(("tok " + hf_token(rng)).encode()).decode()[draw(st.integers(0, 3)):])
        else:
            parts.append(draw(_FRAGS))
    name = draw(st.sampled_from(["a.txt", "b.py", "c.md", "d", "e.cfg", "f.json", "g.yaml"]))
    return name, "".join(parts).encode()


@given(st.lists(_piece(), min_size=2, max_size=8))
def test_quiet_means_nothing_found_alone(named: list[tuple[str, bytes]]) -> None:
    """Soundness on random batches of token pieces, base64 runs and needle fragments: every item the gate calls
    quiet has no finding and no error when the detectors scan it alone."""
    ctx = _ctx()
    for i in _quiet(ctx, named):
        p, b = named[i]
        assert _alone(ctx, Item("blob", "0" * 40, p, len(b)), b) == ([], []), (p, b)


def test_the_gate_turns_itself_off(tmp_path: Path) -> None:
    """Off where its reasoning would not hold: a rule anchored to the buffer's start, base64 layers beyond the
    needles' reach (text files then get the generic decoder), a detector or post-processor it does not know;
    and never for other kinds than git objects and files, or a one-item batch."""
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n- id: custom.anchored\n  name: anchored\n  severity: high\n"
                     "  pattern: '^ZQX[0-9]{12}'\n  left: none\n  right: none\n")
    assert not batch_gate.Gate(WorkerContext(ScanOptions(rule_files=(str(rules),)))).enabled
    assert not batch_gate.Gate(WorkerContext(ScanOptions(base64_depth=3))).enabled
    ctx = WorkerContext(ScanOptions())
    assert batch_gate.Gate(ctx).enabled

    class Extra:
        name = "extra"

        def scan(self, *a: Any) -> None:
            return None

    ctx.detectors = [*ctx.detectors, Extra()]
    assert not batch_gate.Gate(ctx).enabled
    ctx = WorkerContext(ScanOptions())
    ctx.postprocessors.append(lambda found, buf, item: found)
    assert not batch_gate.Gate(ctx).enabled
    # (gate18: batches of files are gated too, through the same ``FileReader``; other kinds are not)
    mem = [Item("memory", "a", "a", 1), Item("memory", "b", "b", 1)]
    assert batch_gate.open_batch(WorkerContext(ScanOptions()), mem) is None
    assert batch_gate.open_batch(WorkerContext(ScanOptions()), [Item("blob", "0" * 40, "a", 1)]) is None


def test_the_only_anchored_needle_accepts_a_line_break_before_it() -> None:
    """The joined scan relies on this: every base64 needle is unanchored but the compressed-stream start
    ``(?:^|[^alphabet])H4sI...``, whose alternative to the buffer's start matches the joining line break."""
    import re

    from veritensor_fast.detectors.b64_needles import COMPRESSED_STARTS
    from veritensor_fast.matcher import aux_patterns, is_anchored

    anchored = {p for p in aux_patterns(ScanOptions().ruleset()) if is_anchored(p)}
    assert anchored == {COMPRESSED_STARTS}
    assert COMPRESSED_STARTS.startswith(rb"(?:^|[^")
    cls = COMPRESSED_STARTS[len(rb"(?:^|"):COMPRESSED_STARTS.index(b"])") + 1]
    assert re.fullmatch(cls, batch_gate.SEP) and not is_anchored(COMPRESSED_STARTS[COMPRESSED_STARTS.index(b"])") + 2:])
