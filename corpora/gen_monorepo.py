"""Synthetic ML monorepo generator: ~20k files of realistic types and sizes (py, yaml, json, md, ipynb, csv,
logs, env, sh) with secrets planted in every placement the scanner supports, and decoys that must not be found.

    python -m corpora.gen_monorepo --size-mb 500 --files 20000 --out corpora/out/monorepo [--seed 1337]

Placements (``placement`` in the ground truth; ``requires`` names the detector modules that must exist):
- ``text``: one secret per rule (plus extras) in .env / .sh / .py / .yaml / .md / .log / .json, with its line;
  ``text-pem`` (PEM key file), ``text-json`` (GCP service-account JSON: key id + escaped PEM, kaggle.json);
- notebook placements (see ``corpora.gen_notebook.NB_PLACEMENTS``);
- ``k8s-secret-data`` / ``k8s-secret-block`` (base64 ``data:``, one-line and wrapped block scalar),
  ``k8s-stringdata`` (plain), ``dockerconfigjson`` (base64 JSON whose ``auth`` is base64 again),
  ``base64-generic`` (a base64 blob in YAML / Python), ``utf16`` (UTF-16 LE text file with BOM);
- Python: ``py-concat``, ``py-implicit-concat``, ``py-sink-kwarg``, ``py-environ``, ``py-format``,
  ``py-percent``, ``py-fstring`` (the token only exists after joining string constants).
Deterministic for a given seed and parameters; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``corpora`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora.common import (
    ENCODED,
    PYAST,
    SECRET_FACTORIES,
    WORDS,
    Filler,
    Secret,
    Truth,
    decoy_lines,
    default_out,
    ident,
    line_of,
    make_secret,
    pem_block,
    rand,
    service_account_json,
    write_file,
)
from corpora.gen_notebook import NB_PLACEMENTS, build_notebook

#: kind -> (share of files, mean size in KB, log-normal sigma)
TYPES: dict[str, tuple[float, float, float]] = {
    "py": (0.40, 8.0, 0.9), "yaml": (0.12, 2.0, 0.8), "json": (0.10, 6.0, 1.0), "md": (0.10, 5.0, 0.9),
    "ipynb": (0.04, 150.0, 0.8), "csv": (0.06, 120.0, 1.0), "log": (0.08, 80.0, 1.0), "env": (0.03, 0.5, 0.5),
    "sh": (0.07, 2.0, 0.7),
}
TEXT_HOSTS = ("env", "sh", "py", "yaml", "md", "log", "json")
DECOY_HOSTS = ("env", "md", "log", "sh")
PY_PLACEMENTS = ("py-concat", "py-implicit-concat", "py-sink-kwarg", "py-environ", "py-format", "py-percent",
                 "py-fstring")
SERVICES = ("trainer", "inference", "eval", "data-pipeline", "feature-store", "labeling", "serving", "registry",
            "monitoring", "tokenizers", "rlhf", "search")


@dataclass
class Plant:
    placement: str
    secret: Secret
    snippet: str  # text inserted into the host (a line or a few lines; JSON hosts use ``key`` / ``secret.value``)
    requires: tuple[str, ...] = ()
    check_line: bool = True


@dataclass
class FileSpec:
    rel: str
    kind: str
    size: int
    plants: list[Plant] = field(default_factory=list)
    decoys: list[tuple[str, str]] = field(default_factory=list)  # (kind, snippet)
    nb_placements: list[str] = field(default_factory=list)


def text_snippet(kind: str, s: Secret) -> str:
    if kind == "env":
        return f"{s.name}={s.value}"
    if kind == "sh":
        return f'export {s.name}="{s.value}"'
    if kind == "py":
        return f'{s.name} = "{s.value}"'
    if kind == "yaml":
        return f'{s.name}: "{s.value}"'
    if kind == "md":
        return f"```sh\nexport {s.name}={s.value}\n```"
    if kind == "log":
        return f"2024-03-11 10:00:00,000 DEBUG settings: {s.name}={s.value}"
    raise ValueError(kind)


def py_snippet(rng: random.Random, placement: str) -> Plant:
    rule = "openai.api-key" if placement in ("py-environ",) else "huggingface.user-token"
    s = make_secret(rng, rule)
    tok = s.secret
    cut = rng.randint(len(tok) // 4, len(tok) // 2)
    a, b = tok[:cut], tok[cut:]
    code = {
        "py-concat": f'{s.name} = "{a}" + "{b}"',
        "py-implicit-concat": f'hub_token = (\n    "{a}"\n    "{b}"\n)',
        "py-sink-kwarg": f'api = HfApi(token="{a}" "{b}")',
        "py-environ": f'os.environ["{s.name}"] = "{a}" + "{b}"',
        "py-format": f'hub_token = "{{}}{{}}".format("{a}", "{b}")',
        "py-percent": f'hub_token = "%s%s" % ("{a}", "{b}")',
        "py-fstring": f"hub_token = f\"{{'{a}'}}{{'{b}'}}\"",
    }[placement]
    return Plant(placement, s, code, (PYAST,), check_line=False)


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plan(rng: random.Random, size: int, files: int) -> list[FileSpec]:
    """Paths, kinds and sizes for ``files`` files totalling about ``size`` bytes."""
    kinds: list[str] = []
    for kind, (share, _mean, _sig) in TYPES.items():
        kinds += [kind] * max(2, round(share * files))
    rng.shuffle(kinds)
    raw = [rng.lognormvariate(math.log(TYPES[k][1] * 1000), TYPES[k][2]) for k in kinds]
    scale = size / sum(raw)
    specs: list[FileSpec] = []
    for i, (k, r) in enumerate(zip(kinds, raw, strict=True)):
        svc = rng.choice(SERVICES)
        area = rng.choice(WORDS)
        name = f"{ident(rng)}_{i}"
        rel = {
            "py": f"services/{svc}/src/{svc.replace('-', '_')}/{area}/{name}.py",
            "yaml": f"configs/{svc}/{area}/{name}.yaml",
            "json": f"configs/{svc}/meta/{name}.json",
            "md": f"docs/{svc}/{name}.md",
            "ipynb": f"notebooks/{svc}/{name}.ipynb",
            "csv": f"data/{svc}/{area}/{name}.csv",
            "log": f"logs/{svc}/run_{i % 97}/{name}.log",
            "env": f"services/{svc}/envs/{name}/.env",
            "sh": f"scripts/{svc}/{name}.sh",
        }[k]
        specs.append(FileSpec(rel, k, max(120, int(r * scale))))
    return specs


def render(spec: FileSpec, rng: random.Random, filler: Filler) -> str:
    """File text for a non-notebook spec, with its plants and decoys inserted."""
    k = spec.kind
    if k == "json":
        doc: dict[str, object] = {"name": ident(rng), "version": f"{rng.randint(0, 9)}.{rng.randint(0, 99)}"}
        for p in spec.plants:
            doc[p.secret.name] = p.secret.value
        n = max(1, spec.size // 120)
        doc["records"] = [{"id": rng.randint(0, 10**9), "split": rng.choice(("train", "val", "test")),
                           "score": round(rng.random(), 6), "tags": rng.choices(WORDS, k=3)} for _ in range(n)]
        return json.dumps(doc, indent=2) + "\n"
    if k == "py":
        parts = ['"""' + " ".join(rng.choices(WORDS, k=8)) + '."""\n', "import logging\nimport os\n\n",
                 "logger = logging.getLogger(__name__)\n\n\n"]
        blocks = filler.lines("pyblock", spec.size)
        extra = [p.snippet + "\n\n\n" for p in spec.plants] + [d + "\n\n\n" for _, d in spec.decoys]
        for e in extra:
            blocks.insert(rng.randrange(len(blocks) + 1), e)
        return "".join(parts + blocks)
    lines = filler.lines(k, spec.size)
    for e in [p.snippet for p in spec.plants] + [d for _, d in spec.decoys]:
        lines.insert(rng.randrange(len(lines) + 1), e)
    if k == "csv":
        lines.insert(0, "id,score,prob,label,bucket,z")
    return "\n".join(lines) + "\n"


def _k8s_files(rng: random.Random, truth: Truth, root: Path) -> None:
    hf, gh = make_secret(rng, "huggingface.user-token"), make_secret(rng, "github.token")
    plain = make_secret(rng, "huggingface.user-token")
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hf-credentials\n  namespace: ml\ntype: Opaque\ndata:\n"
        f"  HF_TOKEN: {b64(hf.secret)}\n  GITHUB_TOKEN: {b64(gh.secret)}\n"
        f"  PLACEHOLDER_TOKEN: {b64('hf_' + 'x' * 34)}\n"
        f"stringData:\n  HF_TOKEN_FALLBACK: {plain.secret}\n"
    )
    rel = "deploy/k8s/hf-credentials.yaml"
    write_file(root, rel, text)
    truth.secret(rel, hf.rule_id, hf.secret, "k8s-secret-data", (ENCODED,), line_of(text, b64(hf.secret)))
    truth.secret(rel, gh.rule_id, gh.secret, "k8s-secret-data", (ENCODED,), line_of(text, b64(gh.secret)))
    truth.secret(rel, plain.rule_id, plain.secret, "k8s-stringdata", (), line_of(text, plain.secret), True)
    truth.decoy(rel, "base64-placeholder", line_of(text, "PLACEHOLDER_TOKEN"))

    oa = make_secret(rng, "openai.api-key")
    enc = b64(f"{oa.secret}\n")
    wrapped = "\n".join("    " + enc[i:i + 60] for i in range(0, len(enc), 60))
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: trainer-config\ndata:\n  epochs: \"3\"\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: openai\ntype: Opaque\ndata:\n"
        f"  OPENAI_API_KEY: |\n{wrapped}\n"
    )
    rel = "deploy/k8s/openai-secret.yaml"
    write_file(root, rel, text)
    truth.secret(rel, oa.rule_id, oa.secret, "k8s-secret-block", (ENCODED,), line_of(text, "OPENAI_API_KEY"))

    dk = make_secret(rng, "github.token")
    cfg = json.dumps({"auths": {"ghcr.io": {"auth": b64(f"mlbot:{dk.secret}")}}})
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: ml\n"
        f"type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {b64(cfg)}\n"
    )
    rel = "deploy/k8s/regcred.yaml"
    write_file(root, rel, text)
    truth.secret(rel, dk.rule_id, dk.secret, "dockerconfigjson", (ENCODED,), line_of(text, ".dockerconfigjson"))


def _structured_files(rng: random.Random, truth: Truth, root: Path, lock_bytes: int) -> None:
    text, found = service_account_json(rng, "ml-prod-4821")
    rel = "configs/gcp/service-account-ml-prod.json"
    write_file(root, rel, text)
    for rid, sec in found:
        truth.secret(rel, rid, sec, "text-json", (), line_of(text, sec), rid != "private-key.pem")

    kg = make_secret(rng, "kaggle.api-key")
    text = json.dumps({"username": "mlbot", "key": kg.secret}) + "\n"
    rel = "configs/kaggle/kaggle.json"
    write_file(root, rel, text)
    truth.secret(rel, kg.rule_id, kg.secret, "text-json", (), 1, True)

    pem, sec = pem_block(rng, "OPENSSH PRIVATE KEY", 12)
    rel = "deploy/keys/deploy_key"
    write_file(root, rel, pem)
    truth.secret(rel, "private-key.pem", sec, "text-pem", (), 1, True)  # the key block starts at BEGIN

    u = make_secret(rng, "huggingface.user-token")
    text = "Windows setup notes\r\n\r\nset HF_HOME=D:\\hf\r\nset HF_TOKEN=" + u.secret + "\r\n"
    rel = "docs/windows/setup-notes.txt"
    write_file(root, rel, b"\xff\xfe" + text.encode("utf-16-le"))
    truth.secret(rel, u.rule_id, u.secret, "utf16", (ENCODED,), 4)

    # a lockfile full of integrity hashes (decoys)
    entries = []
    n = max(5, lock_bytes // 260)
    for i in range(n):
        entries.append(f'    "node_modules/{ident(rng).replace("_", "-")}-{i}": {{\n      "version": "1.{i % 50}.0",\n'
                       f'      "resolved": "https://registry.npmjs.org/p/-/p-1.{i % 50}.0.tgz",\n'
                       f'      "integrity": "sha512-{b64(rng.randbytes(64))}"\n    }}')
    text = '{\n  "name": "dashboard",\n  "lockfileVersion": 3,\n  "packages": {\n' + ",\n".join(entries) + "\n  }\n}\n"
    rel = "web/dashboard/package-lock.json"
    write_file(root, rel, text)
    truth.decoy(rel, "lockfile-integrity")


def generate(out: Path, size_mb: float = 500.0, files: int = 20000, seed: int = 1337, clean: bool = True) -> Truth:
    """Write the corpus under ``out`` (replacing it when ``clean``) and return its ground truth."""
    if clean and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    filler = Filler(rng)
    truth = Truth("monorepo", seed, {"size_mb": size_mb, "files": files})
    size = int(size_mb * 1e6)
    specs = plan(rng, size, files)
    by_kind: dict[str, list[FileSpec]] = {}
    for s in specs:
        by_kind.setdefault(s.kind, []).append(s)

    def host(kinds: tuple[str, ...] | str) -> FileSpec:
        ks = (kinds,) if isinstance(kinds, str) else kinds
        return rng.choice(by_kind[rng.choice(ks)])

    # text: one per rule, rotating through host types, plus extras that scale with size
    rules = sorted(SECRET_FACTORIES)
    n_extra = int(size_mb // 5)
    for i, rid in enumerate(rules + [rng.choice(rules) for _ in range(n_extra)]):
        hk = TEXT_HOSTS[i % len(TEXT_HOSTS)]
        h = host(hk)
        s = make_secret(rng, rid)
        h.plants.append(Plant("text", s, "" if hk == "json" else text_snippet(hk, s)))
    # base64 blobs holding a credential line
    for hk in ("yaml", "py"):
        s = make_secret(rng, "huggingface.user-token")
        blob = b64(f"{s.name}={s.secret}\n")
        snip = f'bootstrap_b64: "{blob}"' if hk == "yaml" else f'_BOOTSTRAP = "{blob}"'
        host(hk).plants.append(Plant("base64-generic", s, snip, (ENCODED,), check_line=False))
    # Python literals that only exist after joining constants
    for pl in PY_PLACEMENTS:
        host("py").plants.append(py_snippet(rng, pl))
    # notebooks
    for pl in NB_PLACEMENTS:
        host("ipynb").nb_placements.append(pl)
    # decoys (scale with size)
    for _ in range(1 + int(size_mb // 50)):
        for kind, line in decoy_lines(rng):
            host(DECOY_HOSTS).decoys.append((kind, line))
        for kind, line in (("py-placeholder-concat", 'placeholder = "hf_" + "x" * 34'),
                           ("py-placeholder", 'HF_TOKEN = "hf_YOUR_TOKEN_HERE"'),
                           ("py-digest", f'EXPECTED_SHA256 = "{rand(rng, "0123456789abcdef", 64)}"'),
                           ("py-uuid", f'RUN_ID = "{rand(rng, "0123456789abcdef", 8)}-4abc-8def-9012-'
                                       f'{rand(rng, "0123456789abcdef", 12)}"')):
            host("py").decoys.append((kind, line))

    for spec in specs:
        if spec.kind == "ipynb":
            build_notebook(out / spec.rel, spec.rel, rng, filler, spec.size, spec.nb_placements, truth,
                           png_max=max(2000, min(spec.size // 3, 400_000)), late_from=0.5)
            continue
        text = render(spec, rng, filler)
        write_file(out, spec.rel, text)
        for p in spec.plants:
            ln = line_of(text, p.secret.secret)
            truth.secret(spec.rel, p.secret.rule_id, p.secret.secret, p.placement, p.requires, ln,
                         p.check_line and p.placement == "text")
        for kind, snip in spec.decoys:
            truth.decoy(spec.rel, kind, line_of(text, snip.splitlines()[0]))
    _k8s_files(rng, truth, out)
    _structured_files(rng, truth, out, lock_bytes=min(2_000_000, size // 100))
    truth.write(out)
    return truth


def main(argv: list[str] | None = None, gen: Callable[..., Truth] = generate) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=500.0)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--out", type=Path, default=default_out("monorepo"))
    a = ap.parse_args(argv)
    t = gen(a.out, a.size_mb, a.files, a.seed)
    print(f"wrote {a.out}: {len(t.secrets)} planted secrets, {len(t.decoys)} decoys", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
