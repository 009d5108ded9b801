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
    add_source_flags,
    convert_source,
    make_parser,
    run,
    target_options,
)
from mmconv.emitters import get_emitter
from mmconv.errors import VerificationError
from mmconv.ir import serde
from mmconv.progress import Stages
from mmconv.verify.compare import OutputComparison
from mmconv.verify.conversion import verify_conversion


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mmconvert", "Convert a model between frameworks in one step.")
    parser.add_argument("--srcFramework", "-sf", required=True, metavar="FRAMEWORK",
                        help="source framework, e.g. cntk")
    parser.add_argument("--inputNetwork", "-in", metavar="PATH",
                        help="source network file")
    parser.add_argument("--inputWeight", "-iw", metavar="PATH",
                        help="source weights file (for CNTK: the .model file)")
    parser.add_argument("--dstFramework", "-df", required=True, metavar="FRAMEWORK",
                        help="target framework, e.g. onnx")
    parser.add_argument("--outputModel", "-om", required=True, metavar="PATH",
                        help="the model file to write")
    add_source_flags(parser)
    parser.add_argument("--opset", type=int, metavar="N",
                        help="ONNX opset of the output (ONNX target only)")
    parser.add_argument("--channelsLastIO", action="store_true",
                        help="Keras/TensorFlow targets: NHWC model inputs and outputs instead "
                        "of the source's NCHW ones (no boundary transposes)")
    parser.add_argument(
        "--verify", action="store_true",
        help="run the source model (for CNTK: in the CNTK runtime, see MMCONV_CNTK_PYTHON) "
        "and the converted one on the same random inputs and compare every output; exit 1 "
        "on a mismatch",
    )
    return parser


def _main(args: argparse.Namespace) -> int:
    emitter = get_emitter(args.dstFramework)
    # target options are checked before the (possibly long) source conversion
    options = target_options(emitter, {"opset": args.opset, "nhwc_io": args.channelsLastIO})
    names = ["reading the source model", "writing the IR", f"writing the {args.dstFramework} model"]
    with Stages(names + (["verifying"] if args.verify else [])) as stage:
        stage(names[0])
        graph = convert_source(args.srcFramework, args.inputNetwork, args.inputWeight, args)
        with tempfile.TemporaryDirectory(prefix="mmconv-") as tmp:
            stage(names[1])
            pb_path, _, npy_path = serde.save(graph, Path(tmp) / "ir")
            # The frontend's graph goes before the IR is loaded: its arrays view the
            # source file's mapping (or are copies), the IR's arrays view the IR file's
            # mapping, and holding both would hold the model twice.
            del graph
            graph = serde.load(pb_path, npy_path)
            stage(names[2])
            emitter.emit_model(graph, Path(args.outputModel), **options)
        if args.verify:
            stage("verifying")
            results = verify_conversion(
                graph, (args.srcFramework.lower(), Path(args.inputWeight or args.inputNetwork)),
                (emitter.name, Path(args.outputModel)))
    written = " + ".join(str(p) for p in emitter.outputs(Path(args.outputModel)))
    print(f"wrote {written} ({len(graph.nodes)} nodes; inputs "
          f"{[v.name for v in graph.inputs]}, outputs {graph.outputs})")
    return _report(results, args) if args.verify else 0


def _report(results: list[OutputComparison], args: argparse.Namespace) -> int:
    for result in results:
        print(f"verify {result}")
    failed = [r.name for r in results if not r.passed]
    if failed:
        raise VerificationError(
            f"{args.outputModel} was written but does not reproduce the source model on "
            f"outputs {failed} (see the report above)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmconvert", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
