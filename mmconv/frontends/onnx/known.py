"""Values known at conversion time, including those that depend only on the batch size.

Exporters compute shapes in the graph: ``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape`` for ``x.view(x.size(0), -1)``, ``ConstantOfShape``,
``Range``, ``Expand``.  With every dimension static but the batch, such a
sub-graph is a function of the batch size alone.  mmconv evaluates it twice,
with the batch set to :data:`BATCHES` ``[0]`` and ``[1]``: an entry equal in
both runs is static, one that differs depends on the batch (the batch itself,
or ``batch * C`` ...).  A consumer such as Reshape then writes a static target
with ``0`` (copy the input's batch) or ``-1`` for the batch-dependent entry, so
every target gets static reshapes with a dynamic batch.

Evaluation uses ``onnx.reference`` node by node (ONNX's own semantics for each
opset), limited to ops that compute shapes and small tensors, with sizes
checked first so a hostile file cannot make it allocate without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UnsupportedError

#: The two batch sizes shape sub-graphs are evaluated with (distinct, small, not 1
#: so a size-1 axis is never mistaken for the batch).
BATCHES = (2, 3)
#: The largest tensor (elements) a folded node may produce.
MAX_ELEMENTS = 1 << 24

#: ONNX ops evaluated at conversion time when all their inputs are known.
FOLDABLE = frozenset({
    "Shape", "Size", "Gather", "Concat", "Unsqueeze", "Squeeze", "Slice", "Cast", "Add", "Sub",
    "Mul", "Div", "Neg", "Abs", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "Not", "And", "Or", "Where", "ConstantOfShape", "Range", "Reshape", "Expand", "Identity",
    "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "Max", "Min", "Floor", "Ceil", "Sqrt",
    "Transpose", "Tile", "Flatten", "Mod", "Sign", "Pow", "Reciprocal", "Exp", "Log", "Clip",
    "Constant", "Split", "GatherElements", "CastLike", "Round", "Trilu", "ScatterND",
    "NonZero", "ArgMax", "ArgMin", "CumSum", "Sum", "Mean",
})


@dataclass(frozen=True)
class Known:
    """A value known at conversion time: its array for each of the two batch sizes."""

    a: np.ndarray
    b: np.ndarray

    @staticmethod
    def static(array: np.ndarray) -> Known:
        return Known(array, array)

    @property
    def is_static(self) -> bool:
        return self.a is self.b or (self.a.shape == self.b.shape and self.a.dtype == self.b.dtype
                                    and bool(np.array_equal(self.a, self.b)))

    def batch_sample(self) -> np.ndarray | None:
        """One sample ``[1, ...]`` when the value's first axis is the batch and every
        sample is the same (what broadcasting consumers can use instead), else None."""
        a, b = self.a, self.b
        if (a.ndim == 0 or a.ndim != b.ndim or a.shape[0] != BATCHES[0]
                or b.shape[0] != BATCHES[1] or a.shape[1:] != b.shape[1:]):
            return None
        first = a[:1]
        if not (np.array_equal(np.broadcast_to(first, a.shape), a)
                and np.array_equal(np.broadcast_to(first, b.shape), b)):
            return None
        return np.ascontiguousarray(first)

    def batch_mask(self) -> np.ndarray:
        """For a 1-D value of equal length in both runs: True where it depends on the batch."""
        if self.a.shape != self.b.shape:
            raise UnsupportedError("a value whose length depends on the batch size")
        return np.asarray(self.a != self.b)


def _elements(dims: Any) -> int:
    total = 1
    for d in np.asarray(dims).reshape(-1).tolist():
        if d < 0:
            return 0
        total *= int(d)
    return total


def _guard(path: str, node: Any, arrays: list[np.ndarray]) -> None:
    """Refuse to evaluate what would allocate too much (sizes checked before numpy runs)."""
    op = node.op_type
    size = None
    if op == "ConstantOfShape" and arrays:
        size = _elements(arrays[0])
    elif op == "Range" and len(arrays) == 3:
        start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays)
        size = 0 if delta == 0 else max(0, int(np.ceil((limit - start) / delta)))
    elif op in ("Expand", "Tile") and len(arrays) == 2:
        shape = np.asarray(arrays[1]).reshape(-1).tolist()
        if op == "Tile":
            size = arrays[0].size * _elements(shape)
        else:
            size = max(_elements(shape), 1) * max(arrays[0].size, 1)
    if size is not None and size > MAX_ELEMENTS:
        raise ModelFormatError(
            f"{path}: node {node.name or node.op_type!r} ({op}) would make a tensor of {size} "
            f"elements at conversion time (limit {MAX_ELEMENTS})")


def evaluate(path: str, node: Any, opset: int, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run one ONNX node with ``onnx.reference``'s kernel for ``opset`` on numpy inputs
    (None: an absent optional input)."""
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.ops import load_op

    _guard(path, node, [a for a in inputs if a is not None])
    params = {"log": lambda *_: None, "opsets": {"": opset}, "verbose": 0, "new_ops": None,
              "existing_functions": {}, "evaluator_cls": ReferenceEvaluator}
    try:
        kernel = load_op("", node.op_type, opset)(node, params)
        outs = kernel.run(*[None if a is None else np.asarray(a) for a in inputs])
        return [np.asarray(o) for o in (outs if isinstance(outs, (tuple, list)) else (outs,))]
    except (MemoryError, RecursionError):
        raise ModelFormatError(f"{path}: node {node.name!r} ({node.op_type}) is too big to "
                               "evaluate at conversion time") from None
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{path}: node {node.name!r} ({node.op_type}) cannot be "
                               f"evaluated on its constant inputs: {text}") from None


def shape_known(shape: tuple) -> Known:
    """``Shape(x)`` for an IR shape whose ``None`` axes are the batch."""
    a = np.array([BATCHES[0] if d is None else d for d in shape], dtype=np.int64)
    b = np.array([BATCHES[1] if d is None else d for d in shape], dtype=np.int64)
    return Known(a, b) if None in shape else Known.static(a)


def resolve_target(target: Known, input_shape: tuple, what: str) -> list[int]:
    """A static Reshape/Expand target for a possibly batch-dependent ``target``.

    A batch-dependent entry becomes 0 where it is the input's batch at the same
    axis, otherwise -1 (at most one such entry).
    """
    if target.is_static:
        return [int(v) for v in target.a.reshape(-1).tolist()]
    a = target.a.reshape(-1)
    b = target.b.reshape(-1)
    mask = target.batch_mask().reshape(-1)
    # the input's dynamic dim in each run (it need not be the batch itself: an attention
    # reshape sees batch * heads): the target's element count over its static dims
    dynamic = [i for i, d in enumerate(input_shape) if d is None]
    static = math.prod(d for d in input_shape if d is not None)
    # (with a -1 or 0 in the target that count is unknown: then the dynamic dim is
    # taken to be the batch itself, what exporters write for x.view(x.size(0), C, -1))
    in_a, in_b = BATCHES
    if len(dynamic) == 1 and static and -1 not in a.tolist() and 0 not in a.tolist():
        in_a, in_b = int(np.prod(a)) // static, int(np.prod(b)) // static
    out: list[int] = []
    free = 0
    for i, (x, y, dep) in enumerate(zip(a.tolist(), b.tolist(), mask.tolist(), strict=True)):
        if not dep:
            out.append(int(x))
        elif dynamic == [i] and (x, y) == (in_a, in_b):
            out.append(0)
        else:
            out.append(-1)
            free += 1
    if free > 1:
        raise UnsupportedError(f"{what}: more than one dimension of the target depends on the "
                               "batch size")
    if free and -1 in [int(v) for v, d in zip(a.tolist(), mask.tolist(), strict=True) if not d]:
        raise UnsupportedError(f"{what}: -1 and a batch-dependent dimension in one target")
    return out
