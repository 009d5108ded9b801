"""Which CNTK outputs are training criteria, and what they score.

CNTK models are often saved with their loss and metric as outputs
(``C.combine([z, loss, metric])``, or the criteria alone).  Those need labels
and mean nothing at inference time, so by default the frontend drops them and
converts the prediction; when only criteria were saved, it converts what they
score.  A v2 file names criteria by their block (``CrossEntropyWithSoftmax``);
a v1 file has no blocks, so criteria are recognised by the shape of their
primitives (see :func:`_flattened_criterion`).  Kept apart from the builder
because it is model analysis, not graph building.
"""

from __future__ import annotations

import logging

from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk.model import BlockInfo, Function, Model

#: Notices go through logging: the CLI prints them as ``<prog>: <message>`` on stderr,
#: a library user configures (or silences) the ``mmconv`` logger as they like.
log = logging.getLogger(__name__)

#: Ops that only make sense while training; outputs computed by them are dropped.
TRAINING_OPS = frozenset({
    "CrossEntropyWithSoftmax", "ClassificationError", "SquaredError", "LambdaRank", "NDCG",
    "EditDistanceError", "ForwardBackward", "CosDistanceWithNegativeSamples",
    "LatticeSequenceWithSoftmax", "LabelsToGraph",
})

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


def drop_criteria(model: Model) -> list[str]:
    """The model's outputs minus training criteria (the default when no output is named).

    Dropped criteria are reported as a notice (a warning on the ``mmconv`` logger)
    naming them and the label inputs only they needed.  When every output is a
    criterion, the predictions they score are returned instead; when nothing is
    left, an :class:`UnsupportedError` asks for ``--dstNodeName``.
    """
    producer = model.producers()
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
        log.warning(f"the model's outputs are all training criteria ({', '.join(dropped)}); "
                    f"converting what they score instead: {names}")
        return predictions
    if not kept:
        raise UnsupportedError(
            f"{model.path}: every output is a training criterion ({', '.join(dropped)}); "
            "pick the prediction with --dstNodeName")
    if dropped:
        needed = {i for f in model.needed(kept) for i in f.inputs}
        unused = [v.display_name for v in model.inputs if v.uid not in needed]
        extra = f" and the inputs they alone need: {', '.join(unused)}" if unused else ""
        log.warning(f"dropped training-only outputs {', '.join(dropped)}{extra}")
    return kept


