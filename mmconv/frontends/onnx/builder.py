"""Validated ONNX model -> IR :class:`Graph`: the driver around the op converters.

Steps: list every node the frontend cannot convert (no converter for the op at
the model's opset, another domain, or an attribute value a converter's check
refuses) and fail once with all of them; declare the inputs (a dynamic first
axis stays dynamic, the batch); then walk the nodes in order: a node whose
inputs are all known at conversion time and whose op computes shapes is
evaluated (:mod:`mmconv.frontends.onnx.known`), every other node goes to its
converter.  Graph outputs keep their ONNX names (sanitized); the ONNX names
of inputs and outputs are recorded in the metadata for ``--verify``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UnsupportedError, UsageError
from mmconv.frontends.base import BuildContext, UnsupportedOps, finish_graph_keeping
from mmconv.frontends.onnx import known as kn
from mmconv.frontends.onnx.converters import CONVERTERS
from mmconv.frontends.onnx.names import node_base_name, sanitize
from mmconv.frontends.onnx.reader import IR_DTYPES, OnnxModel, first_line, tensor_array
from mmconv.ir.core import Graph
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes.layout import channels_first_boundaries
from mmconv.progress import progress

#: The default ONNX operator domain's spellings (other domains are not converted).
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class OnnxNode:
    """One ONNX node as converters see it: op, IR name, input/output names, attributes."""

    proto: Any
    name: str
    attrs: dict[str, Any]

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, index: int) -> str:
        """Input ``index``'s ONNX name, or "" when absent."""
        return self.proto.input[index] if index < len(self.proto.input) else ""


def parse_attrs(model: OnnxModel, proto: Any) -> dict[str, Any]:
    """Attribute values as Python values (strings decoded, tensors as arrays)."""
    from onnx import helper

    attrs: dict[str, Any] = {}
    for a in proto.attribute:
        if a.type == a.TENSOR:
            attrs[a.name] = tensor_array(model.path, a.t)
        elif a.type in (a.GRAPH, a.GRAPHS, a.SPARSE_TENSOR, a.TENSORS, a.TYPE_PROTO,
                        a.TYPE_PROTOS):
            attrs[a.name] = a  # left raw; no converter reads these
        elif a.ref_attr_name:
            raise ModelFormatError(f"{model.path}: node {proto.name!r} refers to a function "
                                   f"attribute {a.ref_attr_name!r} outside a function")
        else:
            value = helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif isinstance(value, list):
                value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in value]
            attrs[a.name] = value
    return attrs


class OnnxContext(BuildContext):
    """What an ONNX converter works with: the model, the graph, the name maps."""

    def __init__(self, model: OnnxModel, graph: Graph) -> None:
        super().__init__(graph)
        self.model = model
        #: ONNX value name -> IR value name (runtime values and weights made so far)
        self.values: dict[str, str] = {}
        #: ONNX value name -> value known at conversion time (initializers, shape math)
        self.known: dict[str, kn.Known] = {
            name: kn.Known.static(a) for name, a in model.arrays.items()}
        self._scope: str | None = None

    @property
    def opset(self) -> int:
        return self.model.opset

    @property
    def path(self) -> str:
        return self.model.path

    def where(self, node: OnnxNode) -> str:
        """``<file>: <op> <name>``, the start of every error about one node."""
        return f"{self.path}: {node.op} {node.proto.name or node.name!r}"

    # -- inputs ------------------------------------------------------------------------
    def static(self, onnx_name: str) -> np.ndarray | None:
        """The array of an input known at conversion time and independent of the batch."""
        if not onnx_name:
            return None
        k = self.known.get(onnx_name)
        return k.a if k is not None and k.is_static else None

    def need_static(self, node: OnnxNode, index: int, what: str) -> np.ndarray | None:
        """A static input (shape, axes, pads ...), None when absent; a runtime one is refused."""
        name = node.input(index)
        if not name:
            return None
        array = self.static(name)
        if array is None:
            raise UnsupportedError(f"{self.where(node)}: {what} computed at run time is not "
                                   "supported (mmconv needs it at conversion time)")
        return array

    def x(self, node: OnnxNode, index: int, param: str | None = None,
          broadcast: bool = False) -> str:
        """The IR value for input ``index`` (a known value becomes a weight
        ``<node>/<param>``); "" when the input is absent.

        ``broadcast``: the consumer broadcasts its operands (elementwise ops), so a
        known value that is the same for every sample of a batch-sized first axis
        (``ConstantOfShape(Shape(x))``, ``Expand(c, Shape(x))``) may stand in as one
        sample, ``[1, ...]``.
        """
        name = node.input(index)
        if not name:
            return ""
        if name in self.values:
            return self.values[name]
        k = self.known.get(name)
        if k is None:
            raise ModelFormatError(f"{self.where(node)}: input {name!r} is used before it is "
                                   "computed")
        if not k.is_static:
            sample = k.batch_sample() if broadcast else None
            if sample is None:
                raise UnsupportedError(f"{self.where(node)}: input {name!r} depends on the "
                                       "batch size in a way mmconv cannot express statically")
            weight = self.cached_weight(name, node.name, param or f"in{index}", sample,
                                        key="sample")
            self.values[name] = weight
            return weight
        array = k.a
        if array.dtype.name not in IR_DTYPES.values():
            raise UnsupportedError(f"{self.where(node)}: constant {name!r} has dtype "
                                   f"{array.dtype.name}, which the IR cannot hold")
        weight = self.cached_weight(name, node.name, param or f"in{index}", array)
        self.values[name] = weight
        return weight

    # -- outputs -----------------------------------------------------------------------
    def set(self, node: OnnxNode, value: str, index: int = 0) -> None:
        """Output ``index`` of ``node`` is IR value ``value``."""
        out = node.proto.output[index] if index < len(node.proto.output) else ""
        if out:
            self.values[out] = value

    def simple(self, node: OnnxNode, op: str, n_inputs: int | None = None,
               params: Sequence[str] = (), broadcast: bool = False, **attrs: object) -> str:
        """One IR node computing the ONNX node's first output from its inputs in order
        (``broadcast``: an elementwise op, see :meth:`x`)."""
        count = len(node.inputs) if n_inputs is None else n_inputs
        ins = [self.x(node, i, params[i] if i < len(params) else None, broadcast)
               for i in range(count)]
        out = self.add(op, ins, node.name, **attrs)
        self.set(node, out)
        return out

    def batch_sized(self, node: OnnxNode, index: int, like: str, param: str) -> str | None:
        """Input ``index`` as a runtime value with ``like``'s dynamic batch, when it is a
        batch-sized constant every sample shares (``cls_token.expand(B, -1, -1)``): its one
        sample plus zeros taken from ``like`` (Slice to one element per sample, times 0).
        None when the input is not such a constant."""
        k = self.known.get(node.input(index))
        sample = k.batch_sample() if k is not None and not k.is_static else None
        like_shape = self.shape(like)
        if sample is None or not like_shape or like_shape[0] is not None \
                or len(like_shape) != sample.ndim:
            return None
        weight = self.cached_weight(node.input(index), node.name, param, sample, key="sample")
        rank = len(like_shape)
        one = self.add("Slice", [like], f"{node.name}/{param}_batch",
                       starts=(0,) * (rank - 1), ends=(1,) * (rank - 1),
                       axes=tuple(range(1, rank)))
        zero = self.constant(f"{node.name}/{param}_zero", np.zeros((), self.dtype(like)))
        zeros = self.add("Mul", [one, zero], f"{node.name}/{param}_zeros")
        return self.add("Add", [zeros, weight], f"{node.name}/{param}_expanded")

    def reshape(self, x: str, shape: Sequence[int | None], name: str) -> str:
        """Reshape IR value ``x`` to ``shape`` where ``None`` is the batch-dependent dim."""
        src = self.shape(x)
        if tuple(src) == tuple(shape):
            return x
        target: list[int] = []
        free = 0
        for i, d in enumerate(shape):
            if d is not None:
                target.append(int(d))
            elif i < len(src) and src[i] is None:
                target.append(0)
            else:
                target.append(-1)
                free += 1
        if free > 1:
            raise UnsupportedError(f"{self.path}: {name}: a reshape that moves the batch axis")
        return self.add("Reshape", [x], name, shape=tuple(target))

    def node_name(self, proto: Any) -> str:
        """The readable IR name of a node (see :mod:`mmconv.frontends.onnx.names`); a
        scope every node shares (tf2onnx's ``model_1/``) is left out."""
        if self._scope is None:
            firsts = {n.name.split("/", 1)[0] for n in self.model.graph.node
                      if "/" in n.name and not n.name.startswith("/")}
            named = [n for n in self.model.graph.node if "/" in n.name]
            self._scope = (firsts.pop() + "/") if len(firsts) == 1 and len(named) > 1 else ""
        name = proto.name
        if self._scope and name.startswith(self._scope):
            name = name[len(self._scope):]
        inits = [i for i in proto.input if i in self.model.arrays]
        return self.unique_name(node_base_name(name, proto.op_type, inits))


# -- validation ---------------------------------------------------------------------------
def subgraph_reads(proto: Any) -> set[str]:
    """The outer-scope names a node's subgraphs (a Scan body) read: what their nodes use
    that the subgraph neither receives, holds nor computes (a loop body may read any
    value of the enclosing graph by name, not only its node's inputs)."""
    reads: set[str] = set()
    for a in proto.attribute:
        for g in ([a.g] if a.type == a.GRAPH else list(a.graphs) if a.type == a.GRAPHS else []):
            own = {i.name for i in g.input} | {t.name for t in g.initializer} | {
                o for n in g.node for o in n.output}
            for n in g.node:
                reads |= {i for i in n.input if i and i not in own}
                reads |= subgraph_reads(n) - own
            reads |= {o.name for o in g.output if o.name not in own}
    return reads


def _used(model: OnnxModel, output_names: Sequence[str]) -> list[Any]:
    """The nodes the outputs depend on, in file order (ONNX requires topological order);
    what a node's subgraphs read from the outer scope counts as its inputs."""
    producer = {o: n for n in model.graph.node for o in n.output if o}
    keep: set[int] = set()
    stack = [producer[o] for o in output_names if o in producer]
    while stack:
        n = stack.pop()
        if id(n) in keep:
            continue
        keep.add(id(n))
        stack.extend(producer[i] for i in [*n.input, *subgraph_reads(n)] if i in producer)
    return [n for n in model.graph.node if id(n) in keep]


#: Ops with a subgraph that a converter takes (If is refused; a Loop that is not a
#: for-loop over a sequence is refused by its converter).
LOOPS = frozenset({"Scan", "Loop"})


def check_supported(model: OnnxModel, nodes: list[Any]) -> None:
    """One error listing every node the frontend cannot convert, with counts (a Scan's
    body nodes too)."""
    missing = UnsupportedOps()
    _check_nodes(model, nodes, missing, in_body=False)
    missing.raise_if_any(model.path, "ONNX ops mmconv cannot convert",
                         "see docs/onnx-source.md for what is supported")


def _check_nodes(model: OnnxModel, nodes: Sequence[Any], missing: UnsupportedOps,
                 in_body: bool) -> None:
    for proto in nodes:
        name = proto.name or (proto.output[0] if len(proto.output) else proto.op_type)
        if proto.domain not in DEFAULT_DOMAINS:
            missing.record(f"{proto.domain}.{proto.op_type}", name)
            continue
        bodies = [a.g for a in proto.attribute if a.type == a.GRAPH]
        if any(a.type == a.GRAPHS for a in proto.attribute) or (
                bodies and proto.op_type not in LOOPS):
            missing.record(f"{proto.op_type} (control flow)", name)
            continue
        if bodies and in_body:
            missing.record(f"{proto.op_type} (a loop inside a loop body)", name)
            continue
        if CONVERTERS.get(proto.op_type, model.opset) is None:
            versions = CONVERTERS.versions(proto.op_type)
            what = proto.op_type + (f" (opset {model.opset}; mmconv has it from opset "
                                    f"{versions[0]})" if versions else "")
            missing.record(what, name)
            continue
        check = CONVERTERS.check(proto.op_type, model.opset)
        if check is not None:
            try:
                qualifier = check(parse_attrs(model, proto), model.opset)
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                raise ModelFormatError(f"{model.path}: node {name!r} ({proto.op_type}) has "
                                       f"malformed attributes ({first_line(exc)})") from None
            if qualifier:
                missing.record(f"{proto.op_type}({qualifier})", name)
                continue
        for body in bodies:
            _check_nodes(model, body.node, missing, in_body=True)


# -- inputs and outputs -------------------------------------------------------------------
def _declare_inputs(ctx: OnnxContext, input_shapes: list[tuple[int, ...]] | None,
                    input_names: list[str] | None) -> list[str]:
    model = ctx.model
    inits = set(model.arrays)
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if input_names:
        known_names = [vi.name for vi in inputs]
        unknown = [n for n in input_names if n not in known_names]
        if unknown:
            raise UsageError(f"{model.path}: no input named {', '.join(map(repr, unknown))} "
                             f"(inputs: {', '.join(known_names)})")
    given: dict[str, tuple[int, ...]] = {}
    if input_shapes is not None:
        names = input_names or [vi.name for vi in inputs]
        if len(input_shapes) != len(names):
            raise UsageError(f"{model.path}: {len(input_shapes)} input shapes given for "
                             f"{len(names)} inputs ({', '.join(names)})")
        given = dict(zip(names, input_shapes, strict=True))
    source_names = []
    for vi in inputs:
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedError(f"{model.path}: input {vi.name!r} is not a tensor "
                                   "(sequences, maps and optionals are not supported)")
        t = vi.type.tensor_type
        if t.elem_type not in IR_DTYPES:
            raise UnsupportedError(f"{model.path}: input {vi.name!r} has element type "
                                   f"{t.elem_type}, which the IR cannot hold")
        if not t.HasField("shape"):
            raise UsageError(f"{model.path}: input {vi.name!r} has no shape; give it with "
                             "--inputShape")
        dims: list[int | None] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0
                                  else None for d in t.shape.dim]
        shape = given.get(vi.name)
        if shape is not None:
            shape = tuple(shape)
            if len(shape) == len(dims) - 1:
                shape = (dims[0], *shape)
            ok = len(shape) == len(dims) and all(
                d is None or s is None or d == s for d, s in zip(dims, shape, strict=True))
            if not ok:
                raise UsageError(f"{model.path}: input {vi.name!r} has shape "
                                 f"{['?' if d is None else d for d in dims]} in the model, "
                                 f"--inputShape gave {list(shape)}")
            dims = list(shape)
        free = [i for i, d in enumerate(dims) if d is None and i > 0]
        if free == [1] and len(dims) >= 3 and _recurrent(model):
            free = []  # [batch, time, ...] into a recurrent layer: time may stay dynamic
        if free:
            raise UsageError(
                f"{model.path}: input {vi.name!r} has free dimensions at axes {free} "
                f"({['?' if d is None else d for d in dims]}); only the first (batch) axis may "
                "stay dynamic: give the shape without the batch axis with --inputShape")
        name = ctx.unique_name(sanitize(vi.name, "input"))
        ctx.graph.add_input(name, IR_DTYPES[t.elem_type], tuple(dims))
        ctx.values[vi.name] = name
        source_names.append(vi.name)
    return source_names


def _recurrent(model: OnnxModel) -> bool:
    """Whether the model has recurrent layers, whose inputs' time axis may stay dynamic.

    Shape sub-graphs are evaluated with the batch and the time set together (both
    differ between the two runs), so a value depending on the time is never taken
    for a static one: it is used only where a dynamic axis is copied in place (a
    Reshape's 0), and refused elsewhere like a batch-dependent one."""
    return any(n.op_type in ("LSTM", "GRU", "RNN", "Scan", "Loop") for n in model.graph.node)


def _rename_value(graph: Graph, old: str, new: str) -> None:
    """Give a node's output the name ``new`` (graph outputs keep the source's names)."""
    for node in graph.nodes:
        node.inputs = [new if i == old else i for i in node.inputs]
        if old in node.outputs:
            node.outputs = [new if o == old else o for o in node.outputs]
            if node.name == old:
                node.name = new
    graph.outputs = [new if o == old else o for o in graph.outputs]
    value = graph.values.pop(old, None)
    if value is not None:
        graph.values[new] = type(value)(new, value.dtype, value.shape)
    graph.rebuild_names()


def _name_outputs(ctx: OnnxContext, outputs: list[str]) -> None:
    graph = ctx.graph
    produced = {o for n in graph.nodes for o in n.outputs}
    for i, onnx_name in enumerate(outputs):
        ir = graph.outputs[i]
        want = sanitize(onnx_name, "output")
        if ir == want or ir not in produced or graph.outputs.count(ir) > 1:
            continue
        if want in graph.values or any(want in n.outputs for n in graph.nodes):
            continue
        _rename_value(graph, ir, want)


# -- the driver ---------------------------------------------------------------------------
def _fold(ctx: OnnxContext, proto: Any) -> bool:
    """Evaluate a node whose inputs are all known (shape arithmetic); False if it is not one."""
    if proto.op_type not in kn.FOLDABLE or proto.domain not in DEFAULT_DOMAINS:
        return False
    if proto.op_type == "Shape" or proto.op_type == "Size":
        src = proto.input[0]
        if src in ctx.known:
            k = ctx.known[src]
            shapes = (k.a.shape, k.b.shape)
        elif src in ctx.values:
            shape = ctx.shape(ctx.values[src])
            if proto.op_type == "Size":
                shapes = (tuple(kn.BATCHES[0] if d is None else d for d in shape),
                          tuple(kn.BATCHES[1] if d is None else d for d in shape))
            else:
                full = kn.shape_known(shape)
                shapes = (tuple(full.a.tolist()), tuple(full.b.tolist()))
        else:
            return False
        results = []
        for s in shapes:
            dummy = np.lib.stride_tricks.as_strided(np.zeros(1, np.int8), shape=s,
                                                    strides=(0,) * len(s))
            results.append(kn.evaluate(ctx.path, proto, ctx.opset, [dummy])[0])
        ctx.known[proto.output[0]] = kn.Known(results[0], results[1])
        return True
    ins = [n for n in proto.input]
    if any(n and n not in ctx.known for n in ins):
        return False
    ka = [ctx.known[n].a if n else None for n in ins]
    static = all(ctx.known[n].is_static for n in ins if n)
    outs_a = kn.evaluate(ctx.path, proto, ctx.opset, ka)
    if static:
        outs_b = outs_a
    else:
        outs_b = kn.evaluate(ctx.path, proto, ctx.opset,
                             [ctx.known[n].b if n else None for n in ins])
    for name, a, b in zip(proto.output, outs_a, outs_b, strict=False):
        if name:
            ctx.known[name] = kn.Known.static(a) if static else kn.Known(a, b)
    return True


def convert_nodes(ctx: OnnxContext, nodes: Iterable[Any]) -> None:
    """Convert ``nodes`` in order into ``ctx``'s graph: evaluated when their inputs are
    known, else by their converter (checked by :func:`check_supported` before)."""
    for proto in nodes:
        if _fold(ctx, proto):
            continue
        node = OnnxNode(proto, ctx.node_name(proto), parse_attrs(ctx.model, proto))
        convert = CONVERTERS.get(proto.op_type, ctx.opset)
        assert convert is not None  # check_supported saw to it
        try:
            convert(ctx, node)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError,
                ZeroDivisionError, OverflowError) as exc:
            raise ModelFormatError(f"{ctx.where(node)} has malformed attributes or inputs "
                                   f"({type(exc).__name__}: {first_line(exc)})") from None


def convert_model(model: OnnxModel, *, input_shapes: list[tuple[int, ...]] | None = None,
                  input_names: list[str] | None = None,
                  output_names: list[str] | None = None,
                  channels_first_io: bool = False) -> Graph:
    """The IR graph of a validated ONNX model (see the module docstring for the steps).

    ``channels_first_io``: a channels-last model (tf2onnx's) gets NCHW inputs and
    outputs instead of its NHWC ones (:func:`channels_first_boundaries`)."""
    graph_outputs = [o.name for o in model.graph.output]
    outputs = output_names or graph_outputs
    produced = {o for n in model.graph.node for o in n.output} | {
        i.name for i in model.graph.input}
    missing_out = [o for o in outputs if o not in produced]
    if missing_out:
        raise UsageError(f"{model.path}: no value named {', '.join(map(repr, missing_out))} "
                         f"(outputs: {', '.join(graph_outputs)})")
    nodes = _used(model, outputs)
    check_supported(model, nodes)

    graph = Graph(sanitize(model.graph.name or "model", "model"))
    ctx = OnnxContext(model, graph)
    source_inputs = _declare_inputs(ctx, input_shapes, input_names)
    convert_nodes(ctx, progress(nodes, desc="converting ONNX ops", unit="op"))
    graph_out = []
    for o in outputs:
        if o not in ctx.values:
            if o in ctx.known:
                raise UnsupportedError(f"{model.path}: output {o!r} is a constant (computed "
                                       "without the inputs); nothing to convert")
            raise ModelFormatError(f"{model.path}: output {o!r} was not produced")
        graph_out.append(ctx.values[o])
    graph.outputs = graph_out
    _name_outputs(ctx, outputs)
    renamed = {old: new for old, new in zip(graph_out, graph.outputs, strict=True)
               if old != new}
    sources = _source_values(ctx, model, renamed)
    graph.metadata.update({
        "source_inputs": json.dumps(source_inputs),
        "source_outputs": json.dumps(list(outputs)),
        "source_framework": "onnx",
        "source_format": f"onnx-opset{model.opset}",
        "source_file": model.path.replace("\\", "/").rsplit("/", 1)[-1],
        "layout": "NCHW",
    })
    _, kept = finish_graph_keeping(graph, {ir: shape for ir, (_, shape) in sources.items()})
    graph.metadata["source_values"] = json.dumps({ir: sources[ir][0] for ir in kept})
    in_perms: dict[str, tuple[int, ...]] = {}
    out_perms: dict[str, tuple[int, ...]] = {}
    if channels_first_io:
        in_perms, out_perms = channels_first_boundaries(graph)
        infer_shapes(graph)
    # per input/output, source layout -> IR layout (ir = source.transpose(perm)), so
    # verifiers feed the source model in its own layout
    graph.metadata["source_input_perms"] = json.dumps(
        [list(in_perms.get(v.name, range(v.rank))) for v in graph.inputs])
    graph.metadata["source_output_perms"] = json.dumps(
        [list(out_perms.get(o, range(graph.value(o).rank))) for o in graph.outputs])
    return graph


def _source_values(ctx: OnnxContext, model: OnnxModel, renamed: dict[str, str]
                   ) -> dict[str, tuple[str, tuple]]:
    """IR value -> (ONNX value it is, IR shape before the passes), for ``mmverify
    --layers``: IR names are sanitized node names, so a source ONNX model is probed by
    these.  Only node outputs converted to one IR value (the first ONNX value an IR
    value stands for: an Identity's output is its input's value), not weights."""
    computed = {o for n in model.graph.node for o in n.output if o}
    found: dict[str, tuple[str, tuple]] = {}
    for onnx_name, ir in ctx.values.items():
        ir = renamed.get(ir, ir)
        if onnx_name in computed and ir not in found and ir in ctx.graph.values \
                and ir not in ctx.graph.weights:
            found[ir] = (onnx_name, tuple(ctx.graph.values[ir].shape))
    return found
