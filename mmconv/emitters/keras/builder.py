"""IR graph -> Keras 3 source code + weights file, and that code -> a saved model.

One path for every product: :func:`generate` writes the code; ``mmtocode``
saves it, ``mmtomodel`` runs it, and ``mmconvert`` does both through a
temporary folder, so the model file is always exactly what the code builds.

The weights file is a numpy ``.npz`` (read with ``allow_pickle=False``) with
``<layer>/<param>`` arrays in Keras layout for each layer's ``set_weights`` and
``<layer>/<name>`` constants the graph reads; it is written with fixed zip
timestamps so the same graph gives the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmconv import __version__
from mmconv.emitters.base import check_handlers, emit_all, load_families
from mmconv.emitters.base import missing_handlers as base_missing
from mmconv.emitters.codegen import (
    CodeWriter,
    build_kitmodel,
    imported_code,
    literal,
    sanitize,
)
from mmconv.emitters.keras.context import (
    HANDLERS,
    EmitContext,
    Transpose,
    channels_last,
    identity,
)
from mmconv.errors import ModelFormatError, UnsupportedError
from mmconv.fsutil import atomic_path
from mmconv.ir import serde
from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import folded_for_emit

#: The op-family modules; importing them fills HANDLERS.
FAMILIES = ("activation", "conv", "detection", "elementwise", "linalg", "loop", "normalization",
            "pool", "recurrent", "reduce", "shape", "spatial")


def load_handlers() -> None:
    """Import every family module so its handlers register (idempotent)."""
    load_families("mmconv.emitters.keras", FAMILIES)


def missing_handlers() -> list[str]:
    """IR ops with no Keras handler (sorted), for the docs and the coverage test."""
    load_handlers()
    return base_missing(HANDLERS)


@dataclass
class Generated:
    """What :func:`generate` produced for one graph."""

    code: str
    arrays: dict[str, np.ndarray]
    #: every transpose the emitter wrote (model boundary or internal)
    transposes: list[Transpose]
    #: Keras input names (valid identifiers) in graph-input order
    input_names: list[str]
    #: IR value -> (Keras layer holding it, its layout: Keras tensor = IR value transposed
    #: by it), for per-layer verification
    values: dict[str, tuple[str, tuple[int, ...]]]


def input_names(graph: Graph) -> list[str]:
    """The Keras input names :func:`generate` gives the graph's inputs (also the input
    keys of the SavedModel signature), without generating the model."""
    infer_shapes(graph)
    ctx = EmitContext(graph)
    return [ctx.ident(v.name) for v in graph.inputs]


def _boundary_layout(rank: int, nhwc_io: bool) -> tuple[int, ...]:
    return channels_last(rank) if nhwc_io and rank >= 3 else identity(rank)


def generate(graph: Graph, nhwc_io: bool = False) -> Generated:
    """The Keras source of ``graph`` and the arrays of its weights file.

    Every node whose op has no handler, or whose handler cannot express it, is
    collected and reported in one :class:`UnsupportedError`.
    """
    load_handlers()
    infer_shapes(graph)
    # a node computed from weights only has no Keras tensor to start from, and kernels
    # must be static: compute such nodes here (the frontends' passes usually did)
    graph = folded_for_emit(graph)
    check_handlers(graph, HANDLERS, "Keras")
    body = CodeWriter()
    ctx = EmitContext(graph, nhwc_io=nhwc_io, writer=body)
    inputs = []
    for value in graph.inputs:
        if value.rank == 0:
            raise UnsupportedError(f"input {value.name!r}: Keras inputs need a batch axis")
        layout = _boundary_layout(value.rank, nhwc_io)
        ident = ctx.declare_input(value.name, layout)
        shape = tuple(value.shape[p] for p in layout)
        batch = "" if shape[0] is None else f", batch_size={shape[0]}"
        body.line(f"{ident} = keras.Input(shape={literal(shape[1:])}{batch}, "
                  f"dtype={literal(value.dtype)}, name={literal(ident)})")
        inputs.append(ident)
    emit_all(ctx, graph.nodes, "Keras", on_error=ctx.stand_in)
    outputs = []
    for name in graph.outputs:
        want = _boundary_layout(graph.value(name).rank, nhwc_io)
        outputs.append(f"{literal(name)}: {ctx.get(name, want, kind='output')}")
    model_name = sanitize(graph.name, "model")
    # one output is returned as a tensor, as keras.applications models do; several as a
    # dict keyed by the IR output names (OUTPUTS lists them in order either way)
    returned = (outputs[0].split(": ", 1)[1] if len(outputs) == 1
                else f"{{{', '.join(outputs)}}}")
    body.line(f"model = keras.Model(inputs=[{', '.join(inputs)}], "
              f"outputs={returned}, name={literal(model_name)})")
    for layer, keys in ctx.layer_weights:
        arrays = ", ".join(f"weights[{literal(k)}]" for k in keys)
        body.line(f"model.get_layer({literal(layer)}).set_weights([{arrays}])")
    body.line("return model")
    return Generated(_module_text(graph, body, nhwc_io, ctx.uses_cells), ctx.arrays,
                     ctx.transposes, inputs, ctx.held_values())


#: The line of :mod:`.cells` after which its text is pasted into generated code.
CELLS_MARKER = "# -- pasted into generated code from here on"


def cells_code() -> str:
    """The custom cells' source for a generated module (read as text: the emitter must
    not import keras)."""
    text = Path(__file__).with_name("cells.py").read_text(encoding="utf-8")
    start = text.index("\n", text.index(CELLS_MARKER)) + 1
    return text[start:].strip("\n")


def _module_text(graph: Graph, body: CodeWriter, nhwc_io: bool, cells: bool = False) -> str:
    w = CodeWriter()
    boundary = "channels-last (NHWC)" if nhwc_io else "the source's (NCHW for feature maps)"
    for text in (
        f'"""Keras 3 model generated by mmconv {__version__} from an IR graph.',
        "",
        "KitModel(weight_file) builds the functional model and sets its weights.",
        "Inside, feature maps are channels-last; the inputs and outputs are in",
        f"{boundary} layout. weight_file is the .npz written beside this file",
        "(read with allow_pickle=False): '<layer>/<param>' arrays for set_weights",
        "and '<layer>/<name>' constants the graph reads.",
        '"""',
        "",
        "import keras",
        "import numpy as np",
        "from keras import layers, ops",
        "",
        "#: the model's outputs (IR names), in order; one output is returned as a tensor",
        f"OUTPUTS = {literal(list(graph.outputs))}",
        "",
        "",
    ):
        w.line(text)
    if cells:  # what stock layers cannot compute; registered as mmconv>ClassName
        w.line("# custom recurrent cells (mmconv/emitters/keras/cells.py): a .keras file of")
        w.line("# this model loads once they are registered, i.e. after importing this file")
        for line in cells_code().splitlines():
            w.line(line)
        w.line("")
        w.line("")
    w.line("def load_weights(weight_file):")
    with w.indent():
        w.line('"""Every array of the weights file (numpy .npz; nothing is unpickled)."""')
        w.line("with np.load(weight_file, allow_pickle=False) as data:")
        with w.indent():
            w.line("return {key: data[key] for key in data.files}")
    w.line("")
    w.line("")
    w.line("def KitModel(weight_file):")
    with w.indent():
        w.line(f'"""The model of IR graph {sanitize(graph.name, "model")}."""')
        w.line("weights = load_weights(weight_file)")
        for line in body.text().splitlines():
            w.line(line)
    return w.text()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz with fixed timestamps (same arrays -> same bytes), written atomically."""
    serde.save_weights(path, arrays)


def write_code(graph: Graph, code_path: Path, weights_path: Path,
               nhwc_io: bool = False) -> Generated:
    """Generate, then write the code and the weights (each atomically)."""
    gen = generate(graph, nhwc_io)
    write_npz(Path(weights_path), gen.arrays)
    with atomic_path(Path(code_path), suffix=".py") as tmp:
        tmp.write_text(gen.code, encoding="utf-8")
    return gen


# -- running the code --------------------------------------------------------------
def import_keras() -> Any:
    """Keras with the TensorFlow backend (imported only when a model is built or run)."""
    from mmconv.frameworks import import_framework

    return import_framework("keras")


def build_from_code(code_path: Path, weights_path: Path) -> Any:
    """The Keras model the code builds with its weights."""
    return build_with_outputs(code_path, weights_path)[0]


def build_with_outputs(code_path: Path, weights_path: Path) -> tuple[Any, list[str]]:
    """The Keras model the code builds, and the IR names of its outputs (``OUTPUTS``)."""
    import_keras()
    with imported_code(code_path, "keras") as module:
        model = build_kitmodel(module, code_path, weights_path)
        names = getattr(module, "OUTPUTS", None)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelFormatError(f"{code_path}: defines no OUTPUTS list; was it written by "
                               "mmtocode -f keras?")
    return model, names


def build_model(graph: Graph, nhwc_io: bool = False) -> tuple[Any, Generated]:
    """In memory: the Keras model of ``graph`` (tests, verification), via the code."""
    with tempfile.TemporaryDirectory(prefix="mmconv-keras-") as tmp:
        code, weights = Path(tmp) / "model.py", Path(tmp) / "weights.npz"
        gen = write_code(graph, code, weights, nhwc_io)
        return build_from_code(code, weights), gen


def save_keras(model: Any, output_path: Path) -> None:
    """``model.save`` insists on a .keras name: save in a scratch folder, then rename."""
    with atomic_path(output_path) as tmp, \
            tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".mmconv-keras-") as scratch:
        target = Path(scratch) / "model.keras"
        model.save(target)
        os.replace(target, tmp)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A scratch folder beside ``target`` that replaces it on success, else vanishes.

    (:func:`mmconv.fsutil.atomic_path` is for files; a SavedModel is a folder.)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        from mmconv.errors import UsageError

        raise UsageError(f"{target}: exists and is not a folder (a SavedModel is a folder)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_saved_model(model: Any, output_path: Path, output_names: list[str]) -> None:
    """A TF SavedModel with a ``serving_default`` signature: inputs named like the Keras
    inputs (identifiers, as TF requires), outputs keyed by the IR output names."""
    keras = import_keras()
    import tensorflow as tf

    specs = [tf.TensorSpec(tuple(t.shape), t.dtype, name=t.name) for t in model.inputs]

    def serve(*args: Any) -> Any:
        out = model(list(args), training=False)
        # the signature's outputs are keyed by IR name, also for a one-output model
        return out if isinstance(out, dict) else {output_names[0]: out}

    with atomic_dir(output_path) as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", serve, input_signature=specs)
        archive.write_out(str(tmp), verbose=False)
