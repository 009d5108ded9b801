"""``mmverify``: check an existing converted model against its source, per output and per layer.

::

    mmverify -sf cntk -iw ResNet50_ImageNet_CNTK.model -df onnx -im resnet50.onnx --layers

The source is converted to IR in memory (that is how mmverify knows the
inputs, the outputs and the IR names both models keep); then both models run
on the same seeded random inputs (or ``--input FILE.npz``) and the report
``mmconvert --verify`` prints is printed.  ``--layers`` also compares every
intermediate value both sides expose and names the first diverging layer.
Exit 0 when everything is within tolerance, 1 when not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmconv.cli.common import (
    add_model_pair_flags,
    add_source_flags,
    add_verify_flags,
    convert_source,
    make_parser,
    print_verification,
    run,
    source_path,
)
from mmconv.errors import UsageError
from mmconv.progress import Stages
from mmconv.verify.conversion import load_inputs, verify_conversion


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mmverify", "Compare a converted model with its source model.")
    add_model_pair_flags(parser, "framework of the converted model, e.g. onnx")
    parser.add_argument("--convertedModel", "-im", "-om", required=True, metavar="PATH",
                        help="the converted model file (as mmconvert -om wrote it)")
    add_source_flags(parser)
    add_verify_flags(parser)
    return parser


def _main(args: argparse.Namespace) -> int:
    converted = Path(args.convertedModel)
    if not converted.exists():
        raise UsageError(f"{converted}: no such file or directory")
    with Stages(["reading the source model", "running both models"]) as stage:
        stage("reading the source model")
        graph = convert_source(args.srcFramework, args.inputNetwork, args.inputWeight, args)
        inputs = load_inputs(graph, Path(args.input)) if args.input else None
        stage("running both models")
        result = verify_conversion(
            graph, (args.srcFramework.lower(), source_path(args)),
            (args.dstFramework.lower(), converted), rtol=args.rtol, atol=args.atol,
            inputs=inputs, layers=args.layers)
    print_verification(result, str(converted))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmverify", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
