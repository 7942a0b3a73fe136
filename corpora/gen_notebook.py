"""Jupyter notebook generator: realistic cells, base64 PNG outputs (multi-MB single lines) and secrets planted in
every notebook placement (source, outputs, JSON/unicode escapes, split stream chunks, ANSI tracebacks,
attachments, metadata). Used for the giant notebook corpus and for the notebooks inside the monorepo corpus.

    python -m corpora.gen_notebook --size-mb 200 --out corpora/out/notebook [--seed 7] [--minify]

Writes ``<out>/giant.ipynb`` and ``<out>/ground_truth.json``. Streamed: memory stays around one image.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

if __package__ in (None, ""):  # run as a script: make ``corpora`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora.common import NOTEBOOK, PYAST, Filler, Secret, Truth, default_out, make_secret, png_b64, rand

#: Notebook placements: name -> detector modules needed (empty: the plain text pass finds it in the raw JSON).
NB_PLACEMENTS: dict[str, tuple[str, ...]] = {
    "nb-source": (),
    "nb-output-stream": (),
    "nb-output-html": (),
    "nb-metadata": (),
    "nb-json-escaped": (NOTEBOOK,),
    "nb-unicode-escape": (NOTEBOOK,),
    "nb-split-output": (NOTEBOOK,),
    "nb-ansi-traceback": (NOTEBOOK,),
    "nb-attachment": (NOTEBOOK,),
    "nb-code-concat": (NOTEBOOK, PYAST),
}


@dataclass
class PlantedCell:
    """A cell holding one planted secret. ``raw`` maps a sentinel in the dumped JSON to hand-written raw JSON
    text (for escapes ``json.dumps`` would never produce)."""

    cell: dict[str, Any]
    placement: str
    secret: Secret
    raw: dict[str, str] = field(default_factory=dict)


def _code(rng: random.Random, source: list[str], outputs: list[dict[str, Any]] | None = None,
          n: int | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": n if n is not None else rng.randint(1, 999),
            "id": rand(rng, "0123456789abcdef", 8), "metadata": {}, "outputs": outputs or [], "source": source}


def _md(rng: random.Random, text: list[str]) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": rand(rng, "0123456789abcdef", 8), "metadata": {}, "source": text}


def _stream(text: list[str]) -> dict[str, Any]:
    return {"name": "stdout", "output_type": "stream", "text": text}


def _src_lines(lines: list[str]) -> list[str]:
    return [ln + "\n" for ln in lines[:-1]] + lines[-1:]


def planted_cell(rng: random.Random, placement: str) -> PlantedCell:
    """One cell with a fresh secret in ``placement`` (see ``NB_PLACEMENTS``)."""
    if placement == "nb-json-escaped":
        s = make_secret(rng, "wandb.api-key")
        return PlantedCell(_code(rng, _src_lines(["import wandb", f'wandb.login(key="{s.secret}")'])), placement, s)
    if placement == "nb-code-concat":
        s = make_secret(rng, "huggingface.user-token")
        cut = rng.randint(5, 20)
        src = ["from huggingface_hub import login",
               f'token = "{s.secret[:cut]}" + "{s.secret[cut:]}"', "login(token=token)"]
        return PlantedCell(_code(rng, _src_lines(src)), placement, s)
    s = make_secret(rng, rng.choice(("huggingface.user-token", "github.token", "openai.api-key", "groq.api-key")))
    tok = s.secret
    if placement == "nb-source":
        src = ["import os", f'os.environ["{s.name}"] = "{tok}"']
        return PlantedCell(_code(rng, _src_lines(src)), placement, s)
    if placement == "nb-output-stream":
        return PlantedCell(_code(rng, ["!env | grep TOKEN"], [_stream([f"{s.name}={tok}\n", "PATH=/usr/bin\n"])]),
                           placement, s)
    if placement == "nb-output-html":
        out = {"data": {"text/html": [f"<pre>config = {{'token': '{tok}'}}</pre>"],
                        "text/plain": [f"{{'token': '{tok}'}}"]},
               "execution_count": 3, "metadata": {}, "output_type": "execute_result"}
        return PlantedCell(_code(rng, ["config"], [out]), placement, s)
    if placement == "nb-metadata":
        cell = _code(rng, ["widget"])
        cell["metadata"] = {"widget_state": {"auth": {"token": tok}}, "tags": ["setup"]}
        return PlantedCell(cell, placement, s)
    if placement == "nb-unicode-escape":
        i = rng.randint(4, len(tok) - 2)
        raw = tok[:i] + f"\\u{ord(tok[i]):04x}" + tok[i + 1:]
        return PlantedCell(_code(rng, ["print(token)"], [_stream(["token: @@VFRAW@@\n"])]), placement, s,
                           {"@@VFRAW@@": raw})
    if placement == "nb-split-output":
        cut = rng.randint(6, len(tok) - 6)
        return PlantedCell(_code(rng, ["print(cfg)"], [_stream([f"Using token {tok[:cut]}", f"{tok[cut:]} for upload\n"])]),
                           placement, s)
    if placement == "nb-ansi-traceback":
        err = {"ename": "HTTPError", "evalue": "401 Client Error", "output_type": "error", "traceback": [
            "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
            "\x1b[0;31mHTTPError\x1b[0m                                 Traceback (most recent call last)",
            f"\x1b[0;32m----> 1\x1b[0m api \x1b[38;5;241m=\x1b[39m HfApi(token\x1b[38;5;241m=\x1b[39m\x1b[38;5;124m{tok}"
            "\x1b[0m)",
        ]}
        return PlantedCell(_code(rng, ["api = HfApi(token=TOKEN)"], [err]), placement, s)
    if placement == "nb-attachment":
        note = base64.b64encode(f"# credentials\n{s.name}={tok}\n".encode()).decode()
        cell = _md(rng, ["![notes](attachment:notes.txt)"])
        cell["attachments"] = {"notes.txt": {"text/plain": note}}
        return PlantedCell(cell, placement, s)
    raise ValueError(f"unknown notebook placement {placement}")


def filler_cell(rng: random.Random, filler: Filler, png_bytes: int) -> dict[str, Any]:
    """A benign cell: markdown, code with a log-like stream output, or code with a PNG image output."""
    k = rng.random()
    if k < 0.2:
        return _md(rng, _src_lines(filler.lines("md", rng.randint(200, 2000))))
    src = _src_lines(["import torch", *rng.choices(filler.pools["py"], k=rng.randint(3, 15))])
    if png_bytes > 0 and k < 0.6:
        out = {"data": {"image/png": png_b64(rng, png_bytes), "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
               "metadata": {"needs_background": "light"}, "output_type": "display_data"}
        return _code(rng, src, [out])
    return _code(rng, src, [_stream([ln + "\n" for ln in filler.lines("log", rng.randint(500, 20000))])])


def decoy_cell(rng: random.Random) -> tuple[dict[str, Any], str]:
    kinds = [
        ("placeholder-x", f"HF_TOKEN=hf_{'x' * 34}\n"),
        ("redacted-stars", f"token: hf_{'*' * 34}\n"),
        ("sha256-digest", f"sha256 {rand(rng, '0123456789abcdef', 64)}\n"),
        ("uuid", f"run {rand(rng, '0123456789abcdef', 8)}-{rand(rng, '0123456789abcdef', 4)}-4abc-8def-"
                 f"{rand(rng, '0123456789abcdef', 12)}\n"),
    ]
    kind, text = rng.choice(kinds)
    return _code(rng, ["print(x)"], [_stream([text])]), kind


NB_METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
               "language_info": {"name": "python", "version": "3.11.7"}}


def write_notebook(f: TextIO, cells: Iterator[tuple[dict[str, Any], dict[str, str]]], minify: bool = False
                   ) -> Iterator[tuple[int, str]]:
    """Stream a notebook to ``f``. Yields ``(line_at_start_of_cell, cell_text)`` for each cell written, so the
    caller can locate planted secrets without holding the file in memory."""
    ind = None if minify else 1
    sep = "" if minify else "\n"
    head = '{"cells": [' + sep
    f.write(head)
    line = 1 + head.count("\n")
    first = True
    for cell, raw in cells:
        text = json.dumps(cell, indent=ind)
        for k, v in raw.items():
            text = text.replace(k, v)
        if not first:
            f.write("," + sep)
            line += sep.count("\n")
        first = False
        yield line, text
        f.write(text)
        line += text.count("\n")
    tail = sep + '], "metadata": ' + json.dumps(NB_METADATA, indent=ind) + ', "nbformat": 4, "nbformat_minor": 5}' + sep
    f.write(tail)


def _cell_stream(rng: random.Random, filler: Filler, size: int, placements: list[str], png_max: int,
                 written: list[int], late_from: float) -> Iterator[tuple[dict[str, Any], dict[str, str], Any]]:
    """Cells for a notebook of about ``size`` bytes (``written[0]`` is kept up to date by the writer); planted
    cells go after ``late_from`` of the size."""
    pending = list(placements)
    decoys_left = 2
    while written[0] < size or pending:
        frac = written[0] / max(size, 1)
        if pending and (frac >= late_from or written[0] >= size):
            pc = planted_cell(rng, pending.pop(0))
            yield pc.cell, pc.raw, pc
            continue
        if decoys_left and frac >= late_from / 2:
            decoys_left -= 1
            cell, kind = decoy_cell(rng)
            yield cell, {}, kind
            continue
        png = rng.randint(max(1, png_max // 3), png_max) if png_max else 0
        yield filler_cell(rng, filler, png), {}, None


def build_notebook(path: Path, rel: str, rng: random.Random, filler: Filler, size: int, placements: list[str],
                   truth: Truth, png_max: int, late_from: float = 0.0, minify: bool = False) -> None:
    """Write one notebook at ``path`` with ``placements`` planted, recording ground truth under ``rel``."""
    meta: list[Any] = []
    written = [0]

    def cells() -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
        for cell, raw, tag in _cell_stream(rng, filler, size, placements, png_max, written, late_from):
            meta.append(tag)
            yield cell, raw

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, (line, text) in enumerate(write_notebook(f, cells(), minify)):
            written[0] += len(text) + 2
            tag = meta[i]
            if isinstance(tag, PlantedCell):
                tok = tag.secret.secret
                j = text.find(tok)
                ln = line + text.count("\n", 0, j) if j >= 0 else None
                truth.secret(rel, tag.secret.rule_id, tok, tag.placement, NB_PLACEMENTS[tag.placement], ln)
            elif isinstance(tag, str):
                truth.decoy(rel, tag, line)
        # random PNG outputs are decoys too (base64 of random bytes must not produce findings)
    if png_max:
        truth.decoy(rel, "random-png-outputs")


def generate(out: Path, size_mb: float = 200.0, seed: int = 7, minify: bool = False) -> Truth:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    filler = Filler(rng, pool=2000)
    truth = Truth("notebook", seed, {"size_mb": size_mb, "minify": minify})
    size = int(size_mb * 1e6)
    png_max = min(4_000_000, max(20_000, size // 40))
    # every placement goes into the last 5% of the file (late outputs)
    placements = list(NB_PLACEMENTS)
    build_notebook(out / "giant.ipynb", "giant.ipynb", rng, filler, size, placements, truth, png_max,
                   late_from=0.95, minify=minify)
    truth.write(out)
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--minify", action="store_true", help="write the whole notebook on one line")
    ap.add_argument("--out", type=Path, default=default_out("notebook"))
    a = ap.parse_args(argv)
    t = generate(a.out, a.size_mb, a.seed, a.minify)
    print(f"wrote {a.out / 'giant.ipynb'}: {len(t.secrets)} planted secrets, {len(t.decoys)} decoys", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

