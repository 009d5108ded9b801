"""What every console script shares: MMdnn-compatible argument parsing and error reporting.

Scripts raise :class:`mmconv.errors.MmconvError` for anything the user can fix;
:func:`run` prints it as one line and exits with its code.  ``--debug`` shows
the traceback instead.  Notices (a dropped training output, a layout choice) are
warnings on the ``mmconv`` logger; :func:`run` prints them as ``<prog>: <message>``
on stderr, so library code never prints and library users decide what they see.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mmconv import __version__
from mmconv.errors import MmconvError, UsageError

if TYPE_CHECKING:
    from mmconv.emitters.base import Emitter
    from mmconv.ir import Graph


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
        help="channels-last sources (Keras, TensorFlow): NCHW model inputs and outputs "
        "instead of the source's NHWC ones, no boundary transposes (the mirror of "
        "--channelsLastIO, for channels-first targets)",
    )


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
    options = {}
    if getattr(args, "channelsFirstIO", False):
        if "channels_first_io" not in inspect.signature(frontend.convert).parameters:
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
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in mmconv, not the user's fault: say so plainly
        if args.debug:
            traceback.print_exc()
        print(
            f"{prog}: internal error: {type(exc).__name__}: {exc} "
            "(this is a bug in mmconv; rerun with --debug and report it)",
            file=sys.stderr,
        )
        return 1
    finally:
        logger.removeHandler(handler)
