#!/usr/bin/env bash
# Install mmconv and run the main job on the bundled example: a CNTK model
# (examples/convnet.model, made by real CNTK 2.7) converted to ONNX, then run
# in onnxruntime and compared with the outputs CNTK itself computed.
# No CNTK needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
pip_install -e ".[onnxruntime]"
mkdir -p out
set -x
mmtoir -f cntk -n examples/convnet.model -d out/convnet
mmconvert -sf cntk -iw examples/convnet.model -df onnx -om out/convnet.onnx
python examples/check_onnx.py out/convnet.onnx examples/convnet.io.npz
