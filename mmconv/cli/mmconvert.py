"""``mmconvert``: source model to target model in one step, through IR in a temporary folder.

Same flags as MMdnn's ``mmconvert``::

    mmconvert -sf cntk -iw ResNet50_ImageNet_CNTK.model -df onnx -om resnet50.onnx

The IR is written to and read back from a temporary folder (so the one-step
path exercises exactly the files the step-by-step path would), which is
removed on success and on failure.  The IR weights are mapped, not read
(:func:`mmconv.ir.serde.load_weights`), and the source model is released
first, so the model is in memory about once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mmconv.cli.common import (
    add_cntk_format_flag,
    add_model_pair_flags,
    add_source_flags,
    add_verify_flags,
    check_model_path,
    convert_source,
    make_parser,
    print_verification,
    run,
    source_path,
    target_options,
)
from mmconv.emitters import get_emitter
from mmconv.errors import UsageError
from mmconv.fsutil import staging
from mmconv.ir import serde
from mmconv.progress import Stages
from mmconv.verify.conversion import load_inputs, verify_conversion


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mmconvert", "Convert a model between frameworks in one step.")
    add_model_pair_flags(parser, "target framework, e.g. onnx")
    parser.add_argument("--outputModel", "-om", required=True, metavar="PATH",
                        help="the model file to write")
    add_source_flags(parser)
    parser.add_argument("--opset", type=int, metavar="N",
                        help="ONNX opset of the output (ONNX target only)")
    parser.add_argument("--channelsLastIO", action="store_true",
                        help="Keras/TensorFlow targets: NHWC model inputs and outputs instead "
                        "of the source's NCHW ones (no boundary transposes)")
    add_cntk_format_flag(parser)
    add_verify_flags(parser, verify_flag=True)
    return parser


def _main(args: argparse.Namespace) -> int:
    emitter = get_emitter(args.dstFramework)
    given = [flag for flag, value in (("--layers", args.layers), ("--input", args.input),
                                      ("--rtol", args.rtol), ("--atol", args.atol))
             if value not in (None, False, 0.0)]
    if given and not args.verify:
        raise UsageError(f"{', '.join(given)} set how --verify checks the model; give "
                         "--verify too")
    # target options are checked before the (possibly long) source conversion
    options = target_options(emitter, {"opset": args.opset, "nhwc_io": args.channelsLastIO,
                                       "format": args.cntkFormat})
    check_model_path(emitter, Path(args.outputModel))
    names = ["reading the source model", "writing the IR", f"writing the {args.dstFramework} model"]
    output = Path(args.outputModel)
    with Stages(names + (["verifying"] if args.verify else [])) as stage:
        stage(names[0])
        graph = convert_source(args.srcFramework, args.inputNetwork, args.inputWeight, args)
        inputs = load_inputs(graph, Path(args.input)) if args.input else None
        # With --verify the model is written to a staging folder beside the output and
        # moved into place only once it could be checked: a verification that cannot
        # run (no CNTK runtime, no onnxruntime) leaves no file behind.
        with tempfile.TemporaryDirectory(prefix="mmconv-") as tmp, \
                staging(output, args.verify) as written:
            stage(names[1])
            pb_path, _, npy_path = serde.save(graph, Path(tmp) / "ir")
            # The frontend's graph goes before the IR is loaded: its arrays view the
            # source file's mapping (or are copies), the IR's arrays view the IR file's
            # mapping, and holding both would hold the model twice.
            del graph
            graph = serde.load(pb_path, npy_path)
            stage(names[2])
            emitter.emit_model(graph, written, **options)
            if args.verify:
                stage("verifying")
                result = verify_conversion(
                    graph, (args.srcFramework.lower(), source_path(args)),
                    (emitter.name, written), rtol=args.rtol, atol=args.atol,
                    inputs=inputs, layers=args.layers)
    files = emitter.outputs(output)
    print(f"wrote {files[0]} ({len(graph.nodes)} nodes; inputs "
          f"{[v.name for v in graph.inputs]}, outputs {graph.outputs})")
    for path in files[1:]:
        print(f"wrote {path}")
    if args.verify:
        print_verification(result, f"{args.outputModel} was written but")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmconvert", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
