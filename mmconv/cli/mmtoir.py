"""``mmtoir``: convert a source model to mmconv IR (``PREFIX.pb``, ``PREFIX.json``, ``PREFIX.npy``).

Same flags as MMdnn's ``mmtoir``::

    mmtoir -f cntk -n ResNet50_ImageNet_CNTK.model -d resnet50_cntk
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mmconv.cli.common import add_source_flags, convert_source, make_parser, run
from mmconv.ir import serde
from mmconv.progress import Stages


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mmtoir", "Convert a trained model to mmconv IR.")
    parser.add_argument("--srcFramework", "-f", required=True, metavar="FRAMEWORK",
                        help="source framework, e.g. cntk")
    parser.add_argument("--network", "-n", "-in", metavar="PATH",
                        help="network file (for CNTK: the .model/.dnn file)")
    parser.add_argument("--weights", "-w", "-iw", metavar="PATH",
                        help="weights file, for frameworks that keep them apart")
    parser.add_argument("--dstPath", "-d", "-o", required=True, metavar="PREFIX",
                        help="output prefix: writes PREFIX.pb, PREFIX.json and PREFIX.npy")
    add_source_flags(parser)
    return parser


def _main(args: argparse.Namespace) -> int:
    with Stages(["reading the source model", "writing the IR"]) as stage:
        stage("reading the source model")
        graph = convert_source(args.srcFramework, args.network, args.weights, args)
        stage("writing the IR")
        paths = serde.save(graph, args.dstPath)
    size = sum(a.nbytes for a in graph.weights.values()) / 1e6
    print(
        f"IR: {len(graph.nodes)} nodes, {len(graph.weights)} weights ({size:.2f} MB), "
        f"inputs {[v.name for v in graph.inputs]}, outputs {graph.outputs}"
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmtoir", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
