"""IR graph -> ``onnx.ModelProto``: graph interface, weights, and the per-node handlers.

Names are kept: graph inputs and outputs keep their IR value names, ONNX nodes
carry their IR node names and initializers their IR weight names, so a user
finds ``conv1`` in the ONNX model where it was in the source.  Dynamic dims
(``None`` in IR shapes) become symbolic dims: ``N`` for the batch axis.
"""

from __future__ import annotations

import importlib

import numpy as np
from onnx import ModelProto, TensorProto, ValueInfoProto, helper, numpy_helper

from mmconv import __version__
from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.errors import IRError, UnsupportedError
from mmconv.ir.core import Graph, Value
from mmconv.ir.infer import infer_shapes

#: Opsets this emitter produces.  7 is where ONNX got numpy broadcasting and
#: count_include_pad; the top is the newest opset whose changes to the ops we
#: emit have been checked against onnxruntime.
MIN_OPSET = 7
MAX_OPSET = 21
#: The default: LayerNormalization is native from 17 and every runtime of the
#: last years (onnxruntime >= 1.12, TensorRT 8.6, OpenVINO) loads it.
DEFAULT_OPSET = 17

#: The op-family modules; importing them fills HANDLERS.
FAMILIES = ("activation", "conv", "elementwise", "linalg", "normalization", "pool", "shape")

#: Name of the symbolic batch dim in the model's interface.
BATCH_DIM = "N"


def load_handlers() -> None:
    """Import every family module so its handlers register (idempotent)."""
    for family in FAMILIES:
        importlib.import_module(f"mmconv.emitters.onnx.{family}")


def check_opset(opset: int | None) -> int:
    """The opset to emit: ``opset`` or the default, validated against the supported range."""
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise UnsupportedError(f"ONNX opset must be an integer, got {opset!r}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedError(
            f"ONNX opset {opset} is not supported; choose one from {MIN_OPSET} to {MAX_OPSET} "
            f"(default {DEFAULT_OPSET})"
        )
    return opset


def _tensor_type(dtype: str) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _value_info(value: Value, dim_names: list[str | None]) -> ValueInfoProto:
    dims: list[int | str | None] = [
        d if d is not None else dim_names[i] for i, d in enumerate(value.shape)
    ]
    return helper.make_tensor_value_info(value.name, _tensor_type(value.dtype), dims)


def _input_info(value: Value) -> ValueInfoProto:
    """Dynamic axis 0 is the batch ``N``; other dynamic axes get a name of their own."""
    names: list[str | None] = [
        BATCH_DIM if i == 0 else f"{value.name}_dim{i}" for i in range(value.rank)
    ]
    return _value_info(value, names)


def _output_info(value: Value) -> ValueInfoProto:
    """A dynamic axis 0 is the batch ``N``; other dynamic axes are left unnamed."""
    names: list[str | None] = [BATCH_DIM if i == 0 else None for i in range(value.rank)]
    return _value_info(value, names)


def _ir_version(opset: int) -> int:
    """The oldest ONNX IR version that can carry ``opset`` (older readers load it), but at
    least 4, from which initializers need not be listed as graph inputs."""
    return max(4, helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))


def build_model(graph: Graph, opset: int | None = None) -> ModelProto:
    """The ONNX model of an IR graph at ``opset`` (default :data:`DEFAULT_OPSET`).

    Shapes are (re)inferred first (cheap, idempotent), so handlers can rely on
    every value's shape and a hand-built graph needs no extra step.
    Every node whose op or attributes the opset cannot express is collected and
    reported in one :class:`UnsupportedError`, so a user sees all problems at once.
    The model is not checked here; :func:`emit_model` runs ``onnx.checker``.
    """
    opset = check_opset(opset)
    load_handlers()
    infer_shapes(graph)
    ctx = EmitContext(graph, opset)
    problems: list[str] = []
    for node in graph.nodes:
        try:
            ctx.emit(node)
        except UnsupportedError as exc:
            problems.append(str(exc))
    if problems:
        if len(problems) == 1:
            raise UnsupportedError(problems[0])
        raise UnsupportedError(
            f"{len(problems)} nodes cannot be emitted as ONNX: " + "; ".join(problems)
        )
    # Only weights the emitted nodes read: a folded per-element BN leaves its raw
    # statistics unused, and ONNX tools warn about dead initializers.
    used = {name for n in ctx.nodes for name in n.input if name} | set(graph.outputs)
    initializers: list[TensorProto] = [
        numpy_helper.from_array(
            np.ascontiguousarray(array).reshape(ctx.reshaped_weights.get(name, array.shape)),
            name,
        )
        for name, array in graph.weights.items()
        if name in used
    ]
    initializers.extend(ctx.constants)
    for out in graph.outputs:
        if out not in graph.values:
            raise IRError(f"graph output {out!r} is not produced by any node")
    onnx_graph = helper.make_graph(
        ctx.nodes,
        graph.name,
        [_input_info(v) for v in graph.inputs],
        [_output_info(graph.value(o)) for o in graph.outputs],
        initializer=initializers,
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=_ir_version(opset),
        producer_name="mmconv",
        producer_version=__version__,
    )
    for key in sorted(graph.metadata):
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = str(graph.metadata[key])
    return model


def missing_handlers() -> list[str]:
    """IR ops without an ONNX handler (CI keeps this empty)."""
    from mmconv.ir.registry import all_schemas

    load_handlers()
    return [s.name for s in all_schemas() if s.name not in HANDLERS]
