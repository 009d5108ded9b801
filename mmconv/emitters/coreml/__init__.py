"""The Core ML emitter: IR graph -> ``.mlpackage`` (ML Program) or ``.mlmodel`` (NeuralNetwork).

Every IR node becomes calls of coremltools' MIL builder (``mb.conv(...)``),
written as Python source (:mod:`.builder`); ``mmconvert -df coreml`` runs that
source and converts the program with coremltools (:mod:`.runtime`), and
``mmtocode -f coreml`` writes the same source as a file, so what a user reads
is what made the model.  Float32 compute precision throughout (coremltools'
ML Programs default to float16); the program's ops are kept as built (an empty
pass pipeline) so the file holds exactly the ops the IR implies and Core ML's
own compiler optimizes on the device.

coremltools cannot run a model off macOS: :mod:`.check` checks a written
model structurally and compares its stored weights with the IR's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.emitters.base import Emitter, Option
from mmconv.emitters.coreml.builder import Emitted, emit, load_handlers, missing_handlers
from mmconv.emitters.coreml.context import HANDLERS, EmitContext
from mmconv.errors import UsageError
from mmconv.fsutil import atomic_path
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "HANDLERS", "EmitContext", "Emitted", "code_to_model", "emit",
           "emit_code", "emit_model", "missing_handlers", "offline_runner", "structural_check"]

load_handlers()


def _options(options: dict[str, Any]) -> int:
    return int(EMITTER.check_options(options, code=True).get("batch", 1))


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> Emitted:
    """Write ``graph`` as ``NAME.mlpackage`` or ``NAME.mlmodel`` (by suffix), atomically.

    ``batch`` (default 1) is the fixed size given to a dynamic batch axis.
    Returns what was emitted (the checker compares the file with it).
    """
    from mmconv.emitters.coreml import runtime

    path = Path(output_path)
    runtime.model_type(path)
    batch = _options(options)
    emitted = emit(graph, batch)
    namespace = runtime.run_code(emitted.source, f"<Core ML program of {graph.name!r}>")
    program = runtime.build(namespace, emitted.arrays, f"graph {graph.name!r}", batch)
    runtime.save(namespace, program, path)
    return emitted


def emit_code(graph: Graph, code_path: str | os.PathLike[str],
              weights_path: str | os.PathLike[str], **options: Any) -> None:
    """Write the MIL-builder source to ``code_path`` and the arrays it reads (npz) to
    ``weights_path``; both atomically, the weights first."""
    emitted = emit(graph, _options(options))
    with atomic_path(Path(weights_path), suffix=".npz") as tmp_w, \
            atomic_path(Path(code_path), suffix=".py") as tmp_c:
        with tmp_w.open("wb") as out:
            np.savez(out, **emitted.arrays)
        tmp_c.write_text(emitted.source, encoding="utf-8")


def code_to_model(code_path: str | os.PathLike[str], weights_path: str | os.PathLike[str],
                  output_path: str | os.PathLike[str], **options: Any) -> None:
    """Run code from :func:`emit_code`: ``KitModel(weights)`` builds the program, its
    ``convert`` writes the model (atomically).  Takes no option: the code fixed every
    shape when it was written (give ``batch`` to mmtocode)."""
    if options:
        raise UsageError(f"the Core ML code fixed its shapes when mmtocode wrote it; option(s) "
                         f"{', '.join(sorted(options))} apply to mmtocode, not mmtomodel")
    from mmconv.emitters.codegen import imported_code
    from mmconv.emitters.coreml import runtime

    path = Path(output_path)
    runtime.model_type(path)
    runtime.import_coremltools()
    with imported_code(Path(code_path), "coreml") as module:
        if not callable(getattr(module, "convert", None)):
            raise UsageError(f"{code_path}: defines no convert(program, path); was it written "
                             "by mmtocode -f coreml?")
        program = runtime.build(vars(module), str(weights_path), str(code_path), None)
        runtime.save(vars(module), program, path)


def structural_check(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> str:
    """What ``mmconvert --verify`` can check of a Core ML file off macOS (see :mod:`.check`):
    the file against the program emitted again from ``graph``; one summary line, or a
    VerificationError naming the first difference."""
    from mmconv.emitters.coreml.check import check_model

    return check_model(Path(output_path), emit(graph, _options(options))).summary()


def offline_runner(output_path: Path) -> tuple[Any, str] | None:
    """For ``--verify``: an ``.mlpackage``'s program computed in numpy (see
    :mod:`.evaluate`), and the notice that says so; None for an ``.mlmodel``."""
    if Path(output_path).suffix.lower() != ".mlpackage":
        return None
    from mmconv.emitters.coreml.evaluate import NOTICE, run_saved_program

    def run(path: Path, graph: Graph, inputs: Any) -> list[np.ndarray]:
        return run_saved_program(path, graph, inputs)[0]

    return run, NOTICE.format(ops="conv, pooling, batch_norm, lstm/gru/rnn and the other ops "
                                  "coremltools has no value inference for")


EMITTER = Emitter(
    name="coreml",
    summary="a Core ML .mlpackage (ML Program) or .mlmodel (NeuralNetwork) built with "
            "coremltools' MIL builder; checked structurally (running it needs macOS)",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    aliases=("core-ml", "mlmodel", "mlpackage"),
    model_suffixes=(".mlpackage", ".mlmodel"),
    # mmtocode's default weights file: an npz archive (loads without pickle)
    weights_suffix=".npz",
    options=(Option("batch", int, "the fixed size of a dynamic batch axis (default 1)",
                    code=True),),
    structural_check=structural_check,
    offline_runner=offline_runner,
)
