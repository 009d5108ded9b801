"""MaxRoiPool as CNTK's ``roipooling``, for the form CNTK models come in.

CNTK's ``roipooling(x, rois, MAX_POOLING, (ph, pw), spatial_scale)`` takes, per
sample, a feature map (C, H, W) and its boxes (R, 4) and yields (R, C, ph, pw)
per sample.  The IR op takes all boxes of the batch as one static [N*R, 5]
tensor whose first column is the sample index; the CNTK frontend builds that
column with a CumSum over the batch axis, a Concat and a Reshape (-1, 5), and
reshapes the pooled [N*R, C, ph, pw] back to [N, R, C, ph, pw].

:func:`roi_pattern` recognizes that form, so the handler reads the per-sample
boxes directly; the index-column nodes are then unused and not emitted (they
work across the batch, which CNTK cannot express).  The pooled value is
"batch-folded": its IR axis 0 is N*R while the CNTK variable holds (R, C, ph,
pw) per sample; only the Reshape back to [N, R, ...] may read it.  Any other
MaxRoiPool (boxes from elsewhere) is refused with the node's name.
"""

from __future__ import annotations

from mmconv.emitters.cntk.context import HANDLERS, EmitContext, ints
from mmconv.emitters.codegen import literal
from mmconv.ir.core import Graph, Node


def _ancestors_have_batch_cumsum(graph: Graph, value: str, producers: dict[str, Node]) -> bool:
    stack, seen = [value], set()
    while stack:
        name = stack.pop()
        node = producers.get(name)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op == "CumSum" and int(node.attr("axis")) == 0:
            return True
        stack.extend(i for i in node.inputs if i)
    return False


def roi_pattern(graph: Graph, node: Node) -> tuple[str, str] | None:
    """``(feature map, per-sample boxes)`` when ``node``'s ROIs are the frontend's
    batch-indexed form of a batched [N, R, 4] box tensor, else None."""
    producers = graph.producers()
    flat = producers.get(node.inputs[1])
    if flat is None or flat.op != "Reshape" or list(flat.attr("shape"))[-1:] != [5]:
        return None
    concat = producers.get(flat.inputs[0])
    if concat is None or concat.op != "Concat" or len(concat.inputs) != 2:
        return None
    index, boxes = concat.inputs
    box_shape = graph.value(boxes).shape
    x_shape = graph.value(node.inputs[0]).shape
    if (len(box_shape) != 3 or box_shape[0] is not None or box_shape[2] != 4
            or int(concat.attr("axis")) % 3 != 2 or not x_shape or x_shape[0] is not None):
        return None
    if not _ancestors_have_batch_cumsum(graph, index, producers):
        return None
    return node.inputs[0], boxes


@HANDLERS.register("MaxRoiPool")
def emit_max_roi_pool(ctx: EmitContext, node: Node) -> None:
    found = ctx.roi_inputs.get(node.name)
    if found is None:
        raise ctx.unsupported(node, "ROIs not in the per-sample form CNTK's roipooling takes (only "
                              "the CNTK frontend's batch-indexed boxes map back)")
    x, boxes = found
    if not (ctx.batched(x) and ctx.batched(boxes)):
        raise ctx.unsupported(node, "feature map and boxes must both carry the batch axis")
    pooled = ints(node.attr("pooled_shape"))
    scale = literal(float(node.attr("spatial_scale")))
    ctx.assign(node, f"C.roipooling({ctx.ref(x)}, {ctx.ref(boxes)}, C.MAX_POOLING, {pooled}, "
                     f"spatial_scale={scale}, {ctx.name_kw(node)})", batched=True)
    ctx.folded.add(node.outputs[0])
