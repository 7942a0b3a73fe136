"""Write the small demo tree ``corpora/demo/`` and its ground truth ``corpora/demo.expected.json``.

Every secret is synthetic (seeded random), one per placement the scanner supports; decoys sit beside them.
The ground truth holds fingerprints only, never the secrets. Run: ``python corpora/make_demo.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import string
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
R = random.Random(20261128)
AN = string.ascii_letters + string.digits


def r(n: int, cs: str = AN) -> str:
    return "".join(R.choice(cs) for _ in range(n))


def fp(rule_id: str, secret: str) -> str:
    return hashlib.sha256(rule_id.encode() + b"\x00" + secret.encode()).hexdigest()


def main() -> None:
    root = HERE / "demo"
    if root.exists():
        shutil.rmtree(root)
    expected: list[dict[str, object]] = []

    def put(rel: str, data: str | bytes) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    def expect(rel: str, rule: str, secret: str, placement: str) -> None:
        expected.append({"path": rel, "rule_id": rule, "fingerprint": fp(rule, secret), "placement": placement})

    hf1, hf2, hf3, hf4, hf5, hf6 = ("hf_" + r(34) for _ in range(6))
    put("src/train.py",
        "from huggingface_hub import login\n\n"
        f'login(token="{hf1}")\n'
        f'PART = "hf_" + "{hf2[3:20]}" + "{hf2[20:]}"\n'
        "PLACEHOLDER = 'hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n")
    expect("src/train.py", "huggingface.user-token", hf1, "text")
    expect("src/train.py", "huggingface.user-token", hf2, "python-ast")

    nb = {
        "cells": [
            {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1,
             "source": ["from huggingface_hub import login\n", f'login(token=\\"{hf3[:10]}', f'{hf3[10:]}\\")\n'.replace('\\"', '"')],
             "outputs": [{"output_type": "stream", "name": "stdout",
                          "text": [f"Token is valid (permission: write).\nYour token: {hf4}\n"]}]},
            {"cell_type": "markdown", "id": "c2", "metadata": {}, "source": "Nothing secret here."},
        ],
        "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5,
    }
    nb["cells"][0]["source"] = ["from huggingface_hub import login\n", f'login(token="{hf3[:10]}', f'{hf3[10:]}")\n']
    put("notebooks/finetune.ipynb", json.dumps(nb, indent=1))
    expect("notebooks/finetune.ipynb", "huggingface.user-token", hf3, "notebook-split-source")
    expect("notebooks/finetune.ipynb", "huggingface.user-token", hf4, "notebook-output")

    b64 = base64.b64encode(hf5.encode()).decode()
    put("deploy/hf-secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hf\ntype: Opaque\ndata:\n"
        f"  HF_TOKEN: {b64}\n")
    expect("deploy/hf-secret.yaml", "huggingface.user-token", hf5, "k8s-base64")

    gh = "ghp_" + r(36)
    auth = base64.b64encode(f"bot:{gh}".encode()).decode()
    cfg = base64.b64encode(json.dumps({"auths": {"ghcr.io": {"auth": auth}}}).encode()).decode()
    put("deploy/regcred.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\n"
        f"data:\n  .dockerconfigjson: {cfg}\n")
    expect("deploy/regcred.yaml", "github.token", gh, "dockerconfigjson")

    oa = "sk-proj-" + r(74, AN + "_-") + "T3BlbkFJ" + r(74, AN + "_-")
    wb = r(40, "0123456789abcdef")
    put("config/.env", f"OPENAI_API_KEY={oa}\nWANDB_API_KEY={wb}\nHF_HOME=/data/hf\n")
    expect("config/.env", "openai.api-key", oa, "text")
    expect("config/.env", "wandb.api-key", wb, "text")

    kg = r(32, "0123456789abcdef")
    put("config/kaggle.json", json.dumps({"username": "mlteam", "key": kg}))
    expect("config/kaggle.json", "kaggle.api-key", kg, "text")

    put("helm/values.yaml", f"image: ghcr.io/acme/serve\nenv:\n  HF_TOKEN_B64: \"{base64.b64encode(hf6.encode()).decode()}\"\n")
    expect("helm/values.yaml", "huggingface.user-token", hf6, "helm-base64")

    put("docs/README.md",
        "Set `HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` (placeholder).\n"
        "sha256: " + hashlib.sha256(b"demo").hexdigest() + "\nuuid: 3f2b8c1e-9a4d-4e2f-8b7a-1c2d3e4f5a6b\n"
        "Redacted: hf_**********************************\n")

    # A poisoned checkpoint, as raw protocol-2 opcodes: os.system("echo pwned") on load. Never executed.
    payload = b"echo pwned"
    evil = (b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(payload)) + payload + b"q\x01\x85q\x02Rq\x03.")
    put("models/pytorch_model.bin", evil)
    expected.append({"path": "models/pytorch_model.bin", "kind": "model", "evidence": "os.system",
                     "placement": "pickle"})

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    put("models/ok.safetensors", struct.pack("<Q", len(header)) + header + b"\x00" * 8)

    (HERE / "demo.expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
