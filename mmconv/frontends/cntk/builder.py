"""CNTK :class:`Model` -> IR :class:`Graph`: the driver around the op converters.

Steps: pick the outputs (``--dstNodeName`` or the model's, minus training-only
criteria), keep the functions they need, fail once listing every op without a
converter, declare inputs, run the converters in topological order, then
shape inference and the clean-up passes.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmconv.errors import IRError, ModelFormatError, UnsupportedError, UsageError
from mmconv.frontends.cntk.converters import BLOCK_CONVERTERS, CONVERTERS
from mmconv.frontends.cntk.model import BlockInfo, Function, Model, Variable
from mmconv.ir.core import Graph, Node, Shape, Value
from mmconv.ir.evaluate import evaluate
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import FOLD_MAX_GROWTH, run_default_passes
from mmconv.ir.registry import check_node, get_schema
from mmconv.progress import progress

#: Ops that only make sense while training; outputs computed by them are dropped.
TRAINING_OPS = frozenset({
    "CrossEntropyWithSoftmax", "ClassificationError", "SquaredError", "LambdaRank", "NDCG",
    "EditDistanceError", "ForwardBackward", "CosDistanceWithNegativeSamples",
    "LatticeSequenceWithSoftmax", "LabelsToGraph",
})
BATCH_AXIS = "defaultBatchAxis"


@dataclass
class Unit:
    """What one converter call handles: a primitive function, or a whole block."""

    function: Function
    block: BlockInfo | None = None

    @property
    def op(self) -> str:
        return self.block.op_name if self.block else self.function.op

    @property
    def inputs(self) -> list[str]:
        return list(self.block.inputs) if self.block else self.function.inputs

    @property
    def outputs(self) -> list[str]:
        return list(self.block.outputs) if self.block else self.function.outputs

    @property
    def attrs(self) -> dict:
        return self.block.attrs if self.block else self.function.attrs


@dataclass
class Context:
    """What a converter works with: the model, the graph being built and the uid -> value map."""

    model: Model
    graph: Graph
    #: CNTK variable uid -> IR value name.
    values: dict[str, str] = field(default_factory=dict)
    #: IR values that carry the batch axis first (CNTK's dynamic batch axis).
    batched_values: set[str] = field(default_factory=set)
    _weights: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- names -------------------------------------------------------------
    def node_name(self, unit: Unit) -> str:
        """The IR name for a function: its own name, else the block it is the output of,
        else ``<innermost block>/<op>``, else its uid; made unique."""
        fn = unit.function
        if unit.block is not None and unit.block.name:
            return self.graph.unique_name(unit.block.name)
        # Names with a leading underscore are CNTK's own helpers (``_static_axes_subop``
        # inside a reduce_* block): the user knows the block's name instead.
        if fn.name and not fn.name.startswith("_"):
            return self.graph.unique_name(fn.name)
        for block in reversed(fn.blocks):
            if fn.outputs and fn.outputs[0] in block.outputs:
                if block.name:
                    return self.graph.unique_name(block.name)
            else:
                break
        named = [b for b in fn.blocks if b.name]
        if named:
            return self.graph.unique_name(f"{named[-1].name}/{fn.op}")
        return self.graph.unique_name(fn.uid)

    def layer_name(self, unit: Unit, node_name: str) -> str:
        """The name weights are prefixed with: the innermost named block, else the node."""
        named = [b for b in unit.function.blocks if b.name]
        return named[-1].name if named else node_name

    # -- values ------------------------------------------------------------
    def var(self, uid: str) -> Variable:
        return self.model.variables[uid]

    def is_weight(self, uid: str) -> bool:
        """A parameter or constant, or a value computed from them alone (folded by
        :meth:`add`): converters that need an array (kernels, Dense weights) get it."""
        return self.var(uid).kind in ("parameter", "constant") or self._folded(uid) is not None

    def _folded(self, uid: str) -> str | None:
        """The IR weight a computed CNTK value was folded into, else None."""
        name = self.values.get(uid)
        if name is None or self.var(uid).kind in ("parameter", "constant"):
            return None
        return name if name in self.graph.weights else None

    def array(self, uid: str) -> np.ndarray:
        folded = self._folded(uid)
        if folded is not None:
            return self.graph.weights[folded]
        value = self.var(uid).value
        if value is None:
            raise UnsupportedError(f"{self.model.path}: {uid!r} has no value")
        return value

    def weight(self, uid: str, layer: str, param: str | None = None,
               array: np.ndarray | None = None, key: str = "") -> str:
        """The IR weight for parameter/constant ``uid`` (optionally transformed: pass
        ``array`` and a ``key`` naming the transformation), named ``<layer>/<param>``."""
        cache = (uid, key)
        if cache in self._weights:
            return self._weights[cache]
        folded = self._folded(uid)
        if folded is not None and array is None:
            return folded
        var = self.var(uid)
        data = self.array(uid) if array is None else array
        name = self.graph.unique_name(f"{layer}/{param or var.name or var.uid}")
        self.graph.add_weight(name, np.ascontiguousarray(data))
        self._weights[cache] = name
        return name

    def input(self, uid: str, unit: Unit, node_name: str) -> str:
        """The IR value for a CNTK input uid (weights are created on first use)."""
        if uid in self.values:
            return self.values[uid]
        if self.is_weight(uid):
            name = self.weight(uid, self.layer_name(unit, node_name))
            self.values.setdefault(uid, name)
            return name
        raise IRError(f"{self.model.path}: value {uid!r} is used before it is computed")

    def shape(self, name: str) -> Shape:
        return self.graph.value(name).shape

    def dtype(self, name: str) -> str:
        return self.graph.value(name).dtype

    def batched(self, name: str) -> bool:
        """True when IR value ``name`` carries the batch axis first (CNTK dynamic axis)."""
        return name in self.batched_values

    # -- building ----------------------------------------------------------
    def add(self, op: str, inputs: Sequence[str], name: str, batched: bool | None = None,
            **attrs: object) -> str:
        """Add a node and infer its output at once (converters need shapes as they go).

        ``batched`` says whether the output has the batch axis; by default it has one
        when any non-weight input has one.  A node whose inputs are all weights
        (``sigmoid(parameter)``, ``plus(parameter, constant)``) is computed now with
        numpy when :func:`mmconv.ir.evaluate.evaluate` can, and becomes a weight of
        the same name: later converters that need an array (a computed convolution
        kernel) then have one.  Inference-equivalent, not training-equivalent (see
        :func:`mmconv.ir.passes.fold_constants`).
        """
        if inputs and all(i and i in self.graph.weights for i in inputs) and not batched:
            folded = self._fold(op, inputs, name, attrs)
            if folded is not None:
                return folded
        node = self.graph.add_node(op, list(inputs), name, **attrs)  # type: ignore[arg-type]
        schema = get_schema(op)
        ins: list[Value | None] = [self.graph.values[i] if i else None for i in node.inputs]
        assert schema.infer is not None
        for out, (dtype, shape) in zip(node.outputs, schema.infer(node, ins), strict=False):
            self.graph.values[out] = Value(out, dtype, tuple(shape))
        if batched is None:
            batched = any(self.batched(i) for i in inputs if i)
        if batched:
            self.batched_values.update(node.outputs)
        return node.outputs[0]

    def _fold(self, op: str, inputs: Sequence[str], name: str, attrs: dict) -> str | None:
        node = Node(name, op, list(inputs), [name], dict(attrs))
        check_node(node)
        arrays = [self.graph.weights[i] for i in inputs]
        result = evaluate(node, arrays)
        if result is None or result[0].size > max(FOLD_MAX_GROWTH, sum(a.size for a in arrays)):
            return None
        return self.graph.add_weight(name, result[0])

    def constant(self, name: str, array: np.ndarray) -> str:
        """A synthesized constant weight (e.g. a reshaped parameter)."""
        name = self.graph.unique_name(name)
        self.graph.add_weight(name, np.ascontiguousarray(array))
        return name


# -- selecting what to convert ---------------------------------------------------------
def _producers(model: Model) -> dict[str, Function]:
    return {out: f for f in model.functions for out in f.outputs}


def _needed(model: Model, outputs: Sequence[str]) -> list[Function]:
    """Functions the outputs depend on, in the model's (topological) order."""
    producer = _producers(model)
    keep: set[str] = set()
    stack = [producer[o] for o in outputs if o in producer]
    while stack:
        f = stack.pop()
        if f.uid in keep:
            continue
        keep.add(f.uid)
        stack.extend(producer[i] for i in f.inputs if i in producer)
    return [f for f in model.functions if f.uid in keep]


def _output_names(model: Model) -> dict[str, str]:
    """Names a user may give in --dstNodeName for each function output."""
    names: dict[str, str] = {}
    for f in model.functions:
        if not f.outputs:
            continue
        out = f.outputs[0]
        names.setdefault(f.uid, out)
        for block in f.blocks:
            if block.name and out in block.outputs:
                names.setdefault(block.name, out)
        if f.name:
            names[f.name] = out
    return names


#: Ops through which a flattened criterion reads its labels (the label input is one
#: operand, a computed value the other).
_LABEL_OPS = frozenset({"TransposeTimes", "ElementTimes", "NotEqual", "Equal", "Minus"})
#: How deep below its root a flattened criterion reads the labels (the axis form of
#: classification_error: Mean <- GreaterEqual <- Sum <- NotEqual(labels, ...)).
_CRITERION_DEPTH = 4


def _label_reader(model: Model, f: Function, producer: dict[str, Function],
                  consumers: dict[str, list[Function]]) -> str | None:
    """The computed operand of ``f`` when ``f`` compares it with a labels input.

    A labels input is a model input read *only* by such comparisons or by criteria
    primitives (an image fed to a convolution, or mean-subtracted with a constant,
    is not one).
    """
    if f.op not in _LABEL_OPS or len(f.inputs) != 2:
        return None
    for k, uid in enumerate(f.inputs):
        var = model.variables.get(uid)
        other = f.inputs[1 - k]
        if (var is not None and var.kind == "input" and other in producer
                and all(c.op in _LABEL_OPS or c.op in TRAINING_OPS
                        for c in consumers.get(uid, ()))):
            return other
    return None


def _flattened_criterion(model: Model, f: Function, producer: dict[str, Function],
                         consumers: dict[str, list[Function]]) -> tuple[str, str] | None:
    """(criterion kind, prediction uid) of a block-less output that is a training criterion.

    A v1 file has no blocks, so criteria arrive as primitives: ``cross_entropy_with_softmax``
    as ``Minus(ReduceElements(LogSum, z), TransposeTimes(labels, z))`` (with ``axis``:
    ``... ReduceElements(Sum, ElementTimes(labels, z))``), ``classification_error`` as
    ``Minus(1, TransposeTimes(labels, Hardmax(z)))`` (with ``axis``: a Mean over
    ``NotEqual(labels, Equal(z, max z))``), ``squared_error`` as
    ``ReduceElements(Sum, ElementTimes(Minus(z, t), Minus(z, t)))``.  Recognised by
    shape: a Minus/ReduceElements root that, a few functions down, compares a
    computed value with a labels input.
    """
    if f.op not in ("Minus", "ReduceElements"):
        return None
    ops: set[str] = set()
    prediction = None
    seen: set[str] = set()
    stack = [(f, 0)]
    while stack:
        g, depth = stack.pop()
        if g.uid in seen:
            continue
        seen.add(g.uid)
        ops.add(g.op if g.op != "ReduceElements" else
                f"Reduce{g.attrs.get('reductionOpName', '')}")
        found = _label_reader(model, g, producer, consumers)
        if found is not None and prediction is None:
            prediction = found
        if depth < _CRITERION_DEPTH:
            stack.extend((producer[i], depth + 1) for i in g.inputs if i in producer)
    if prediction is None:
        return None
    # through the criterion's own view of the prediction (Hardmax(z), Equal(z, max z))
    while (p := producer.get(prediction)) is not None and p.op in ("Hardmax", "Equal"):
        prediction = next((i for i in p.inputs if i in producer
                           and producer[i].op != "ReduceElements"), p.inputs[0])
    if ops & {"Hardmax", "NotEqual", "Equal", "GreaterEqual"}:
        return "ClassificationError", prediction
    if "ReduceLogSum" in ops:
        return "CrossEntropyWithSoftmax", prediction
    return "SquaredError", prediction


def _criterion_prediction(model: Model, f: Function, block: BlockInfo | None) -> str | None:
    """The prediction a criterion primitive or block scores (its computed, non-label input)."""
    inputs = list(block.inputs) if block is not None else f.inputs
    for uid in inputs:
        var = model.variables.get(uid)
        if var is None or var.kind not in ("input", "parameter", "constant"):
            return uid
    return None


def _display(model: Model, producer: dict[str, Function], uid: str) -> str:
    f = producer.get(uid)
    if f is None:
        return model.variables[uid].display_name if uid in model.variables else uid
    named = [b.name for b in f.blocks if b.name and uid in b.outputs]
    return f.name or (named[-1] if named else f.uid)


def _select_outputs(model: Model, output_names: Sequence[str] | None) -> list[str]:
    producer = _producers(model)
    if output_names:
        table = _output_names(model)
        missing = [n for n in output_names if n not in table]
        if missing:
            known = ", ".join(sorted(n for n in table if not n[-1].isdigit())[:20])
            raise UsageError(
                f"{model.path}: no output named {', '.join(map(repr, missing))} (named "
                f"functions: {known or 'none'})")
        return [table[n] for n in output_names]
    consumers: dict[str, list[Function]] = {}
    for g in model.functions:
        for i in g.inputs:
            consumers.setdefault(i, []).append(g)
    kept, dropped, predictions = [], [], []
    for out in model.outputs:
        f = producer.get(out)
        block = f and next((b for b in f.blocks if b.op_name in TRAINING_OPS), None)
        op = f and (block.op_name if block else f.op)
        prediction = None
        if f is not None and op in TRAINING_OPS:
            prediction = _criterion_prediction(model, f, block)
        elif f is not None:
            found = _flattened_criterion(model, f, producer, consumers)
            if found is not None:
                op, prediction = found
        if f is not None and op in TRAINING_OPS:
            dropped.append(f"{f.display_name} ({op})")
            if prediction is not None and prediction not in predictions:
                predictions.append(prediction)
        else:
            kept.append(out)
    if not kept and predictions:
        # Saved as its criteria only (e.g. C.combine([loss, metric])): the useful model
        # is what they score.
        names = ", ".join(_display(model, producer, p) for p in predictions)
        print(f"mmconv: the model's outputs are all training criteria ({', '.join(dropped)}); "
              f"converting what they score instead: {names}", file=sys.stderr)
        return predictions
    if not kept:
        raise UnsupportedError(
            f"{model.path}: every output is a training criterion ({', '.join(dropped)}); "
            "pick the prediction with --dstNodeName")
    if dropped:
        needed = {i for f in _needed(model, kept) for i in f.inputs}
        unused = [v.display_name for v in model.inputs if v.uid not in needed]
        extra = f" and the inputs they alone need: {', '.join(unused)}" if unused else ""
        print(f"mmconv: dropped training-only outputs {', '.join(dropped)}{extra}",
              file=sys.stderr)
    return kept


def _units(model: Model, functions: list[Function]) -> list[Unit]:
    """Group functions into converter calls: a block with a block converter is one unit,
    converted at its root (all its inputs are computed by then)."""
    units: list[Unit] = []
    for f in functions:
        block = next((b for b in f.blocks if b.op_name in BLOCK_CONVERTERS and b.outputs), None)
        if block is None:
            units.append(Unit(f))
        elif f.outputs and f.outputs[0] == block.outputs[0]:
            units.append(Unit(f, block))
    return units


def _check_supported(model: Model, units: list[Unit]) -> None:
    missing: dict[str, list[str]] = {}
    for u in units:
        if u.block is None and u.op not in CONVERTERS:
            missing.setdefault(u.op, []).append(u.function.display_name)
    if missing:
        counts = Counter({op: len(names) for op, names in missing.items()})
        parts = []
        for op, n in counts.most_common():
            names = missing[op]
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            parts.append(f"{op} x{n} ({shown})")
        raise UnsupportedError(
            f"{model.path}: CNTK ops without a converter: {'; '.join(parts)}")


# -- inputs --------------------------------------------------------------------------
def _declare_inputs(ctx: Context, used: list[Variable],
                    input_shapes: list[tuple[int, ...]] | None,
                    input_names: list[str] | None) -> None:
    model = ctx.model
    shapes: dict[str, tuple[int, ...]] = {}
    if input_shapes is not None:
        names = input_names or [v.display_name for v in used]
        if len(input_shapes) != len(names):
            raise UsageError(
                f"{model.path}: {len(input_shapes)} input shapes given for {len(names)} inputs "
                f"({', '.join(names)})")
        shapes = {n: tuple(s) for n, s in zip(names, input_shapes, strict=True)}
    if input_names:
        unknown = [n for n in input_names if n not in {v.display_name for v in used}]
        if unknown:
            raise UsageError(
                f"{model.path}: no input named {', '.join(map(repr, unknown))} (inputs: "
                f"{', '.join(v.display_name for v in used)})")
    for var in used:
        axes = var.dynamic_axes
        if any(a != BATCH_AXIS for a in axes):
            raise UnsupportedError(
                f"{model.path}: input {var.display_name!r} has a sequence axis "
                f"({', '.join(axes)}); sequence models are not supported yet")
        shape = tuple(var.shape)
        given = shapes.get(var.display_name)
        if given is not None:
            ok = len(given) == len(shape) and all(
                s < 0 or s == g for s, g in zip(shape, given, strict=True))
            if not ok:
                raise UsageError(
                    f"{model.path}: input {var.display_name!r} has shape {list(shape)} in the "
                    f"model, --inputShape gave {list(given)}")
            shape = given
        if any(d < 0 for d in shape):
            raise UsageError(
                f"{model.path}: input {var.display_name!r} has free dimensions "
                f"{list(shape)}; give its shape with --inputShape")
        batched = BATCH_AXIS in axes
        name = ctx.graph.unique_name(var.display_name)
        ctx.graph.add_input(name, var.dtype, ((None,) if batched else ()) + shape)
        if batched:
            ctx.batched_values.add(name)
        ctx.values[var.uid] = name


def _outer_uid(model: Model, uid: str) -> str:
    """The uid CNTK itself shows for ``uid``: inlined block outputs are known by the block's."""
    for function in model.functions:
        if uid in function.outputs:
            for block in function.blocks:
                if uid in block.outputs:
                    return f"{block.uid}_Output_{block.outputs.index(uid)}"
            break
    return uid


def _argument_order(model: Model) -> list[Variable]:
    """The model's inputs in the order CNTK lists ``Function.arguments``.

    CNTK orders arguments by a depth-first, pre-order walk from the outputs through
    each function's inputs (stored order); the order of variables in the file is
    something else (a v2 file may list the ROIs before the image, a v1 file the
    labels before the features).  Users give ``--inputShape`` in CNTK's order and
    feed converted models by position in it, so the IR inputs follow it too.
    """
    producer = _producers(model)
    order: list[Variable] = []
    seen: set[str] = set()
    stack = list(reversed(model.outputs))
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        f = producer.get(uid)
        if f is not None:
            stack.extend(reversed([i for i in f.inputs if i not in seen]))
            continue
        var = model.variables.get(uid)
        if var is not None and var.kind == "input":
            order.append(var)
    listed = {v.uid for v in order}
    return order + [v for v in model.inputs if v.uid not in listed]


def _uid_of(ctx: Context, value_name: str) -> str:
    return next(uid for uid, name in ctx.values.items() if name == value_name)


def convert_model(model: Model, *, input_shapes: list[tuple[int, ...]] | None = None,
                  input_names: list[str] | None = None,
                  output_names: list[str] | None = None) -> Graph:
    """The IR graph of a CNTK model (see the module docstring for the steps)."""
    # Registering converters happens on import of the family modules.
    outputs = _select_outputs(model, output_names)
    functions = _needed(model, outputs)
    units = _units(model, functions)
    _check_supported(model, units)

    graph = Graph(model.name or "model")
    ctx = Context(model, graph)
    used_uids = {i for f in functions for i in f.inputs}
    used_inputs = [v for v in _argument_order(model) if v.uid in used_uids]
    if not used_inputs and not functions:
        raise UnsupportedError(f"{model.path}: the model computes nothing")
    _declare_inputs(ctx, used_inputs, input_shapes, input_names)

    for unit in progress(units, desc="converting CNTK ops", unit="op"):
        table = BLOCK_CONVERTERS if unit.block is not None else CONVERTERS
        try:
            table.get(unit.op)(ctx, unit)  # type: ignore[misc]
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError,
                OverflowError) as exc:
            # The reader checks structure, not each op's attribute types and values; a
            # corrupt attribute surfaces here and is reported as a bad file, not a crash.
            raise ModelFormatError(
                f"{model.path}: {unit.op} {unit.function.display_name!r} has malformed "
                f"attributes or inputs ({type(exc).__name__}: {exc})") from exc
    missing = [o for o in outputs if o not in ctx.values]
    if missing:
        raise IRError(f"{model.path}: outputs {missing} were not produced")
    graph.outputs = list(dict.fromkeys(ctx.values[o] for o in outputs))
    source_of = {ctx.values[o]: _outer_uid(model, o) for o in reversed(outputs)}
    graph.metadata.update({
        # which CNTK variables (uids) the IR inputs and outputs are, in order, so a
        # verifier can feed and fetch exactly these in real CNTK
        "source_inputs": json.dumps([_uid_of(ctx, v.name) for v in graph.inputs]),
        "source_outputs": json.dumps([source_of[o] for o in graph.outputs]),
        "source_framework": "cntk",
        "source_format": f"cntk-{model.format}",
        "source_file": model.path.replace("\\", "/").rsplit("/", 1)[-1],
        "layout": "NCHW",
    })
    infer_shapes(graph)
    run_default_passes(graph)
    infer_shapes(graph)
    return graph
