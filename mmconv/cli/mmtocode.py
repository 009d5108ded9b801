"""``mmtocode``: turn mmconv IR into source code for a target framework plus its weights.

Same flags as MMdnn's ``mmtocode``::

    mmtocode -f pytorch -n resnet50_cntk.pb -w resnet50_cntk.npy -d model.py -dw weights.npy
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmconv.cli.common import make_parser, run, target_options
from mmconv.emitters import get_emitter
from mmconv.ir import serde


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mmtocode", "Generate target-framework code from mmconv IR.")
    parser.add_argument("--dstFramework", "-f", required=True, metavar="FRAMEWORK",
                        help="target framework, e.g. onnx")
    parser.add_argument("--IRModelPath", "-n", "-in", required=True, metavar="PATH",
                        help="IR graph file (PREFIX.pb)")
    parser.add_argument("--IRWeightPath", "-w", "-iw", metavar="PATH",
                        help="IR weights file (PREFIX.npy; default: beside the graph)")
    parser.add_argument("--dstModelPath", "-d", "-o", required=True, metavar="PATH",
                        help="where to write the code (.py)")
    parser.add_argument("--dstWeightPath", "-dw", "-ow", metavar="PATH",
                        help="where to write the target's weights (default: beside the code)")
    parser.add_argument("--opset", type=int, metavar="N",
                        help="ONNX opset the code builds (ONNX target only)")
    return parser


def default_weights(graph_path: str) -> str:
    """``PREFIX.npy`` beside ``PREFIX.pb`` (MMdnn users often pass only the graph)."""
    return str(Path(graph_path).with_suffix(".npy"))


def _main(args: argparse.Namespace) -> int:
    emitter = get_emitter(args.dstFramework)
    options = target_options(emitter, {"opset": args.opset}, code=True)
    weights = args.IRWeightPath or default_weights(args.IRModelPath)
    graph = serde.load(args.IRModelPath, weights)
    code = Path(args.dstModelPath)
    # a target whose weights file is not npz (PyTorch's state_dict) names its own suffix
    dst_weights = (Path(args.dstWeightPath) if args.dstWeightPath
                   else code.with_suffix(emitter.weights_suffix))
    emitter.emit_code(graph, code, dst_weights, **options)
    print(f"wrote {code}")
    print(f"wrote {dst_weights}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmtocode", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
