"""IR graph -> an MXNet symbol graph and its parameters (no MXNet needed).

:func:`build` runs every live IR node through its handler (all failures are
reported at once), names the symbol's inputs after the IR inputs and makes
the IR outputs its heads, in order.  :func:`write_checkpoint` writes
``PREFIX-symbol.json`` and ``PREFIX-%04d.params`` as ``mx.model.save_checkpoint``
would, both atomically.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import numpy as np

from mmconv.emitters import base
from mmconv.emitters.base import emit_all, load_families
from mmconv.emitters.mxnet.context import HANDLERS, EmitContext
from mmconv.emitters.mxnet.params import write_params
from mmconv.emitters.mxnet.symbol import SymbolGraph
from mmconv.errors import IRError
from mmconv.formats.mxnet import checkpoint_paths
from mmconv.fsutil import atomic_path
from mmconv.ir import usedef
from mmconv.ir.core import Graph, Node
from mmconv.ir.infer import infer_shapes
from mmconv.ir.passes import folded_for_emit

#: The op-family modules; importing them fills HANDLERS.
FAMILIES = ("activation", "conv", "detection", "elementwise", "linalg", "loop", "normalization",
            "pool", "recurrent", "reduce", "shape", "spatial")


def load_handlers() -> None:
    """Import every family module so its handlers register (idempotent)."""
    load_families("mmconv.emitters.mxnet", FAMILIES)


def missing_handlers() -> list[str]:
    """IR ops without an MXNet handler (the tests pin this set)."""
    load_handlers()
    return base.missing_handlers(HANDLERS)


@dataclass
class Built:
    """An emitted model: the symbol, its parameters, and its input/output names."""

    symbol: SymbolGraph
    args: dict[str, np.ndarray]
    auxs: dict[str, np.ndarray]
    inputs: list[str] = field(default_factory=list)
    #: IR dtype of each head (MXNet carries bools as floats: the runner casts back)
    output_dtypes: list[str] = field(default_factory=list)

    def params(self) -> list[tuple[str, np.ndarray]]:
        """The params file's entries: ``arg:NAME`` then ``aux:NAME``, in emit order."""
        return ([(f"arg:{k}", v) for k, v in self.args.items()]
                + [(f"aux:{k}", v) for k, v in self.auxs.items()])


def build(graph: Graph) -> Built:
    """The symbol graph and parameters of ``graph``; one UnsupportedError lists every node
    MXNet cannot express."""
    load_handlers()
    infer_shapes(graph)
    graph = folded_for_emit(graph)
    for out in graph.outputs:
        if out not in graph.values:
            raise IRError(f"graph output {out!r} is not produced by any node")
    ctx = EmitContext(graph)
    for value in graph.inputs:
        ctx.entries[value.name] = ctx.variable(value.name)
    live = {n.name for n in usedef.live_nodes(graph)}
    def stand_in(node: Node) -> None:
        """A failed node's outputs as placeholders, so its consumers are still checked
        without repeating its error."""
        for out in node.outputs:
            ctx.entries[out] = ctx.variable(ctx.fresh(f"{out}/unsupported"))

    emit_all(ctx, (n for n in graph.nodes if n.name in live), "MXNet", on_error=stand_in)
    inputs = {v.name for v in graph.inputs}
    for out in graph.outputs:
        if out in graph.weights or out in inputs:
            # a head must be an operator output to carry the IR output's name
            entry = ctx.input(out)
            ctx.sym.heads.append(ctx.op("identity", [entry], out=None,
                                        hint=f"{out}/output"))
        else:
            ctx.sym.heads.append(ctx.entries[out])
    return Built(ctx.sym, ctx.args, ctx.auxs, [v.name for v in graph.inputs],
                 [graph.value(o).dtype for o in graph.outputs])


def write_checkpoint(built: Built, prefix: str | os.PathLike[str], epoch: int = 0) -> None:
    """Write both checkpoint files; on any failure neither is left behind."""
    sym_path, params_path = checkpoint_paths(prefix, epoch)
    text = built.symbol.to_json()
    with contextlib.ExitStack() as stack:
        tmp_p = stack.enter_context(atomic_path(params_path, suffix=".params"))
        with tmp_p.open("wb") as out:
            write_params(out, built.params())
        tmp_s = stack.enter_context(atomic_path(sym_path, suffix=".json"))
        tmp_s.write_text(text, encoding="utf-8")
    # the symbol file is renamed into place first, then the params file
