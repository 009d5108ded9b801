"""IR graph -> ``onnx.ModelProto``: graph interface, weights, and the per-node handlers.

Names are kept: graph inputs and outputs keep their IR value names, ONNX nodes
carry their IR node names and initializers their IR weight names, so a user
finds ``conv1`` in the ONNX model where it was in the source.  Dynamic dims
(``None`` in IR shapes) become symbolic dims: ``N`` for the batch axis.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import onnx
from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto, helper

from mmconv import __version__
from mmconv.emitters.base import emit_all, load_families
from mmconv.emitters.base import missing_handlers as base_missing
from mmconv.emitters.onnx.context import HANDLERS, EmitContext
from mmconv.emitters.protowire import field_header, little_endian
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
FAMILIES = ("activation", "conv", "detection", "elementwise", "linalg", "loop", "normalization",
            "pool", "recurrent", "reduce", "shape", "spatial")

#: Name of the symbolic batch dim in the model's interface.
BATCH_DIM = "N"


def load_handlers() -> None:
    """Import every family module so its handlers register (idempotent)."""
    load_families("mmconv.emitters.onnx", FAMILIES)


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


#: An IR weight as it goes into the model: its name and array (in the stored shape).
Weights = list[tuple[str, np.ndarray]]


def build_model(graph: Graph, opset: int | None = None) -> ModelProto:
    """The ONNX model of an IR graph at ``opset`` (default :data:`DEFAULT_OPSET`).

    For in-memory use (tests, verification).  :func:`emit_model` writes the same
    model without ever holding it in memory as one message.  The model is not
    checked here; see :func:`check_skeleton`.
    """
    model, weights = build_skeleton(graph, opset)
    for name, array in weights:
        fill_tensor(model.graph.initializer.add(), name, array)
    return model


def build_skeleton(graph: Graph, opset: int | None = None) -> tuple[ModelProto, Weights]:
    """The model without the IR's weights as initializers, and those weights.

    Shapes are (re)inferred first (cheap, idempotent), so handlers can rely on
    every value's shape and a hand-built graph needs no extra step.  Every node
    whose op or attributes the opset cannot express is collected and reported
    in one :class:`UnsupportedError`, so a user sees all problems at once.
    Constants the handlers made (shapes, axes, folded BN) are in the skeleton;
    the weights follow them when the model is completed or written.
    """
    opset = check_opset(opset)
    load_handlers()
    infer_shapes(graph)
    ctx = EmitContext(graph, opset)
    emit_all(ctx, graph.nodes, "ONNX")
    for out in graph.outputs:
        if out not in graph.values:
            raise IRError(f"graph output {out!r} is not produced by any node")
    # Filled in place: helper.make_graph/make_model copy every message twice.
    model = ModelProto()
    model.ir_version = _ir_version(opset)
    model.opset_import.add(domain="", version=opset)
    model.producer_name = "mmconv"
    model.producer_version = __version__
    onnx_graph = model.graph
    onnx_graph.name = graph.name
    onnx_graph.node.extend(ctx.nodes)
    onnx_graph.input.extend(_input_info(v) for v in graph.inputs)
    onnx_graph.output.extend(_output_info(graph.value(o)) for o in graph.outputs)
    onnx_graph.initializer.extend(ctx.constants)
    for key in sorted(graph.metadata):
        if key == "source_values":  # mmverify's map into the source model; not this model's
            continue
        model.metadata_props.add(key=key, value=str(graph.metadata[key]))
    # Only weights the emitted nodes read: a folded per-element BN leaves its raw
    # statistics unused, and ONNX tools warn about dead initializers.
    used = _reads(ctx.nodes) | set(graph.outputs)
    weights = [
        (name, array.reshape(ctx.reshaped_weights.get(name, array.shape)))
        for name, array in graph.weights.items()
        if name in used
    ]
    return model, weights


def _reads(nodes: Iterable[NodeProto]) -> set[str]:
    """Every name ``nodes`` read, including what their subgraphs (a Scan body) read from
    the outer scope."""
    names: set[str] = set()
    for node in nodes:
        names.update(i for i in node.input if i)
        for attr in node.attribute:
            for sub in (*attr.graphs, *([attr.g] if attr.HasField("g") else [])):
                names |= _reads(sub.node)
    return names


def check_skeleton(model: ModelProto, weights: Weights) -> None:
    """``onnx.checker.check_model(full_check=True)`` without copying the weights.

    The weights are declared as typed graph inputs instead of initializers:
    the checker and shape inference see every name, dtype and shape, and
    only the constants' values (kept in the skeleton) drive inference.  The
    weight bytes themselves are written by :func:`write_model`, which the
    tests check on real files.
    """
    probe = ModelProto()
    probe.CopyFrom(model)
    probe.graph.input.extend(
        helper.make_tensor_value_info(name, _tensor_type(array.dtype.name), array.shape)
        for name, array in weights
    )
    onnx.checker.check_model(probe, full_check=True)


#: protobuf readers (onnx.load, onnxruntime) refuse a message of 2 GiB or more.
PROTOBUF_LIMIT = 2**31 - 2**20


def check_size(graph: Graph) -> None:
    """Refuse, before any work, a graph whose weights cannot fit one ONNX protobuf file."""
    size = sum(int(a.nbytes) for a in graph.weights.values())
    if size >= PROTOBUF_LIMIT:
        raise UnsupportedError(
            f"graph {graph.name!r} has {size / 2**30:.1f} GiB of weights; ONNX files over 2 GiB "
            "need external data, which mmconv does not write yet"
        )


def checked(graph: Graph, model: ModelProto, weights: Weights) -> None:
    """:func:`check_skeleton`, with a failure turned into one UnsupportedError line:
    a model we emit that fails the checker is our bug, and the user should say so."""
    try:
        check_skeleton(model, weights)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedError(
            f"the ONNX model emitted for graph {graph.name!r} at opset "
            f"{model.opset_import[0].version} fails onnx.checker ({first}); this is "
            "likely an mmconv bug, please report it with the model"
        ) from exc


def fill_tensor(tensor: TensorProto, name: str, array: np.ndarray) -> None:
    """An initializer as little-endian raw bytes, written into the model's own message."""
    tensor.CopyFrom(_tensor_header(name, array))
    tensor.raw_data = little_endian(array).tobytes()


def _tensor_header(name: str, array: np.ndarray) -> TensorProto:
    tensor = TensorProto()
    tensor.dims.extend(array.shape)
    tensor.data_type = _tensor_type(array.dtype.name)
    tensor.name = name
    return tensor


#: Field numbers in onnx.proto: ModelProto.graph, GraphProto.initializer,
#: TensorProto.raw_data.
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def write_model(out: BinaryIO, model: ModelProto, weights: Weights) -> None:
    """Write ``model`` completed by ``weights`` as one ModelProto, streaming the weights.

    Serializing a whole model copies its weights twice (into TensorProtos, then
    into the output bytes); here each weight goes from its numpy buffer straight
    to the file, so writing costs no memory beyond the IR.  The bytes are a
    standard ModelProto with one graph field; only the field order differs from
    SerializeToString's (the graph comes last, the initializers after the
    outputs), which every protobuf reader accepts.
    """
    graph_bytes = model.graph.SerializeToString()
    entries = []
    graph_len = len(graph_bytes)
    for name, array in weights:
        data = little_endian(array)
        head = _tensor_header(name, data).SerializeToString() + field_header(_TENSOR_RAW_DATA,
                                                                         data.nbytes)
        tensor_len = len(head) + data.nbytes
        entry_head = field_header(_GRAPH_INITIALIZER, tensor_len) + head
        entries.append((entry_head, data))
        graph_len += len(entry_head) + data.nbytes
    rest = ModelProto()
    rest.CopyFrom(model)
    rest.ClearField("graph")
    out.write(rest.SerializeToString())
    out.write(field_header(_MODEL_GRAPH, graph_len))
    out.write(graph_bytes)
    for entry_head, data in entries:
        out.write(entry_head)
        out.write(memoryview(data.reshape(-1)).cast("B"))


def missing_handlers() -> list[str]:
    """IR ops without an ONNX handler (CI keeps this empty)."""
    load_handlers()
    return base_missing(HANDLERS)
