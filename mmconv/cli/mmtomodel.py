"""``mmtomodel``: run generated code with its weights and save a native model file.

Same flags as MMdnn's ``mmtomodel``::

    mmtomodel -f pytorch -in model.py -iw weights.npy -o model.pt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmconv.cli.common import (
    add_cntk_format_flag,
    check_model_path,
    make_parser,
    run,
    target_options,
)
from mmconv.emitters import code_framework, get_emitter
from mmconv.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mmtomodel", "Build a native model file from code made by mmtocode.")
    parser.add_argument("--framework", "-f", required=True, metavar="FRAMEWORK",
                        help="target framework of the code")
    parser.add_argument("--inputNetwork", "-in", "-n", required=True, metavar="PATH",
                        help="the code written by mmtocode")
    parser.add_argument("--inputWeight", "-iw", "-w", required=True, metavar="PATH",
                        help="the weights written by mmtocode")
    parser.add_argument("--outputModel", "-o", "-om", required=True, metavar="PATH",
                        help="the model file to write")
    add_cntk_format_flag(parser)
    return parser


def _main(args: argparse.Namespace) -> int:
    emitter = get_emitter(args.framework)
    for path in (args.inputNetwork, args.inputWeight):
        if not Path(path).exists():
            raise UsageError(f"{path}: no such file")
    options = target_options(emitter, {"format": args.cntkFormat})
    _check_code_target(Path(args.inputNetwork), args.framework)
    check_model_path(emitter, Path(args.outputModel))
    emitter.code_to_model(Path(args.inputNetwork), Path(args.inputWeight),
                          Path(args.outputModel), **options)
    for path in emitter.outputs(Path(args.outputModel)):
        print(f"wrote {path}")
    return 0


def _check_code_target(code: Path, framework: str) -> None:
    """Code mmtocode wrote for another framework is a usage error, said before it runs."""
    with code.open("rb") as fh:
        head = fh.read(1 << 16).decode("utf-8", errors="replace")
    target = get_emitter(framework).name
    written_for = code_framework(head, get_emitter(framework))
    if written_for is not None:
        raise UsageError(
            f"{code} is {written_for} code (mmtocode -f {written_for}), not {target} code; "
            f"run mmtomodel -f {written_for}, or mmtocode -f {target} first")


def main(argv: Sequence[str] | None = None) -> int:
    return run("mmtomodel", _main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
