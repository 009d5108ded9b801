"""Scan (the IR's general recurrent loop) as a for-loop over time in ``forward``.

The body becomes a method of KitModel (``<node>_step``), written by the same handlers
as the top graph: its layers and the outer weights it reads are KitModel's submodules
and buffers like any others, so the model stays one state_dict and trainable.
``forward`` broadcasts ``[1, ...]`` initial states over the batch (``expand``), calls
the step on ``x[:, t]`` for t = 0 .. T-1 (T-1 .. 0 when reverse), and stacks each step
output on axis 1 (back in input order when reverse).  Plain Python control flow on
tensors, so ``torch.jit.script`` compiles it with T dynamic, like the time loop of the
``OnnxLSTM``/``OnnxGRU``/``OnnxRNN`` recurrent layers.
"""

from __future__ import annotations

from mmconv.emitters.base import emit_all
from mmconv.emitters.pytorch.context import HANDLERS, WIDTH, EmitContext, Method
from mmconv.ir.core import Graph, Node
from mmconv.ir.ops.loop import scan_layout

#: One indentation level inside forward's generated for-loop.
_IN_LOOP = "    "


@HANDLERS.register("Scan")
def emit_scan(ctx: EmitContext, node: Node) -> None:
    body: Graph = node.attr("body")
    s = scan_layout(node)[0]
    step = ctx.attrs.fresh(f"{node.name}_step")
    with ctx.body(body) as params:
        emit_all(ctx, body.nodes, ctx.target)
        returns = [ctx.value(o) for o in body.outputs]
        lines = ctx.lines
    ctx.methods.append(Method(step, params, returns, lines))

    xs = [ctx.value(x) for x in node.inputs[s:]]
    batch = ctx.shape(node.inputs[s])[0]
    states = [ctx.out(node, i) for i in range(s)]  # the final states are the loop's states
    for var, port in zip(states, node.inputs[:s], strict=True):
        shape = ctx.shape(port)
        value = ctx.value(port)
        if shape[0] == 1 and batch != 1:  # a [1, ...] state broadcast over the batch
            rest = "".join(", -1" for _ in shape[1:])
            value = f"{value}.expand({xs[0]}.shape[0]{rest})"
        ctx.line(f"{var} = {value}")
    ys_names = node.outputs[s:]
    stacks = [ctx.locals(ctx.fresh(f"{y}_steps")) for y in ys_names]
    for var in stacks:
        ctx.line(f"{var}: list[torch.Tensor] = []")
    t = ctx.locals(ctx.fresh(f"{node.name}_t"))
    steps = f"range({xs[0]}.shape[1] - 1, -1, -1)" if node.attr("reverse") \
        else f"range({xs[0]}.shape[1])"
    ctx.line(f"for {t} in {steps}:")
    ys = [ctx.locals(ctx.fresh(f"{y}_step")) for y in ys_names]
    targets = ", ".join([*states, *ys])
    args = ", ".join([*states, *(f"{x}[:, {t}]" for x in xs)])
    # forward's body is two levels in, the call three
    if len(f"{_IN_LOOP * 3}{targets} = self.{step}({args})") <= WIDTH:
        ctx.line(f"{_IN_LOOP}{targets} = self.{step}({args})")
    else:  # the arguments on a line of their own
        ctx.line(f"{_IN_LOOP}{targets} = self.{step}(")
        ctx.line(f"{_IN_LOOP * 2}{args})")
    for var, y in zip(stacks, ys, strict=True):
        ctx.line(f"{_IN_LOOP}{var}.append({y})")
    for i, var in enumerate(stacks):
        if node.attr("reverse"):
            ctx.line(f"{var}.reverse()")
        ctx.line(f"{ctx.out(node, s + i)} = torch.stack({var}, 1)")
