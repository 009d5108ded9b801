#!/usr/bin/env python3
"""Run a converted ONNX model on the inputs stored beside a CNTK example and compare.

    python examples/check_onnx.py out/convnet.onnx examples/convnet.io.npz

``convnet.io.npz`` holds inputs (``in_0``...) and the outputs real CNTK 2.7
computed for them (``out_0``...), so the check needs no CNTK.  Exit status 1
if any output differs by more than max|a-b| <= 1e-4 * max(1, max|ref|).
"""

from __future__ import annotations

import sys

import numpy as np

from mmconv.verify.compare import compare
from mmconv.verify.onnx_runner import run_onnx


def main(onnx_path: str, io_path: str) -> int:
    with np.load(io_path, allow_pickle=False) as io:
        inputs = [io[f"in_{i}"] for i in range(sum(k.startswith("in_") for k in io.files))]
        refs = [io[f"out_{i}"] for i in range(sum(k.startswith("out_") for k in io.files))]
    outputs = run_onnx(onnx_path, inputs)
    ok = True
    for i, (ref, got) in enumerate(zip(refs, outputs, strict=True)):
        result = compare(f"output {i}", ref, got)
        print(f"onnxruntime vs CNTK 2.7, {result}")
        ok &= result.passed
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
