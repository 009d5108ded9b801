#!/usr/bin/env bash
# Install mmconv with its test dependencies, build the real CNTK 2.7 and MXNet
# 1.9.1 runtimes the tests check against, lint, and run the test suite.  Extra arguments go
# to pytest (e.g. scripts/test.sh -k onnx).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
# torch is pinned to the CPU build that this project's machines carry on disk
# (any other version pulls GBs of CUDA); TensorFlow comes from PyPI.  OpenCV 4 (the
# caffe extra) runs the Caffe emitter's output.
pip_install -e ".[test,tensorflow,caffe]" "torch==2.13.0"

if cntk_python="$(bash scripts/setup_cntk_env.sh)"; then
  export MMCONV_CNTK_PYTHON="$cntk_python"
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: the CNTK runtime could not be built; CI needs it" >&2
  exit 1
else
  echo "test.sh: no CNTK runtime (needs Python 3.6); CNTK-backed tests will be skipped" >&2
fi

# MXNet 1.9.1 (retired, pins numpy < 1.24) runs the MXNet emitter's output in its own venv.
if mxnet_python="$(bash scripts/setup_mxnet_env.sh)"; then
  export MMCONV_MXNET_PYTHON="$mxnet_python"
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: the MXNet runtime could not be built; CI needs it" >&2
  exit 1
else
  echo "test.sh: no MXNet runtime (needs Python 3.11); MXNet-backed tests will be skipped" >&2
fi

ruff check .
python scripts/gen_docs.py --check
python -m pytest "$@"
