"""Per-layer comparison: which node of the graph is the first to disagree.

When outputs differ, the useful fact is where the difference starts: the
first value, in graph order, that is out of tolerance while everything before
it agrees.  Every value is judged by the same rule as an output (its own
``max(1, max|ref|)`` scale), so a layer that only inherits a small error
from an earlier one usually stays within tolerance and the first diverging
layer is the one that introduced the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mmconv.ir import Graph
from mmconv.ir.core import Node
from mmconv.verify.compare import OutputComparison, compare


@dataclass(frozen=True)
class LayerComparison:
    """One IR value compared on both sides, with the node that computes it."""

    op: str
    result: OutputComparison

    @property
    def name(self) -> str:
        return self.result.name

    @property
    def ratio(self) -> float:
        """max|a-b| in units of the tolerance (above 1: out of tolerance)."""
        tol = self.result.tolerance
        return self.result.max_abs / tol if tol > 0 else (0.0 if self.result.max_abs == 0
                                                          else float("inf"))


@dataclass
class LayerReport:
    """Comparisons in graph order, plus the values only one side had."""

    compared: list[LayerComparison] = field(default_factory=list)
    #: values one side does not expose (or exposes with another number of elements)
    not_compared: list[str] = field(default_factory=list)
    #: for a compared value, the nodes computing it from the last compared values (the
    #: nodes inside a CNTK block that only shows its output: a Conv before its bias and
    #: activation), as "name (op OP)"
    hidden_inputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def first_diverging(self) -> LayerComparison | None:
        return next((c for c in self.compared if not c.result.passed), None)

    def worst(self, n: int = 5) -> list[LayerComparison]:
        """The ``n`` layers furthest out of (or closest to) tolerance."""
        return sorted(self.compared, key=lambda c: -c.ratio)[:n]

    def lines(self) -> list[str]:
        """The report: the first diverging layer on a line of its own, then the worst ones."""
        out = [f"layers: {len(self.compared)} values compared in graph order, "
               f"{len(self.not_compared)} only on one side"]
        first = self.first_diverging
        if first is None:
            out.append("no diverging layer: every compared value is within tolerance")
        else:
            r = first.result
            what = (f"max|a-b| {r.max_abs:.3g} > tol {r.tolerance:.3g}" if r.shape_ok
                    else "shapes differ")
            hidden = self.hidden_inputs.get(first.name)
            after = (f" (computed through {', '.join(hidden)}, which only one side exposes)"
                     if hidden else "")
            out.append(f"first diverging layer: {first.name} (op {first.op}): {what}{after}")
        out.append(f"{'layer':<32} {'op':<20} {'max|a-b|':>10} {'tolerance':>10} {'x tol':>8}")
        for c in self.worst():
            r = c.result
            out.append(f"{c.name[:32]:<32} {c.op[:20]:<20} {r.max_abs:>10.3g} "
                       f"{r.tolerance:>10.3g} {c.ratio:>8.3g}")
        return out


def compare_layers(graph: Graph, ref: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                   rtol: float | None = None, atol: float = 0.0) -> LayerReport:
    """Compare every node output present in both ``ref`` and ``got``, in graph order.

    A value whose element count differs between the sides is listed as not
    compared (a framework may keep a value in another form, e.g. with a
    sequence axis), unless it is a graph output, where a difference is an error.
    """
    report = LayerReport()
    outputs = set(graph.outputs)
    producer = {out: node for node in graph.nodes for out in node.outputs if out}
    for node in graph.nodes:
        for name in node.outputs:
            if not name:
                continue
            if name not in ref or name not in got:
                report.not_compared.append(name)
                continue
            a, b = np.asarray(ref[name]), np.asarray(got[name])
            if a.size != b.size and name not in outputs:
                report.not_compared.append(name)
                continue
            report.compared.append(LayerComparison(node.op, compare(name, a, b, rtol, atol)))
            hidden = _hidden_producers(node, producer, set(report.not_compared))
            if hidden:
                report.hidden_inputs[name] = hidden
    return report


def _hidden_producers(node: Node, producer: Mapping[str, Node], hidden: set[str]) -> list[str]:
    """The nodes between ``node`` and the compared values it depends on, nearest first."""
    found: list[str] = []
    stack = [i for i in node.inputs if i in hidden and i in producer]
    seen: set[str] = set()
    while stack and len(found) < 8:
        value = stack.pop(0)
        if value in seen:
            continue
        seen.add(value)
        src = producer[value]
        found.append(f"{src.name} (op {src.op})")
        stack.extend(i for i in src.inputs if i in hidden and i in producer)
    return found
