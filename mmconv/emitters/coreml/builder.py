"""IR graph -> the Python source of a coremltools MIL program (and the arrays it reads).

Shapes: Core ML gets fixed shapes.  A dynamic batch axis (``None`` at axis 0
of an input) becomes ``batch`` (default 1, the batch Core ML apps run; Vision
and the Core ML runtime feed one image at a time); any other dynamic axis is
refused.  The IR is re-inferred with that batch, on a copy, so every handler
sees static shapes and the caller's graph is untouched.

Names: inputs and outputs keep their IR names, sanitized to identifiers
(:class:`~mmconv.emitters.codegen.Namer`); the originals are recorded in the
model's metadata (``mmconv.inputs``/``mmconv.outputs``) and as the features'
short descriptions.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from mmconv import __version__
from mmconv.emitters.base import emit_all
from mmconv.emitters.codegen import CodeWriter, literal
from mmconv.emitters.coreml.context import HANDLERS, MIL_DTYPES, EmitContext, Ref
from mmconv.errors import IRError, UnsupportedError, UsageError
from mmconv.ir.core import Graph, Value
from mmconv.ir.infer import infer_shapes

#: The op-family modules; importing them fills HANDLERS.
FAMILIES = ("activation", "conv", "detection", "elementwise", "linalg", "normalization", "pool",
            "recurrent", "reduce", "shape", "spatial")

#: IR ops that run over a time axis (a dynamic one gets its own message: fix it with
#: --inputShape)
RECURRENT_OPS = ("LSTM", "GRU", "RNN", "Scan")

#: The MIL opset the program is written in: iOS15 / macOS12, the first with ML Programs
#: (every op used here exists there; newer targets only add ops).  _ENTRY_POINTS spells it
#: too (minimum_deployment_target).
OPSET = "iOS15"


def load_handlers() -> None:
    """Import every family module so its handlers register (idempotent)."""
    for family in FAMILIES:
        importlib.import_module(f"mmconv.emitters.coreml.{family}")


def missing_handlers() -> list[str]:
    """IR ops without a Core ML handler (refused per node; listed in docs/coreml.md)."""
    from mmconv.ir.registry import all_schemas

    load_handlers()
    return [s.name for s in all_schemas() if s.name not in HANDLERS]


@dataclass
class Emitted:
    """What emitting one graph gives: source, arrays, and what the program must hold."""

    source: str
    arrays: dict[str, np.ndarray]
    #: weights-dict key -> IR weight name, for those stored unchanged
    weight_keys: dict[str, str]
    #: (MIL op type, output identifier) in program order
    ops: list[tuple[str, str]]
    #: const identifier -> weights-dict key
    const_keys: dict[str, str]
    #: IR input/output name -> (identifier, static shape, IR dtype)
    inputs: dict[str, tuple[str, tuple[int, ...], str]] = field(default_factory=dict)
    outputs: dict[str, tuple[str, tuple[int, ...], str]] = field(default_factory=dict)
    #: IR value name -> (identifier, static shape) for every value the program names
    values: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)


def check_batch(batch: object) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"Core ML batch must be a positive integer, got {batch!r}")
    return batch


def specialize(graph: Graph, batch: int) -> Graph:
    """A copy of ``graph`` whose inputs have axis 0 fixed to ``batch`` when dynamic,
    with shapes inferred again; nodes and weight arrays are shared, not copied."""
    fixed = Graph(graph.name)
    recurrent = any(node.op in RECURRENT_OPS for node in graph.nodes)
    for value in graph.inputs:
        shape = list(value.shape)
        if shape and shape[0] is None:
            shape[0] = batch
        if any(d is None for d in shape) and recurrent and len(shape) >= 2 and shape[1] is None:
            raise UnsupportedError(
                f"input {value.name!r} has a dynamic time axis {list(value.shape)}; the Core ML "
                "target needs a fixed number of time steps: pass --inputShape with it first "
                "(the shape without the batch, e.g. --inputShape "
                f"{','.join(['T', *('?' if d is None else str(d) for d in shape[2:])])} for T "
                "steps; a CNTK sequence input takes the same spelling)")
        if any(d is None for d in shape):
            raise UnsupportedError(
                f"input {value.name!r} has dynamic axes {list(value.shape)} besides the batch; "
                "the Core ML target needs static shapes (re-export the model with fixed sizes)")
        fixed.add_input(value.name, value.dtype, shape)
    for name, array in graph.weights.items():
        fixed.add_weight(name, array)
    fixed.nodes = list(graph.nodes)
    fixed.outputs = list(graph.outputs)
    fixed.metadata = dict(graph.metadata)
    fixed.rebuild_names()
    infer_shapes(fixed)
    return fixed


#: IR dtype -> the dtype a Core ML model input or output carries it as.  Core ML arrays
#: hold float32 or int32 here (float16 features need iOS16): int64 values travel as int32,
#: bool as 0/1 int32, float16 as float32; the program casts at the boundary.
IO_DTYPES = {"float32": "float32", "float16": "float32", "int32": "int32", "int64": "int32",
             "bool": "int32"}
#: IR dtypes whose inputs/outputs get a cast op at the boundary -> MIL dtype inside
BOUNDARY_CASTS = {"bool": "bool", "float16": "fp16"}


def io_dtype(value: Value, what: str) -> str:
    """The Core ML dtype of a model input/output, or an UnsupportedError."""
    dtype = IO_DTYPES.get(value.dtype)
    if dtype is None:
        raise UnsupportedError(
            f"{what} {value.name!r} is {value.dtype}; Core ML model {what}s hold float32, "
            "float16 or int32 (int64 and bool as int32)")
    return dtype


def emit(graph: Graph, batch: int = 1) -> Emitted:
    """Run every node's handler; one UnsupportedError lists every node Core ML refuses."""
    load_handlers()
    batch = check_batch(batch)
    g = specialize(graph, batch)
    ctx = EmitContext(g)
    problems: list[str] = []
    inputs: dict[str, tuple[str, tuple[int, ...], str]] = {}
    for value in g.inputs:
        try:
            dtype = io_dtype(value, "input")
        except UnsupportedError as exc:
            problems.append(str(exc))
            dtype = value.dtype
        inputs[value.name] = (ctx.mil_name(value.name), ctx.static_shape(value.name), dtype)
        if value.dtype in BOUNDARY_CASTS:
            ctx.input_cast(value.name, BOUNDARY_CASTS[value.dtype])
    emit_all(ctx, g.nodes, "Core ML", problems)
    outputs: dict[str, tuple[str, tuple[int, ...], str]] = {}
    returned: list[Ref] = []
    for name in g.outputs:
        if name not in g.values:
            raise IRError(f"graph output {name!r} is not produced by any node")
        dtype = io_dtype(g.value(name), "output")
        ref = ctx.var(name)
        if g.value(name).dtype in BOUNDARY_CASTS:
            mil_dtype = MIL_DTYPES[dtype]
            ref = ctx.call("cast", hint=f"{ref.ident}_{mil_dtype}", x=ref, dtype=mil_dtype)
        elif name in outputs or name in inputs or name in g.weights:
            # Core ML outputs are op results with their own name: a graph input, a weight or a
            # repeated output gets an identity op.
            ref = ctx.call("identity", hint=f"{ref.ident}_out", x=ref)
        returned.append(ref)
        outputs[name] = (ctx.mil[ref.ident], ctx.static_shape(name), dtype)
    values = {name: (ctx.mil_name(name), ctx.static_shape(name))
              for node in g.nodes for name in node.outputs}
    source = _source(g, ctx, inputs, outputs, returned)
    return Emitted(source, ctx.arrays, ctx.weight_keys, ctx.ops, ctx.const_keys, inputs, outputs,
                   values)


def _source(g: Graph, ctx: EmitContext, inputs: dict[str, tuple[str, tuple[int, ...], str]],
            outputs: dict[str, tuple[str, tuple[int, ...], str]], returned: list[Ref]) -> str:
    w = CodeWriter()
    w.line(f'"""A Core ML ML Program, generated by mmconv {__version__} (mmtocode -f coreml); '
           "the graph is GRAPH.")
    w.line()
    w.line("KitModel(weight_file) builds the MIL program with coremltools' MIL builder;")
    w.line("convert(program, path) writes it as an .mlpackage (ML Program) or .mlmodel")
    w.line("(NeuralNetwork), with float32 compute precision.")
    w.line('"""')
    w.line()
    w.line("import json")
    w.line("from pathlib import Path")
    w.line()
    w.line("import coremltools as ct")
    w.line("import numpy as np")
    w.line("from coremltools.converters.mil import Builder as mb")
    w.line("from coremltools.converters.mil.mil import Function, Program, types")
    w.line()
    w.line("#: the IR graph's name")
    w.line(f"GRAPH = {literal(g.name)}")
    w.line("#: IR name -> (Core ML name, shape, IR dtype) of each model input and output")
    w.line(f"INPUTS = {literal({k: list(v) for k, v in inputs.items()})}")
    w.line(f"OUTPUTS = {literal({k: list(v) for k, v in outputs.items()})}")
    w.line()
    w.line()
    w.line("def build_program(weights):")
    with w.indent():
        w.line('"""The MIL program; ``weights`` maps the keys used below to numpy arrays."""')
        w.line("inputs = {")
        with w.indent():
            for ident, shape, dtype in inputs.values():
                w.line(f"{literal(ident)}: mb.placeholder(shape={literal(tuple(shape))}, "
                       f"dtype=types.{MIL_DTYPES.get(dtype, 'fp32')}),")
        w.line("}")
        w.line(f"with Function(inputs, opset_version=ct.target.{OPSET}) as main:")
        with w.indent():
            for ir_name, (mil, _, _) in inputs.items():
                if g.value(ir_name).dtype not in BOUNDARY_CASTS:  # others: ctx.input_cast
                    w.line(f"{ctx.ident(ir_name)} = main.inputs[{literal(mil)}]")
            for line in ctx.lines:
                w.line(line)
            w.line(f"main.set_outputs([{', '.join(r.ident for r in returned)}])")
        w.line("program = Program()")
        w.line('program.add_function("main", main)')
        w.line("return program")
    w.line()
    w.line()
    for line in _ENTRY_POINTS.splitlines():
        w.line(line)
    return w.text()


#: The generated file's entry points: the same text for every model (no model string in it).
_ENTRY_POINTS = '''\
def KitModel(weight_file):
    """The MIL program with the weights of ``weight_file`` (an npz archive)."""
    with np.load(weight_file, allow_pickle=False) as archive:
        weights = {key: archive[key] for key in archive.files}
    return build_program(weights)


def convert(program, path):
    """Write ``program`` as a Core ML model: an ML Program for ``.mlpackage``,
    a NeuralNetwork for ``.mlmodel``; float32 compute, the program's ops unchanged
    (an empty pass pipeline), IR names recorded in the metadata."""
    if str(path).endswith(".mlmodel"):
        model = ct.convert(program, convert_to="neuralnetwork",
                           pass_pipeline=ct.PassPipeline.EMPTY, skip_model_load=True)
    else:
        model = ct.convert(program, convert_to="mlprogram",
                           pass_pipeline=ct.PassPipeline.EMPTY,
                           compute_precision=ct.precision.FLOAT32,
                           minimum_deployment_target=ct.target.iOS15,
                           skip_model_load=True)
    spec = model.get_spec()
    for feature, name in zip(spec.description.input, INPUTS):
        feature.shortDescription = name
    for feature, (name, (_, shape, _)) in zip(spec.description.output, OUTPUTS.items()):
        feature.shortDescription = name
        if not feature.type.multiArrayType.shape:  # NeuralNetwork outputs: declare the shape
            feature.type.multiArrayType.shape.extend(shape)
    meta = spec.description.metadata.userDefined
    meta["mmconv.inputs"] = json.dumps({k: v[0] for k, v in INPUTS.items()})
    meta["mmconv.outputs"] = json.dumps({k: v[0] for k, v in OUTPUTS.items()})
    meta.pop("com.github.apple.coremltools.conversion_date", None)  # same bytes every day
    weights_dir = model.weights_dir if spec.WhichOneof('Type') == 'mlProgram' else None
    ct.models.MLModel(spec, weights_dir=weights_dir, skip_model_load=True).save(str(path))
    # protobuf maps (metadata, op attributes) are written in an order that varies
    # between processes: write the spec again with sorted keys, so the same
    # program always gives the same bytes
    spec_file = (Path(path) / 'Data' / 'com.apple.CoreML' / 'model.mlmodel'
                 if weights_dir else Path(path))
    saved = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    spec_file.write_bytes(saved.SerializeToString(deterministic=True))
'''
