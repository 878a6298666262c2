#!/usr/bin/env bash
# Create .venv with diffviz and its test tools. CPU-only machines get the CPU build of torch.
# Idempotent: re-running only installs what changed. Uses uv when it can (fast), pip otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

constraints=()
find_links=()
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
if ! command -v nvidia-smi >/dev/null 2>&1; then
  # No GPU: pin the CPU wheel (a local wheel if one lies on disk, else PyTorch's CPU index via the version tag).
  cpu_wheel=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$cpu_wheel" ]; then
    v=$(basename "$cpu_wheel" | sed -E 's/^torch-([0-9.]+)\+cpu.*/\1/')
    echo "torch==$v" > "$VENV.constraints.txt"
  else
    : > "$VENV.constraints.txt"
    export UV_EXTRA_INDEX_URL=${UV_EXTRA_INDEX_URL:-https://download.pytorch.org/whl/cpu}
    export PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL:-https://download.pytorch.org/whl/cpu}
  fi
  constraints=(-c "$VENV.constraints.txt")
fi

if ! command -v uv >/dev/null 2>&1; then
  "$PY" -m pip install -q uv 2>/dev/null || true
fi
if command -v uv >/dev/null 2>&1; then
  [ -x "$VENV/bin/python" ] || uv venv -q -p "$PY" "$VENV"
  uv pip install -q -p "$VENV/bin/python" "${find_links[@]}" "${constraints[@]}" -e ".[dev]"
else
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${find_links[@]}" "${constraints[@]}" -e ".[dev]"
fi
"$VENV/bin/python" - <<'PY'
import torch, diffviz
print(f"diffviz ready: torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
PY
