"""The notebook walk matches a notebook's strings together (``nb_walk.Walker.flush``): one Hyperscan scan of
their concatenation picks the strings that hold a candidate, only those are matched. Findings must be exactly
those of one matcher call per string (``BATCH_BYTES = 0`` walks the old way), on every placement the corpus
generator plants, on tokens cut across cells and strings, and with a user rule anchored to the buffer start
(no batching then).

``test_clean_cells_are_not_matched_one_by_one`` fails on the code before batching (one ``find`` per string).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import test_notebook

from corpora.common import Filler, make_secret
from corpora.gen_notebook import NB_PLACEMENTS, filler_cell, planted_cell
from veritensor_fast import matcher as matcher_mod
from veritensor_fast.detectors import nb_walk
from veritensor_fast.findings import Finding
from veritensor_fast.matcher import is_anchored
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token

RULES = ["huggingface.user-token", "openai.api-key", "anthropic.api-key", "github.token", "gitlab.pat",
         "slack.token", "stripe.secret-key", "pypi.upload-token", "aws.access-key-id", "gcp.api-key"]

ctx, scan = test_notebook.ctx, test_notebook.scan_bytes  # a fixture and a helper


def key(fs: list[Finding]) -> list[tuple[Any, ...]]:
    return sorted((f.rule_id, f.secret, f.line, f.column, json.dumps(f.location, sort_keys=True)) for f in fs)


def both(ctx: WorkerContext, tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[list[Finding], list[Finding]]:
    """The findings batched (default) and one string at a time."""
    batched, errs = scan(ctx, tmp_path, data)
    assert errs == []
    monkeypatch.setattr(nb_walk, "BATCH_BYTES", 0)
    single, errs = scan(ctx, tmp_path, data, "b.ipynb")
    monkeypatch.undo()
    assert errs == []
    return batched, single


def random_notebook(rng: random.Random) -> tuple[bytes, set[str]]:
    filler = Filler(rng, pool=50)
    cells: list[Any] = []
    planted: set[str] = set()
    raw: dict[str, str] = {}
    for placement in NB_PLACEMENTS:
        for _ in range(rng.randint(0, 3)):
            cells.append(filler_cell(rng, filler, 0))
        pc = planted_cell(rng, placement)
        cells.append(pc.cell)
        planted.add(pc.secret.secret)
        raw.update(pc.raw)
    # tokens at the very start / end of strings, and cut across two cells (found in neither, batched or not)
    for _ in range(6):
        tok = make_secret(rng, rng.choice(RULES)).secret
        cut = rng.randint(4, len(tok) - 4)
        cells.append({"cell_type": "code", "metadata": {}, "outputs": [], "source": tok[:cut]})
        cells.append({"cell_type": "markdown", "metadata": {"k": tok[cut:]}, "source": tok[cut:]})
        whole = make_secret(rng, rng.choice(RULES)).secret
        cells.append({"cell_type": "code", "metadata": {"tag": whole}, "source": [whole],
                      "outputs": [{"output_type": "stream", "name": "stdout", "text": [whole]}]})
        planted.add(whole)
    rng.shuffle(cells)
    doc = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(doc, indent=rng.choice([None, 1]))
    for sentinel, escaped in raw.items():  # hand-written escapes json.dumps never produces
        text = text.replace(sentinel, escaped)
    return text.encode(), planted


@pytest.mark.parametrize("seed", range(4))
def test_batched_findings_equal_one_string_at_a_time(ctx: WorkerContext, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    data, planted = random_notebook(random.Random(seed))
    batched, single = both(ctx, tmp_path, data, monkeypatch)
    assert key(batched) == key(single)
    assert planted <= {f.secret for f in batched}


def test_batch_flushes_bounded_and_streamed_path(ctx: WorkerContext, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Many flushes per notebook (a tiny batch size) and the streamed parser give the same findings."""
    from veritensor_fast.detectors import notebook as nbmod

    data, planted = random_notebook(random.Random(11))
    ref, _ = scan(ctx, tmp_path, data)
    monkeypatch.setattr(nb_walk, "BATCH_BYTES", 300)
    monkeypatch.setattr(nbmod, "ORJSON_MAX", 1 << 10)
    got, errs = scan(ctx, tmp_path, data, "b.ipynb")
    assert errs == [] and key(got) == key(ref) and planted <= {f.secret for f in got}


def test_clean_cells_are_not_matched_one_by_one(ctx: WorkerContext, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tok = hf_token()
    cells = [{"cell_type": "code", "metadata": {"tags": [f"t{i}"]}, "source": [f"x_{i} = {i}\n"],
              "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"{i}\n"]}]} for i in range(40)]
    cells[17]["source"].append(f"token = '{tok}'\n")
    data = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    calls: list[int] = []
    real = matcher_mod.SecretMatcher.find

    def counting(self: matcher_mod.SecretMatcher, buf: Any, *hits: Any) -> list[matcher_mod.SecretMatch]:
        calls.append(len(buf))
        return real(self, buf, *hits)

    monkeypatch.setattr(matcher_mod.SecretMatcher, "find", counting)
    fs, errs = scan(ctx, tmp_path, data)
    assert errs == [] and [(f.secret, (f.location or {}).get("cell")) for f in fs] == [(tok, 17)]
    # 120 strings: only the one that holds the token is matched (the raw-bytes pass does not use ``find``)
    assert len(calls) <= 3, len(calls)


def test_anchored_rule_is_never_batched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user rule anchored to the buffer start matches a string alone, not inside a concatenation: the walk
    falls back to one matcher call per string, and still finds it."""
    assert is_anchored(b"^abc") and is_anchored(b"x\\Ay") and is_anchored(b"abc$")
    assert not is_anchored(b"[^a-z]x\\$[$^]")
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n- id: custom.anchored\n  name: anchored\n  severity: high\n"
                     "  pattern: '^ZQX[0-9]{12}'\n  left: none\n  right: none\n")
    ctx = WorkerContext(ScanOptions(rule_files=(str(rules),)))
    assert ctx.matcher.candidate_ends(b"x") is None
    cells = [{"cell_type": "markdown", "metadata": {}, "source": f"note {i}"} for i in range(5)]
    cells.append({"cell_type": "markdown", "metadata": {}, "source": "ZQX482910573826"})
    data = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    fs, errs = scan(ctx, tmp_path, data)
    assert errs == [] and ("custom.anchored", 5) in {(f.rule_id, (f.location or {}).get("cell")) for f in fs}
