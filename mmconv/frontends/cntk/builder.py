"""CNTK :class:`Model` -> IR :class:`Graph`: the driver around the op converters.

Steps: pick the outputs (``--dstNodeName`` or the model's, minus training-only
criteria: :mod:`.criteria`), keep the functions they need, fail once listing every op without a
converter, declare inputs, run the converters in topological order, then
shape inference and the clean-up passes.  What is not CNTK-specific (adding
nodes with shape inference and folding, weights, the unsupported-ops error)
is :mod:`mmconv.frontends.base`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmconv.errors import IRError, ModelFormatError, UnsupportedError, UsageError
from mmconv.frontends.base import BuildContext, UnsupportedOps, finish_graph
from mmconv.frontends.cntk.converters import BLOCK_CONVERTERS, CONVERTERS
from mmconv.frontends.cntk.criteria import drop_criteria
from mmconv.frontends.cntk.loops import LOOP_OP
from mmconv.frontends.cntk.model import BlockInfo, Function, Model, Variable
from mmconv.frontends.cntk.per_step import per_step_function, run_of
from mmconv.frontends.cntk.recurrence import recognise
from mmconv.ir.core import Graph
from mmconv.progress import progress

BATCH_AXIS = "defaultBatchAxis"
#: Converters written for [batch, *sample] values only: on a sequence ([batch, time,
#: *sample]) they would treat time as a sample axis, so there they (and the per-step ops
#: after them) run in a state-less Scan over the steps (:mod:`.per_step`);
#: BatchNormalization folds itself into a per-step multiply-add instead.
NOT_PER_STEP = frozenset({"Convolution", "Pooling", "ROIPooling",
                          "TransposeAxes", "TransposeTimes", "LocalResponseNormalization",
                          "Hardmax"})


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


class Context(BuildContext):
    """What a CNTK converter works with: the shared :class:`BuildContext` plus CNTK matters.

    Those are the model, the CNTK uid -> IR value map, which values carry CNTK's
    dynamic batch axis, and how CNTK's blocks name nodes and weights.
    """

    def __init__(self, model: Model, graph: Graph) -> None:
        super().__init__(graph)
        self.model = model
        #: CNTK variable uid -> IR value name.
        self.values: dict[str, str] = {}
        #: IR values that carry the batch axis first (CNTK's dynamic batch axis).
        self.batched_values: set[str] = set()
        #: IR values that carry a time axis after the batch axis (CNTK's sequence axis):
        #: ``[batch, time, *sample]``.
        self.sequence_values: set[str] = set()

    def fork(self) -> Context:
        """A throw-away copy to try a conversion on (what it adds, weights included, stays
        in the copy): the loop converter finds its state shapes this way."""
        graph = Graph(self.graph.name)
        graph.inputs = list(self.graph.inputs)
        graph.nodes = list(self.graph.nodes)
        graph.weights = dict(self.graph.weights)
        graph.values = dict(self.graph.values)
        graph.rebuild_names()
        other = Context(self.model, graph)
        other.values = dict(self.values)
        other.batched_values = set(self.batched_values)
        other.sequence_values = set(self.sequence_values)
        other._weight_cache = dict(self._weight_cache)
        return other

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
        return name if self.is_constant(name) else None

    def array(self, uid: str) -> np.ndarray:
        folded = self._folded(uid)
        if folded is not None:
            return self.constant_array(folded)
        value = self.var(uid).value
        if value is None:
            raise UnsupportedError(f"{self.model.path}: {uid!r} has no value")
        return value

    def weight(self, uid: str, layer: str, param: str | None = None,
               array: np.ndarray | None = None, key: str = "") -> str:
        """The IR weight for parameter/constant ``uid`` (optionally transformed: pass
        ``array`` and a ``key`` naming the transformation), named ``<layer>/<param>``."""
        if array is None:
            folded = self._folded(uid)
            if folded is not None:
                return folded
        var = self.var(uid)
        return self.cached_weight(uid, layer, param or var.name or var.uid,
                                  (lambda: self.array(uid)) if array is None else array, key)

    def input(self, uid: str, unit: Unit, node_name: str) -> str:
        """The IR value for a CNTK input uid (weights are created on first use)."""
        if uid in self.values:
            return self.values[uid]
        if self.is_weight(uid):
            name = self.weight(uid, self.layer_name(unit, node_name))
            self.values.setdefault(uid, name)
            return name
        raise IRError(f"{self.model.path}: value {uid!r} is used before it is computed")

    def batched(self, name: str) -> bool:
        """True when IR value ``name`` carries the batch axis first (CNTK dynamic axis)."""
        return name in self.batched_values

    def is_sequence(self, name: str) -> bool:
        """True when IR value ``name`` is ``[batch, time, *sample]`` (a CNTK sequence)."""
        return name in self.sequence_values

    def lead(self, name: str) -> int:
        """How many leading IR axes are CNTK dynamic axes: 2 (batch, time), 1 or 0."""
        return 2 if name in self.sequence_values else 1 if name in self.batched_values else 0

    # -- building ----------------------------------------------------------
    def add(self, op: str, inputs: Sequence[str], name: str,  # type: ignore[override]
            batched: bool | None = None, sequence: bool | None = None,
            **attrs: object) -> str:
        """:meth:`BuildContext.add`, tracking CNTK's batch and sequence axes.

        ``batched`` says whether the output has the batch axis; by default it has one
        when any non-weight input has one.  A node said to be batched is never folded
        (its value differs per sample even if its inputs are weights).  ``sequence``
        likewise for the time axis after it (by default: when an input has one).
        """
        if sequence is None:
            sequence = any(self.is_sequence(i) for i in inputs if i)
        if sequence:
            batched = True
        if not batched:
            folded = self.try_fold(op, inputs, name, attrs)
            if folded is not None:
                return folded
        node = self.add_node(op, inputs, name, **attrs)
        if batched is None:
            batched = any(self.batched(i) for i in inputs if i)
        if batched:
            self.batched_values.update(node.outputs)
        if sequence:
            self.sequence_values.update(node.outputs[:1])
        return node.outputs[0]


# -- selecting what to convert ---------------------------------------------------------
def _output_names(model: Model) -> dict[str, str]:
    """Names a user may give in --dstNodeName for each function output."""
    names: dict[str, str] = {}
    functions = list(model.functions)
    for f in model.functions:  # a loop's functions (a Scan body) whose values it outputs
        if f.op == LOOP_OP:
            loop = f.attrs["loop"]
            functions += [g for g in loop.functions if g.outputs and g.outputs[0] in f.outputs]
    for f in functions:
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


def _select_outputs(model: Model, output_names: Sequence[str] | None) -> list[str]:
    if output_names:
        table = _output_names(model)
        missing = [n for n in output_names if n not in table]
        if missing:
            known = ", ".join(sorted(n for n in table if not n[-1].isdigit())[:20])
            raise UsageError(
                f"{model.path}: no output named {', '.join(map(repr, missing))} (named "
                f"functions: {known or 'none'})")
        return [table[n] for n in output_names]
    return drop_criteria(model)


def units_of(model: Model, functions: list[Function]) -> list[Unit]:
    """Group functions into converter calls: a block with a block converter is one unit,
    converted at its root (all its inputs are computed by then).

    Only a block wholly among ``functions``: one that a loop cuts (its root in a Scan
    body, some inner functions outside, or the reverse) is converted function by
    function on each side."""
    present = {f.uid for f in functions}
    outputs = {o for f in functions for o in f.outputs}
    elsewhere = {b.uid for f in model.functions if f.uid not in present for b in f.blocks}
    units: list[Unit] = []
    for f in functions:
        block = next((b for b in f.blocks if b.op_name in BLOCK_CONVERTERS and b.outputs
                      and b.outputs[0] in outputs and b.uid not in elsewhere), None)
        if block is None:
            units.append(Unit(f))
        elif f.outputs and f.outputs[0] == block.outputs[0]:
            units.append(Unit(f, block))
    return units


def _check_supported(model: Model, units: list[Unit]) -> None:
    missing = UnsupportedOps()
    for u in units:
        if u.block is None and u.op not in CONVERTERS:
            missing.record(u.op, u.function.display_name)
    missing.raise_if_any(model.path, "CNTK ops without a converter")


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
        sequence = len(axes) == 2 and BATCH_AXIS in axes
        if any(a != BATCH_AXIS for a in axes) and not sequence:
            raise UnsupportedError(
                f"{model.path}: input {var.display_name!r} has dynamic axes "
                f"({', '.join(axes)}); only a batch axis, or a batch and one sequence "
                "axis, are supported")
        shape = tuple(var.shape)
        given = shapes.get(var.display_name)
        steps: int | None = None
        if sequence and given is not None and len(given) == len(shape) + 1:
            # [time, *sample]: a fixed number of steps
            steps, given = int(given[0]), tuple(given[1:])
            if steps <= 0:
                raise UsageError(f"{model.path}: input {var.display_name!r}: --inputShape "
                                 f"gives {steps} time steps")
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
        lead: tuple[int | None, ...] = (None, steps) if sequence else (None,) if batched else ()
        ctx.graph.add_input(name, var.dtype, lead + shape)
        if batched:
            ctx.batched_values.add(name)
        if sequence:
            ctx.sequence_values.add(name)
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
    producer = model.producers()
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


def run_unit(ctx: Context, unit: Unit) -> None:
    """Call the unit's converter; a malformed attribute is a bad file, not a crash."""
    table = BLOCK_CONVERTERS if unit.block is not None else CONVERTERS
    try:
        table.get(unit.op)(ctx, unit)  # type: ignore[misc]
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError,
            OverflowError) as exc:
        # The reader checks structure, not each op's attribute types and values; a
        # corrupt attribute surfaces here and is reported as a bad file, not a crash.
        raise ModelFormatError(
            f"{ctx.model.path}: {unit.op} {unit.function.display_name!r} has malformed "
            f"attributes or inputs ({type(exc).__name__}: {exc})") from exc


def _uid_of(ctx: Context, value_name: str) -> str:
    return next(uid for uid, name in ctx.values.items() if name == value_name)


def convert_model(model: Model, *, input_shapes: list[tuple[int, ...]] | None = None,
                  input_names: list[str] | None = None,
                  output_names: list[str] | None = None) -> Graph:
    """The IR graph of a CNTK model (see the module docstring for the steps)."""
    # Registering converters happens on import of the family modules.
    recognise(model)
    outputs = _select_outputs(model, output_names)
    functions = model.needed(outputs)
    units = units_of(model, functions)
    _check_supported(model, units)

    graph = Graph(model.name or "model")
    ctx = Context(model, graph)
    used_uids = {i for f in functions for i in f.inputs}
    used_inputs = [v for v in _argument_order(model) if v.uid in used_uids]
    if not used_inputs and not functions:
        raise UnsupportedError(f"{model.path}: the model computes nothing")
    _declare_inputs(ctx, used_inputs, input_shapes, input_names)

    per_step = UnsupportedOps()
    skipped: set[str] = set()
    looped: set[int] = set()  # units a per-step Scan computed
    for k, unit in enumerate(progress(units, desc="converting CNTK ops", unit="op")):
        if k in looped:
            continue
        if any(i in skipped for i in unit.inputs):
            skipped.update(unit.outputs)  # downstream of a refused op: reported already
            continue
        if unit.op in NOT_PER_STEP and any(
                ctx.is_sequence(ctx.values.get(i, "")) for i in unit.inputs):
            run = run_of(ctx, units, k)
            if run is None:
                per_step.record(unit.op, unit.function.display_name)
                skipped.update(unit.outputs)
                continue
            used = {i for u in units[k + len(run):] for i in u.inputs} | set(outputs)
            run_unit(ctx, Unit(per_step_function(run, used)))
            looped.update(range(k, k + len(run)))
            continue
        run_unit(ctx, unit)
    per_step.raise_if_any(model.path, "ops on a sequence ([batch, time, ...]) that are not "
                          "supported yet", "a per-step op (run as a Scan over the steps) may "
                          "read sequences and weights only")
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
    return finish_graph(graph)
