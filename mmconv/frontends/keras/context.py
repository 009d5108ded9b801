"""The Keras frontend's builder context: IR values with a tracked layout.

Keras tensors are channels-last; the IR is channels-first.  Rather than wrapping
every layer in transposes, each Keras tensor is an IR value *plus a permutation*
(:class:`Tensor`): ``ir_value == keras_tensor.transpose(perm)``.  A convolution
asks for its input channels-first, a LayerNormalization over the last axis asks
for the Keras order, a Permute layer only changes the permutation; a Transpose
node is added only when a layer needs a layout its input is not in (and is
cached, so a tensor feeding many convolutions is transposed once).  In a conv
net this leaves one Transpose after each model input and one before each
feature-map output; a Dense-only model gets none.

Flattening a channels-first map gives the IR's (C, H, W) element order, not
Keras' (H, W, C): the result carries the map's layout (:attr:`Tensor.flat`) and
a following Dense permutes its weight rows instead of the data being transposed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError
from mmconv.frontends.base import BuildContext
from mmconv.frontends.keras.model import Layer
from mmconv.ir.core import Graph

Perm = tuple[int, ...]


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def channels_first(rank: int) -> Perm:
    """The perm taking a Keras (N, *spatial, C) tensor to the IR's (N, C, *spatial)."""
    return (0, rank - 1, *range(1, rank - 1)) if rank >= 3 else identity(rank)


def inverse(perm: Sequence[int]) -> Perm:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


@dataclass(frozen=True)
class Tensor:
    """A Keras tensor: IR ``value`` = the Keras tensor transposed by ``perm``.

    ``flat`` is set on a rank-2 value made by flattening a map whose IR layout was
    not Keras' order: ``(map perm, Keras map shape without batch)``; the IR value
    holds the elements in the order of the map transposed by that perm.
    """

    value: str
    perm: Perm
    flat: tuple[Perm, tuple[int, ...]] | None = None


class KerasContext(BuildContext):
    def __init__(self, graph: Graph, path: str, keras_version: str = "") -> None:
        super().__init__(graph)
        self.path = path
        self.keras_version = keras_version
        self._transposed: dict[tuple[str, Perm], str] = {}
        self.store: Any = None
        #: nesting depth of the model being run (0: the file's top-level model)
        self.depth = 0
        #: IR value -> (Keras layer, output index, perm Keras -> IR, IR shape); see builder
        self.source_values: dict[str, tuple[str, int, list[int], tuple]] = {}

    # -- layouts -------------------------------------------------------------------
    def keras_shape(self, t: Tensor) -> tuple:
        if t.flat is not None:
            return self.shape(t.value)
        shape = self.shape(t.value)
        inv = inverse(t.perm)
        return tuple(shape[inv[a]] for a in range(len(shape)))

    def rank(self, t: Tensor) -> int:
        return len(self.shape(t.value))

    def ir_axis(self, t: Tensor, keras_axis: int) -> int:
        """The IR axis holding Keras axis ``keras_axis`` (negative counts from the end)."""
        rank = len(t.perm)
        axis = keras_axis + rank if keras_axis < 0 else keras_axis
        if not 0 <= axis < rank:
            raise ModelFormatError(f"{self.path}: axis {keras_axis} out of range for rank {rank}")
        return t.perm.index(axis)

    def unflat(self, t: Tensor, name: str) -> Tensor:
        """A flattened-permuted value in Keras' element order (Reshape, Transpose, Flatten)."""
        if t.flat is None:
            return t
        perm, kshape = t.flat
        ir_map = tuple(kshape[p - 1] for p in perm[1:])
        shaped = self.add("Reshape", [t.value], f"{name}/unflatten", shape=[0, *ir_map])
        keras = self.add("Transpose", [shaped], f"{name}/to_keras_order",
                         perm=list(inverse(perm)))
        return Tensor(self.add("Flatten", [keras], f"{name}/flatten", axis=1),
                      identity(2))

    def in_perm(self, t: Tensor, perm: Perm, name: str) -> str:
        """The IR value of ``t`` in layout ``perm`` (a cached Transpose when needed)."""
        t = self.unflat(t, name)
        if t.perm == tuple(perm):
            return t.value
        key = (t.value, tuple(perm))
        found = self._transposed.get(key)
        if found is None:
            inv = inverse(t.perm)
            q = [inv[p] for p in perm]
            tag = "nchw" if tuple(perm) == channels_first(len(perm)) else (
                "nhwc" if tuple(perm) == identity(len(perm)) else "perm")
            found = self.add("Transpose", [t.value], f"{t.value}_{tag}", perm=q)
            self._transposed[key] = found
        return found

    def keras_order(self, t: Tensor, name: str) -> str:
        return self.in_perm(t, identity(len(t.perm)) if t.flat is None else (0, 1), name)

    def cf(self, t: Tensor, name: str) -> str:
        return self.in_perm(t, channels_first(len(t.perm)) if t.flat is None else (0, 1), name)

    @staticmethod
    def like(t: Tensor, value: str) -> Tensor:
        """A result of an elementwise op on ``t``: same layout."""
        return Tensor(value, t.perm, t.flat)

    def common(self, ts: Sequence[Tensor], name: str) -> tuple[list[str], Perm]:
        """Operands of an n-ary elementwise/concat op in one layout: channels-first when
        any operand already is (convolutions dominate), else Keras order."""
        ranks = {len(t.perm) for t in ts}
        if len(ranks) == 1:
            perms = {t.perm for t in ts if t.flat is None}
            flats = {t.flat for t in ts}
            if len(perms) == 1 and len(flats) == 1 and all(t.flat is None for t in ts):
                return [t.value for t in ts], ts[0].perm
            rank = ranks.pop()
            want = channels_first(rank) if channels_first(rank) in perms else identity(rank)
            return [self.in_perm(t, want, name) for t in ts], want
        # different ranks broadcast in Keras' order
        return [self.keras_order(t, name) for t in ts], identity(max(len(t.perm) for t in ts))

    # -- weights -------------------------------------------------------------------
    def variables(self, layer: Layer, expected: Sequence[tuple[str, tuple[int, ...]]],
                  parts: Sequence[tuple[str, ...]] = ((),)) -> dict[str, Any]:
        """The layer's variables as h5py datasets, checked against the shapes the
        config implies (a file whose weights disagree with its config is refused).

        ``parts``: sub-paths under the layer holding them in a ``.keras`` file, in order
        (an RNN's ``("cell",)``; a Bidirectional's forward then backward cell); in an
        ``.h5`` they are the layer's variables that many levels further down."""
        if self.store.kind == "keras":
            found = [v for p in parts for v in self.store.variables((*layer.where, *p),
                                                                    layer.name)]
        else:
            found = self.store.variables(layer.h5_where, layer.name, 1 + len(parts[0]))
        if len(found) != len(expected):
            raise ModelFormatError(
                f"{self.path}: layer {layer.name!r} ({layer.class_name}) has {len(found)} "
                f"weight arrays in the file, its config needs {len(expected)} "
                f"({', '.join(n for n, _ in expected)})")
        out = {}
        for ds, (pname, shape) in zip(found, expected, strict=True):
            got = tuple(getattr(ds, "shape", ()) or ())
            if got != tuple(shape):
                raise ModelFormatError(
                    f"{self.path}: layer {layer.name!r}: weight {pname!r} has shape "
                    f"{list(got)} in the file, the config implies {list(shape)}")
            if getattr(ds, "dtype", np.dtype("O")).kind not in "fiu":
                raise ModelFormatError(
                    f"{self.path}: layer {layer.name!r}: weight {pname!r} is not numeric")
            out[pname] = ds
        return out

    def read(self, layer: Layer, pname: str, ds: Any) -> np.ndarray:
        try:
            return np.asarray(ds[()])
        except (OSError, ValueError, TypeError) as exc:
            raise ModelFormatError(
                f"{self.path}: layer {layer.name!r}: cannot read weight {pname!r} ({exc})"
            ) from None

    def weight(self, layer: Layer, pname: str, array: np.ndarray, dtype: str) -> str:
        return self.constant(f"{layer.name}/{pname}", np.asarray(array, dtype=dtype))
