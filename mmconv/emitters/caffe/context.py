"""The state one Caffe emission shares between its op handlers.

A Caffe network is a list of layers reading and writing named blobs.  Handlers
(one module per IR op family, registered in :data:`HANDLERS`) add layers
through the :class:`EmitContext`:

- :meth:`EmitContext.final` writes the layer computing an IR value: the layer
  *and* its top blob are named after the IR value, so ``net.forward(name)`` in
  OpenCV and ``net.blobs[name]`` in Caffe find every IR value by its IR name;
- :meth:`EmitContext.layer` writes a helper layer of a decomposition (Clip as
  ReLUs, a crop after a pool): fresh names ``<node>/<step>`` that no IR name uses;
- :meth:`EmitContext.blob` is the Caffe blob holding an IR value (an op Caffe
  does not need, like Identity, maps its output onto its input's blob).

Caffe computes in float32 and has no constants feeding layers at run time:
weights live in layer blobs (``blobs`` of a Convolution, a Scale...), never as
operands.  Layer parameters are protobuf messages of the package's own schema
(:mod:`.caffe_pb2`).  Caffe blobs always carry the batch as axis 0, as the IR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmconv.dispatch import Registry
from mmconv.emitters.base import EmitContextBase
from mmconv.emitters.caffe import caffe_pb2 as pb
from mmconv.ir.core import Graph, Node

#: A handler writes the Caffe layers of one IR node through the context.
Handler = Callable[["EmitContext", Node], None]

#: IR op name -> handler.  Filled by the family modules of this package.
HANDLERS: Registry[Handler] = Registry("Caffe emit handler")

#: IR dtypes Caffe can carry (it computes in float32; wider or narrower floats are
#: converted, integers and booleans have no Caffe blob).
FLOAT_DTYPES = ("float32", "float64", "float16")


@dataclass
class Layer:
    """One Caffe layer: its parameters (no blobs) and its blobs' arrays, in order."""

    param: pb.LayerParameter
    blobs: list[np.ndarray] = field(default_factory=list)


class EmitContext(EmitContextBase):
    """Collects the layers of one IR graph as a Caffe network."""

    handlers = HANDLERS
    target = "Caffe target"

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.layers: list[Layer] = []
        #: IR value -> the Caffe blob that holds it
        self._blob: dict[str, str] = {}
        #: Pad nodes folded into the convolution that reads them: output -> (input, pads)
        self.folded_pads: dict[str, tuple[str, list[int]]] = {}
        self._layer_names: set[str] = set()

    # -- the IR side ----------------------------------------------------------------
    def static_shape(self, node: Node, name: str, skip_batch: bool = True) -> tuple[int, ...]:
        """The shape of ``name``, every dim known (the batch axis may be dynamic: it is
        returned as 1 unless ``skip_batch`` is False)."""
        shape = list(self.shape(name))
        if skip_batch and shape and shape[0] is None:
            shape[0] = 1
        if any(d is None for d in shape):
            raise self.unsupported(node, f"{name!r} has dynamic dims {list(self.shape(name))} "
                                   "besides the batch axis; Caffe blobs are static")
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]

    def need_weight(self, node: Node, name: str, what: str) -> np.ndarray:
        """The array of weight ``name``, or the node's error: Caffe layers keep their
        parameters in their own blobs, so a parameter computed at run time has no form."""
        array = self.weight(name)
        if array is None:
            raise self.unsupported(node, f"{what} is computed at run time; Caffe layers "
                                   "take their parameters as fixed blobs")
        return array

    # -- blobs ----------------------------------------------------------------------
    def blob(self, name: str) -> str:
        """The Caffe blob holding IR value ``name`` (an error for weights: Caffe has no
        constant operands)."""
        if name in self._blob:
            return self._blob[name]
        node = self.node
        if name in self.graph.weights:
            raise self.unsupported(node, f"input {name!r} is a constant; Caffe layers read "
                                   "only blobs computed from the inputs (constants live in "
                                   "layer parameters)")
        raise self.unsupported(node, f"input {name!r} has no Caffe blob (its producer "
                               "could not be emitted)")

    def alias(self, value: str, blob: str) -> None:
        """IR value ``value`` is held by existing blob ``blob`` (no layer needed)."""
        self._blob[value] = blob

    def has_blob(self, value: str) -> bool:
        return value in self._blob

    def stand_in(self, node: Node) -> None:
        """After ``node`` failed: placeholders for its outputs, so the nodes after it are
        checked for their own problems only (the network is not written)."""
        for out in node.outputs:
            self._blob.setdefault(out, f"<{out} unavailable>")

    # -- layers ---------------------------------------------------------------------
    def _add(self, name: str, type_: str, bottoms: Sequence[str], tops: Sequence[str],
             blobs: Sequence[np.ndarray], params: dict[str, Any]) -> None:
        layer = pb.LayerParameter(name=name, type=type_, bottom=list(bottoms), top=list(tops))
        for key, message in params.items():
            getattr(layer, key).CopyFrom(message)
        arrays = [np.ascontiguousarray(b, dtype=np.float32) for b in blobs]
        self.layers.append(Layer(layer, arrays))
        self._layer_names.add(name)

    def layer(self, type_: str, bottoms: Sequence[str], *, hint: str | None = None,
              n_tops: int = 1, blobs: Sequence[np.ndarray] = (), **params: Any) -> list[str]:
        """A helper layer of the current node; returns its (fresh) top names."""
        base = f"{self.node.name if self.node is not None else 'mmconv'}/{hint or type_}"
        name = self.fresh(base)
        tops = [name] if n_tops == 1 else [self.fresh(f"{name}:{i}") for i in range(n_tops)]
        self._add(name, type_, bottoms, tops, blobs, params)
        return tops

    def final(self, node: Node, type_: str, bottoms: Sequence[str], *, index: int = 0,
              blobs: Sequence[np.ndarray] = (), **params: Any) -> str:
        """The layer computing ``node``'s output ``index``, named (with its top) after it."""
        value = node.outputs[index]
        self._add(value, type_, bottoms, [value], blobs, params)
        self._blob[value] = value
        return value

    def identity(self, value: str) -> None:
        """Give IR value ``value`` a layer of its own name (graph outputs need one so a
        runtime finds them by name): a Power layer with its defaults is y = x."""
        if self._blob.get(value) == value:
            return
        source = self._blob[value]
        self._add(value, "Power", [source], [value], (), {})
        self._blob[value] = value

    def crop(self, blob: str, axis: int, start: int, length: int, size: int,
             hint: str = "crop") -> str:
        """``blob[start:start+length]`` along ``axis`` (of ``size``), by a Slice layer
        whose other pieces are left unused; the blob itself when nothing is cut."""
        if start == 0 and length == size:
            return blob
        points = [p for p in (start, start + length) if 0 < p < size]
        tops = self.layer("Slice", [blob], hint=hint, n_tops=len(points) + 1,
                          slice_param=pb.SliceParameter(axis=axis, slice_point=points))
        return tops[1 if start > 0 else 0]

    def as_2d(self, node: Node, value: str) -> str:
        """The blob of 1-D feature map ``value`` ``[N, C, L]`` seen as ``[N, C, L, 1]``
        (a Reshape layer): Caffe's convolutions and pools here are 2-D."""
        channels, length = self.static_shape(node, value)[1:]
        return self.layer("Reshape", [self.blob(value)], hint="to_2d",
                          reshape_param=pb.ReshapeParameter(
                              shape=pb.BlobShape(dim=[0, channels, length, 1])))[0]

    def from_2d(self, node: Node, blob: str) -> None:
        """``node``'s 1-D output ``[N, C, L]`` from the 2-D ``blob`` ``[N, C, L, 1]``."""
        channels, length = self.static_shape(node, node.outputs[0])[1:]
        self.final(node, "Reshape", [blob], reshape_param=pb.ReshapeParameter(
            shape=pb.BlobShape(dim=[0, channels, length])))

    def power(self, blob: str, *, power: float = 1.0, scale: float = 1.0, shift: float = 0.0,
              node: Node | None = None, hint: str = "power") -> str:
        """y = (shift + scale * x) ^ power: a helper layer, or ``node``'s final one."""
        param = pb.PowerParameter()
        if power != 1.0:
            param.power = power
        if scale != 1.0:
            param.scale = scale
        if shift != 0.0:
            param.shift = shift
        if node is not None:
            return self.final(node, "Power", [blob], power_param=param)
        return self.layer("Power", [blob], hint=hint, power_param=param)[0]
