#!/usr/bin/env bash
# Build the real-tree benchmark corpus: a virtualenv with a few large, real packages (torch CPU, numpy, scipy,
# scikit-learn, transformers), whose site-packages is then scanned side by side with the peers:
#
#   bash bench/setup_realtree.sh [VENV]          # default /tmp/vf-realtree (about 1.4 GB, 1-5 minutes)
#   python3 bench/peers.py "$(bash bench/setup_realtree.sh --print)" --no-truth --out bench/results/realtree.md
#
# The tree scanned is a hard-linked copy of site-packages at a neutral path ($TREE, default
# /tmp/vf-realtree-tree; no extra disk space): Betterleaks' default allowlist skips any path containing
# "venv/" or "site-packages/" (it reads 0 bytes of the venv itself), and veritensor-fast's default excludes
# skip site-packages below a root; every tool must read the same bytes. peers.py adds --no-default-excludes
# to veritensor-fast when the flag exists (nested build/ and dist/ directories in packages are scanned too).
#
# torch comes from a local CPU wheel when one is there (/opt/wheels/torch-*+cpu-*.whl, or $TORCH_WHEEL), else
# from the configured package index. Nothing here is a dependency of veritensor-fast.
set -euo pipefail
VENV=${VENV:-/tmp/vf-realtree}
TREE=${TREE:-/tmp/vf-realtree-tree}
if [[ "${1:-}" == "--print" ]]; then
  echo "$TREE"
  exit 0
fi
[[ -n "${1:-}" ]] && VENV=$1
PY=${PYTHON:-python3}
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
TORCH=${TORCH_WHEEL:-$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -1 || true)}
TORCH=${TORCH:-torch}
# shellcheck disable=SC2086
"$VENV/bin/pip" install -q $TORCH
"$VENV/bin/pip" install -q numpy scipy scikit-learn transformers
SP=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$TREE"
cp -al "$SP" "$TREE" 2>/dev/null || cp -a "$SP" "$TREE"   # hard links where the filesystem allows
"$VENV/bin/pip" list --format=freeze 2>/dev/null | grep -iE '^(torch|numpy|scipy|scikit-learn|transformers)==' >&2
find "$TREE" -type f | wc -l | xargs echo "files:" >&2
du -sb "$TREE" | cut -f1 | xargs echo "bytes:" >&2
echo "$TREE"
