"""What every emitter's context and driver share: IR queries and all-at-once error reporting.

Shared infrastructure of the emitters (like :mod:`mmconv.emitters.codegen`), not
an emitter: each target's ``EmitContext`` derives from :class:`IRQueries` and
its driver runs the nodes through :func:`emit_all`, so a user sees every node
a target cannot express in one message, worded the same for every target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np

from mmconv.errors import UnsupportedError
from mmconv.ir.core import Graph, Node, Shape


class IRQueries:
    """The IR facts handlers ask for, answered from ``self.graph`` (shapes inferred)."""

    graph: Graph

    def shape(self, name: str) -> Shape:
        """Static IR shape of a value (``None`` for a dynamic dim)."""
        return self.graph.value(name).shape

    def dtype(self, name: str) -> str:
        """IR dtype name (a numpy dtype name) of a value."""
        return self.graph.value(name).dtype

    def rank(self, name: str) -> int:
        return self.graph.value(name).rank

    def weight(self, name: str) -> np.ndarray | None:
        """The array of a weight, or None when ``name`` is computed at run time (or "")."""
        return self.graph.weights.get(name) if name else None


class _Emits(Protocol):
    def emit(self, node: Node) -> None: ...


def emit_all(ctx: _Emits, nodes: Iterable[Node], target: str,
             problems: list[str] | None = None,
             on_error: Callable[[Node], None] | None = None) -> None:
    """Run ``ctx.emit`` on every node; raise one UnsupportedError naming every failure.

    ``problems`` may carry failures found before the nodes (e.g. inputs);
    ``on_error(node)`` lets a target stand in for a failed node's outputs so the
    nodes after it are still checked.
    """
    problems = [] if problems is None else problems
    for node in nodes:
        try:
            ctx.emit(node)
        except UnsupportedError as exc:
            problems.append(str(exc))
            if on_error is not None:
                on_error(node)
    if len(problems) == 1:
        raise UnsupportedError(problems[0])
    if problems:
        raise UnsupportedError(
            f"{len(problems)} nodes cannot be emitted as {target}: " + "; ".join(problems))
