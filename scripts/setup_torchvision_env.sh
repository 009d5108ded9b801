#!/usr/bin/env bash
# A separate venv with torchvision, for scripts/make_onnx_fixtures.py only (NOT used by the
# tests or CI): PyPI's torchvision does not import beside the CPU torch 2.13.0 of the
# project's venv ("operator torchvision::nms does not exist"), so the fixture generator
# runs with its own torch/torchvision pair.  Large (a full torch); made once.
# Prints the env's python on stdout.  MMCONV_TV_ENV overrides the location.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env="${MMCONV_TV_ENV:-$HOME/.cache/mmconv/torchvision-env}"
if [ ! -x "$env/bin/python" ] || ! "$env/bin/python" -c "import torchvision, onnxscript, onnx" \
    >/dev/null 2>&1; then
  python3 -m venv "$env" >&2
  log="$(mktemp)"
  if ! "$env/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" onnx \
      onnxscript onnxruntime numpy >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
"$env/bin/python" -c "import torchvision" >&2
echo "$env/bin/python"
