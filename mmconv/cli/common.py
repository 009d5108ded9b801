"""What every console script shares: MMdnn-compatible argument parsing and error reporting.

Scripts raise :class:`mmconv.errors.MmconvError` for anything the user can fix;
:func:`run` prints it as one line and exits with its code.  ``--debug`` shows
the traceback instead.  Notices (a dropped training output, a layout choice) are
warnings on the ``mmconv`` logger; :func:`run` prints them as ``<prog>: <message>``
on stderr, so library code never prints and library users decide what they see.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mmconv import __version__
from mmconv.errors import MmconvError, ModelFormatError, UsageError
from mmconv.frameworks import install_hint, missing, quiet_tensorflow

if TYPE_CHECKING:
    from mmconv.emitters.base import Emitter
    from mmconv.ir import Graph
    from mmconv.verify.conversion import Verification


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def make_parser(prog: str, description: str) -> Parser:
    """A parser with the options every script has (``--debug``, ``--version``)."""
    parser = Parser(prog=prog, description=description, allow_abbrev=False)
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def parse_input_shapes(values: Sequence[str] | None) -> list[tuple[int, ...]] | None:
    """Parse MMdnn's ``--inputShape 3,224,224 [1,10 ...]``: one comma-separated shape per input.

    Shapes exclude the batch axis, as in MMdnn.  Brackets are tolerated
    (``[3,224,224]``) because MMdnn's docs show both spellings.
    """
    if not values:
        return None
    shapes = []
    for text in values:
        cleaned = text.strip().strip("[]()")
        try:
            dims = tuple(int(d) for d in cleaned.split(",") if d.strip())
        except ValueError:
            raise UsageError(
                f"--inputShape {text!r}: expected comma-separated integers such as 3,224,224"
            ) from None
        if not dims or any(d <= 0 for d in dims):
            raise UsageError(f"--inputShape {text!r}: every dimension must be a positive integer")
        shapes.append(dims)
    return shapes


def split_names(values: Sequence[str] | None) -> list[str] | None:
    """Node-name lists may be given space- or comma-separated (MMdnn accepted both)."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def add_model_pair_flags(parser: Parser, target_help: str) -> None:
    """``-sf/-in/-iw`` (the source model) and ``-df`` (the target framework), as in
    MMdnn's mmconvert; mmconvert and mmverify share them."""
    parser.add_argument("--srcFramework", "-sf", required=True, metavar="FRAMEWORK",
                        help="source framework, e.g. cntk")
    parser.add_argument("--inputNetwork", "-in", metavar="PATH",
                        help="source network file")
    parser.add_argument("--inputWeight", "-iw", metavar="PATH",
                        help="source weights file (for CNTK: the .model file)")
    parser.add_argument("--dstFramework", "-df", required=True, metavar="FRAMEWORK",
                        help=target_help)


def source_path(args: argparse.Namespace) -> Path:
    """The source model file given with -iw or -in (CNTK keeps one file; MMdnn took either)."""
    return Path(args.inputWeight or args.inputNetwork)


def add_source_flags(parser: Parser) -> None:
    """Flags that describe how to read the source model (mmtoir and mmconvert share them)."""
    parser.add_argument(
        "--inputShape", nargs="+", metavar="SHAPE",
        help="shape of each input without the batch axis, e.g. 3,224,224; several inputs "
        "are separated by spaces",
    )
    parser.add_argument(
        "--inNodeName", "-inode", nargs="+", metavar="NAME",
        help="names of the input nodes (default: the model's inputs)",
    )
    parser.add_argument(
        "--dstNodeName", "-node", nargs="+", metavar="NAME",
        help="names of the output nodes (default: the model's outputs, training-only "
        "nodes such as losses dropped)",
    )
    parser.add_argument(
        "--channelsFirstIO", action="store_true",
        help="channels-last sources (Keras, TensorFlow, tf2onnx's ONNX): NCHW model inputs "
        "and outputs "
        "instead of the source's NHWC ones, no boundary transposes (the mirror of "
        "--channelsLastIO, for channels-first targets)",
    )


def add_verify_flags(parser: Parser, verify_flag: bool = False) -> None:
    """Flags of a verification (mmconvert --verify and mmverify share them)."""
    if verify_flag:
        parser.add_argument(
            "--verify", action="store_true",
            help="run the source model (for CNTK: in the CNTK runtime, see MMCONV_CNTK_PYTHON) "
            "and the converted one on the same random inputs and compare every output; exit 1 "
            "on a mismatch (the model is written only if the check could run)",
        )
    parser.add_argument(
        "--layers", action="store_true",
        help="also compare every intermediate value both models expose (by IR name) in graph "
        "order and name the first diverging layer")
    parser.add_argument("--rtol", type=float, metavar="R",
                        help="relative tolerance: max|a-b| <= atol + R * max(1, max|ref|) "
                        "(default 1e-4 for float32)")
    parser.add_argument("--atol", type=float, default=0.0, metavar="A",
                        help="absolute tolerance added to the relative one (default 0)")
    parser.add_argument("--input", metavar="FILE.npz",
                        help="inputs to run instead of seeded random ones: an .npz with one "
                        "array per model input, named like the input (or in_0, in_1 ...)")


def add_cntk_format_flag(parser: Parser) -> None:
    parser.add_argument("--cntkFormat", choices=("v1", "v2"),
                        help="CNTK target: the model file format, v2 (Function.save) or v1 "
                        "(legacy, BrainScript's); default v1 for a .dnn file, else v2")


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeio' else 'a'} {word}"


def check_model_path(emitter: Emitter, path: Path) -> None:
    """Refuse an output name whose suffix belongs to another kind of model (``-f keras
    -o m.pt``): the file written would not be what its name says.

    A target that writes several files from one name (Caffe's ``NAME.prototxt`` +
    ``NAME.caffemodel``, MXNet's ``NAME-symbol.json`` + ``NAME-0000.params``) takes
    ``NAME`` as a prefix, as MMdnn did: any name but another model's suffix.
    """
    from mmconv.emitters import all_emitters

    name = path.name.lower()
    suffix = path.suffix.lower()
    suffixes = emitter.model_suffixes
    owners = {s: e.name for e in reversed(all_emitters().values())
              for s in e.model_suffixes if s}
    if not suffixes or any(s and name.endswith(s) for s in suffixes):
        return
    if suffixes == ("",) or emitter.prefix_name:
        # a folder (a SavedModel) or a name prefix: any name but another model's suffix
        if suffix in owners:
            what = "is a folder" if suffixes == ("",) else "takes a name prefix"
            raise UsageError(f"{path}: {_a(emitter.name)} model {what}, and {suffix} "
                             f"names {_a(owners[suffix])} model; name it without {suffix}")
        return
    other = f"; {suffix} is {_a(owners[suffix])} model (-f/-df {owners[suffix]})" if (
        suffix in owners) else ""
    raise UsageError(f"{path}: {_a(emitter.name)} model file is named "
                     f"{' or '.join('*' + s for s in suffixes)}{other}; "
                     f"e.g. {path.with_suffix(suffixes[0]).name}")


def convert_source(framework: str, network: str | None, weights: str | None,
                   args: argparse.Namespace) -> Graph:
    """Run the frontend for ``framework`` with the shared source flags."""
    from mmconv.frontends import get_frontend

    frontend = get_frontend(framework)
    input_shapes = parse_input_shapes(args.inputShape)
    if not network and not weights:
        raise UsageError("give the source model with -n/--network or -w/--weights")
    for path in (network, weights):
        if path and not Path(path).exists():
            raise UsageError(f"{path}: no such file or directory")
        if path and Path(path).is_file() and Path(path).stat().st_size == 0:
            raise ModelFormatError(f"{path}: the file is empty (0 bytes); was it copied or "
                                   "downloaded completely?")
    options = {}
    if getattr(args, "channelsFirstIO", False):
        if not frontend.channels_last:
            raise UsageError(f"--channelsFirstIO: the {framework} source is not channels-last")
        options["channels_first_io"] = True
    return frontend.convert(
        network,
        weights,
        input_shapes=input_shapes,
        input_names=split_names(args.inNodeName),
        output_names=split_names(args.dstNodeName),
        **options,
    )


class NoticeHandler(logging.Handler):
    """Prints ``mmconv`` log records as ``<prog>: <message>`` lines on the current stderr."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.INFO)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        # sys.stderr is looked up per record (not bound once) so redirections apply
        print(f"{self.prog}: {record.getMessage()}", file=sys.stderr)


def target_options(emitter: Emitter, given: dict[str, object], *, code: bool = False
                   ) -> dict[str, object]:
    """The emitter options set on the command line (``None`` = flag not given).

    A flag the target does not take is a UsageError naming the targets that do,
    read from the emitters' descriptions (no probing of signatures).
    """
    from mmconv.emitters import all_emitters

    options = {k: v for k, v in given.items() if v is not None and v is not False}
    for name in options:
        option = emitter.option(name)
        if option is None or (code and not option.code):
            takers = [e.name for e in all_emitters().values()
                      if (o := e.option(name)) is not None and (o.code or not code)]
            flag = next((o.flag for e in all_emitters().values()
                         if (o := e.option(name)) is not None and o.flag), name)
            raise UsageError(f"{flag} applies to the {', '.join(takers) or 'no'} target"
                             f"{'s' if len(takers) > 1 else ''} only, not {emitter.name}")
    return emitter.check_options(options, code=code)


def run(prog: str, body: Callable[[argparse.Namespace], int | None], parser: Parser,
        argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run ``body`` and turn errors into one line on stderr plus an exit code."""
    args = parser.parse_args(argv)
    quiet_tensorflow()
    logger = logging.getLogger("mmconv")
    handler = NoticeHandler(prog)
    logger.addHandler(handler)
    try:
        return body(args) or 0
    except MmconvError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ImportError as exc:
        # a framework extra that is not installed (torch for -df pytorch ...): say which
        if exc.name is None or install_hint(exc.name) is None:
            return _internal_error(prog, exc, args.debug)
        if args.debug:
            traceback.print_exc()
        print(f"{prog}: error: {missing(exc.name)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader of our output went away (``mmverify ... | head``): nothing to report
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (interpreter exit closes it)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in mmconv, not the user's fault: say so plainly
        return _internal_error(prog, exc, args.debug)
    finally:
        logger.removeHandler(handler)


def _internal_error(prog: str, exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(
        f"{prog}: internal error: {type(exc).__name__}: {exc} "
        "(this is a bug in mmconv; rerun with --debug and report it)",
        file=sys.stderr,
    )
    return 1


def print_verification(result: Verification, model: str) -> None:
    """Print the verification report on stdout; raise its VerificationError (exit 1)
    when the converted model does not reproduce the source."""
    from mmconv.verify.report import failure, report_lines

    for line in report_lines(result):
        print(line)
    error = failure(result, model)
    if error is not None:
        raise error
