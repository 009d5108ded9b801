"""Keras masks: refused where a layer's output depends on one.

A ``Masking`` layer or an ``Embedding(mask_zero=True)`` attaches a mask to its output
(which time steps are padding); layers that support masking pass it on, and a
recurrent layer (or a 1D global average pool, a Softmax, attention) then *skips* the
masked steps. The IR's layers never see a mask, so such a model would convert to
different numbers: it is refused before anything is built, naming the layer fed a
mask and the layer the mask comes from. A mask that reaches no such layer changes
nothing and is ignored (the Masking layer itself is converted as before).

Keras 3 functional configs name the mask a layer was called with (``kwargs.mask``);
Sequential models and Keras 2 files do not, so masks are also followed from their
source through the layers Keras passes them through (``supports_masking`` with the
default ``compute_mask``: keras/src/layers).
"""

from __future__ import annotations

from mmconv.errors import UnsupportedError
from mmconv.frontends.keras.model import Layer, Ref, Spec, tensor_refs

#: layers whose result depends on the mask they are given
USERS = frozenset({"LSTM", "GRU", "SimpleRNN", "Bidirectional", "RNN", "ConvLSTM1D",
                   "ConvLSTM2D", "ConvLSTM3D", "GlobalAveragePooling1D", "Softmax",
                   "Attention", "AdditiveAttention", "MultiHeadAttention",
                   "GroupedQueryAttention", "TimeDistributed"})
#: layers that hand their input's mask on unchanged (merges: any input's)
PASSES = frozenset({"Dense", "Activation", "Dropout", "SpatialDropout1D", "GaussianNoise",
                    "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                    "BatchNormalization", "LayerNormalization", "ReLU", "LeakyReLU", "PReLU",
                    "ELU", "Rescaling", "Normalization", "Identity", "Add", "Subtract",
                    "Multiply", "Average", "Maximum", "Minimum", "Concatenate"})


def _source(layer: Layer) -> bool:
    return layer.class_name == "Masking" or (
        layer.class_name == "Embedding" and bool(layer.config.get("mask_zero")))


def _refuse(path: str, layer: Layer, origin: str) -> None:
    raise UnsupportedError(
        f"{path}: layer {layer.name!r} ({layer.class_name}) is fed the mask of {origin!r}: "
        "Keras skips the masked (padding) steps there, which the converted model cannot; "
        "to convert, remove the Masking layer or mask_zero=True (padding steps are then "
        "computed like any others)")


def _layer(path: str, layer: Layer, masks: list[str | None], kwargs: dict) -> str | None:
    """The mask origin of ``layer``'s outputs given its inputs' (refusing a user)."""
    mask = next((m for m in masks if m), None)
    explicit = tensor_refs(kwargs.get("mask")) if kwargs else []
    if explicit:  # named by the source layer when it was followed here
        _refuse(path, layer, mask or explicit[0][0])
    if layer.inner is not None:
        return next((m for m in _run(path, layer.inner, masks) if m), None)
    if mask and layer.class_name in USERS:
        _refuse(path, layer, mask)
    if _source(layer):
        return layer.name
    return mask if layer.class_name in PASSES else None


def _run(path: str, spec: Spec, masks: list[str | None]) -> list[str | None]:
    if spec.kind == "Sequential":
        mask = masks[0] if masks else None
        for layer in spec.layers:
            mask = _layer(path, layer, [mask], {})
        return [mask]
    have: dict[tuple[str, int], str | None] = {(r[0], r[1]): m
                                              for r, m in zip(spec.inputs, masks, strict=False)}
    pending = [(la, i) for la in spec.layers if la.class_name != "InputLayer"
               for i in range(len(la.calls))]
    while pending:
        left = []
        for la, i in pending:
            refs: list[Ref] = la.calls[i]
            if all((r[0], r[1]) in have for r in refs):
                kwargs = la.call_kwargs[i] if i < len(la.call_kwargs) else {}
                have[(la.name, i)] = _layer(path, la, [have[(r[0], r[1])] for r in refs],
                                            kwargs)
            else:
                left.append((la, i))
        if len(left) == len(pending):
            break  # a damaged config: the builder reports it
        pending = left
    return [have.get((r[0], r[1])) for r in spec.outputs]


def check_masks(path: str, spec: Spec) -> None:
    """Refuse (one line) the first layer whose result depends on a Keras mask."""
    _run(path, spec, [None] * max(1, len(spec.inputs)))
