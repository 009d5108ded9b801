"""The state one Core ML emission shares between its op handlers.

Handlers (one module per IR op family, registered in :data:`HANDLERS`) turn an
IR node into lines of Python that call coremltools' MIL builder (``mb.conv(...)``).
The program is built by running those lines, in :func:`mmconv.emitters.coreml.emit_model`
and in the file ``mmtocode`` writes alike, so the code a user reads is the code
that made the model.  Handlers never import coremltools: the registry (and the
support matrix generated from it) works without the ``coreml`` extra.

Every value gets a Python identifier (:class:`~mmconv.emitters.codegen.Namer`)
and a MIL name (:func:`mil_sanitize`: the IR name with every run of characters
outside ``[A-Za-z0-9_]`` made one underscore, unique), so Core ML's input and
output names are the IR's wherever the IR's are already plain (``data``,
``prob``, even ``x`` or ``input``, which Python code may not shadow).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mmconv.dispatch import Registry
from mmconv.emitters.base import EmitContextBase
from mmconv.emitters.codegen import Namer, literal, unique
from mmconv.errors import UnsupportedError
from mmconv.ir.core import Graph, Node

#: A handler turns one IR node into MIL builder calls through the context.
Handler = Callable[["EmitContext", Node], None]

#: IR op name -> handler.  Filled by the family modules of this package.
HANDLERS: Registry[Handler] = Registry("Core ML emit handler")

#: Names the generated code defines itself (a model name must never shadow them).
CODE_NAMES = ("ct", "mb", "types", "Function", "Program", "build_program", "convert",
              "KitModel", "GRAPH", "INPUTS", "OUTPUTS", "main", "program", "weights", "np",
              "json", "Path")

_NOT_MIL = re.compile(r"[^0-9A-Za-z_]+")


def mil_sanitize(name: str) -> str:
    """A name Core ML accepts as is (coremltools renames others, with a warning)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = _NOT_MIL.sub("_", ascii_name).strip("_")
    if not text:
        return "v"
    return f"v_{text}" if text[0].isdigit() else text


#: IR dtype -> MIL dtype name in ``types`` (what Core ML can hold at run time).
MIL_DTYPES = {"float32": "fp32", "float16": "fp16", "int32": "int32", "bool": "bool"}


@dataclass(frozen=True)
class Ref:
    """A MIL variable in generated code (rendered as its identifier, not a literal)."""

    ident: str


@dataclass(frozen=True)
class Expr:
    """A Python expression made by the emitter itself (never from model strings)."""

    text: str


class EmitContext(EmitContextBase):
    """Collects the MIL builder lines and the arrays they read for one IR graph."""

    handlers = HANDLERS
    target = "Core ML target"

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.namer = Namer("v", taken=CODE_NAMES)
        self.lines: list[str] = []
        #: weights-dict key -> array: the IR weights the program reads, and arrays the
        #: emitter derived (folded BatchNorm, reshaped slopes) under fresh keys.
        self.arrays: dict[str, np.ndarray] = {}
        #: weights-dict key -> the IR weight it holds unchanged (for the weight check).
        self.weight_keys: dict[str, str] = {}
        #: const MIL name -> weights-dict key it reads
        self.const_keys: dict[str, str] = {}
        #: Every MIL op the program holds, in order: (op type, output MIL name).
        self.ops: list[tuple[str, str]] = []
        self._consts: dict[str, Ref] = {}
        #: Python identifier -> MIL name, and the MIL names given out
        self.mil: dict[str, str] = {}
        self._mil_used: set[str] = set()

    # -- values -------------------------------------------------------------
    def ident(self, name: str) -> str:
        """The Python identifier of an IR value (its MIL name: :meth:`mil_name`)."""
        ident = self.namer(name)
        if ident not in self.mil:
            self._claim_mil(ident, mil_sanitize(name))
        return ident

    def mil_name(self, name: str) -> str:
        """The MIL (and Core ML feature) name of an IR value."""
        return self.mil[self.ident(name)]

    def _claim_mil(self, ident: str, base: str) -> str:
        """Give Python identifier ``ident`` a unique MIL name made from ``base``."""
        self.mil[ident] = unique(base, self._mil_used)
        return self.mil[ident]

    def _fresh(self, hint: str) -> str:
        """An identifier for a helper value of the current node (``<node>_<hint>``)."""
        base = self.node.name if self.node is not None else "mmconv"
        return self._helper(f"{base}_{hint}")

    def _helper(self, base: str) -> str:
        ident = self.namer.fresh(base)
        self._claim_mil(ident, mil_sanitize(ident))
        return ident

    def var(self, name: str) -> Ref:
        """The MIL variable of IR value ``name``; a weight becomes a named ``mb.const``
        the first time it is read."""
        if name in self.graph.weights:
            return self.weight_var(name)
        return Ref(self.ident(name))

    def weight_var(self, name: str, array: np.ndarray | None = None) -> Ref:
        """A ``mb.const`` holding IR weight ``name`` (as stored, or ``array`` when the
        handler needs it in another shape/dtype: then it is a derived array)."""
        narrowed = array is None and self.graph.weights[name].dtype in (np.int64, np.float64)
        if narrowed:
            if name in self._consts:
                return self._consts[name]
            array = self._narrowed(name)
        if array is None:
            if name in self._consts:
                return self._consts[name]
            ident = self.ident(name)
            self.arrays[name] = self.graph.weights[name]
            self.weight_keys[name] = name
            ref = self._const_line(ident, name)
            self._consts[name] = ref
            return ref
        original = self.graph.weights[name]
        same = array.size == original.size and np.array_equal(
            np.asarray(array).reshape(-1), np.asarray(original).reshape(-1))
        ref = self.const(array, self.ident(name), of=name if same else None)
        if narrowed:
            self._consts[name] = ref
        return ref

    def _narrowed(self, name: str) -> np.ndarray:
        """An int64/float64 weight as int32/float32: Core ML computes in 32 bits."""
        original = self.graph.weights[name]
        if original.dtype == np.int64:
            info = np.iinfo(np.int32)
            if original.size and (original.min() < info.min or original.max() > info.max):
                raise UnsupportedError(f"weight {name!r} holds int64 values beyond int32; "
                                       "Core ML has no int64 tensors")
            return original.astype(np.int32)
        return original.astype(np.float32)

    def const(self, array: np.ndarray | Sequence[float], hint: str,
              of: str | None = None) -> Ref:
        """A ``mb.const`` of an array the emitter made (stored in the weights file);
        ``of`` names the IR weight it holds the same values of (in another shape)."""
        ident = self._helper(hint) if of is not None else self._fresh(hint)
        key = f"mmconv:{ident}"
        while key in self.graph.weights:  # a model may name a weight anything
            key += "_"
        self.arrays[key] = np.array(array, order="C")  # keeps 0-d arrays 0-d
        if of is not None:
            self.weight_keys[key] = of
        return self._const_line(ident, key)

    def _const_line(self, ident: str, key: str) -> Ref:
        self.lines.append(f"{ident} = mb.const(val=weights[{literal(key)}], "
                          f"name={literal(self.mil[ident])})")
        self.ops.append(("const", self.mil[ident]))
        self.const_keys[self.mil[ident]] = key
        return Ref(ident)

    # -- building -----------------------------------------------------------
    def call(self, op: str, out: str | None = None, *, hint: str | None = None,
             **kwargs: object) -> Ref:
        """One ``mb.<op>(...)`` line; its output is IR value ``out`` (named after it) or
        a fresh helper value named after the current node and ``hint``."""
        ident = self.ident(out) if out is not None else self._fresh(hint or op)
        args = ", ".join(f"{key}={_render(value)}" for key, value in kwargs.items()
                         if value is not None)
        self.lines.append(f"{ident} = mb.{op}({args}, name={literal(self.mil[ident])})")
        self.ops.append((op, self.mil[ident]))
        return Ref(ident)

    def call_multi(self, op: str, outputs: Sequence[str], **kwargs: object) -> list[Ref]:
        """One ``y, h = mb.<op>(...)`` line for an op with several outputs (lstm, gru,
        rnn): the op is named ``<node>_<op>``, coremltools names its outputs
        ``<name>_0``, ``<name>_1``...; the Python variables are ``<node>_<op>_<output>``."""
        base = self._fresh(op)
        mil = self.mil[base]
        idents = [self._helper(f"{base}_{hint}") for hint in outputs]
        self._mil_used.update(f"{mil}_{i}" for i in range(len(outputs)))
        args = ", ".join(f"{key}={_render(value)}" for key, value in kwargs.items()
                         if value is not None)
        self.lines.append(f"{', '.join(idents)} = mb.{op}({args}, name={literal(mil)})")
        self.ops.append((op, f"{mil}_0"))
        return [Ref(i) for i in idents]

    def input_cast(self, name: str, dtype: str) -> None:
        """A model input Core ML carries in another dtype (bool as int32, float16 as float32
        at the iOS15 opset): cast to the IR's dtype (MIL name) for the ops."""
        mil = self.mil_name(name)
        cast = self._claim_mil(f"{self.ident(name)}_{dtype}", f"{mil}_{dtype}")
        self.lines.append(f"{self.ident(name)} = mb.cast(x=main.inputs[{literal(mil)}], "
                          f"dtype={literal(dtype)}, name={literal(cast)})")
        self.ops.append(("cast", cast))

    # -- shapes -------------------------------------------------------------
    def static_shape(self, name: str) -> tuple[int, ...]:
        """The value's shape, all dims known (the builder fixed the batch)."""
        shape = self.shape(name)
        if any(d is None for d in shape):
            node = self.node
            raise UnsupportedError(f"value {name!r} has a dynamic shape {list(shape)}"
                                   f"{f' at node {node.name!r}' if node else ''}; "
                                   "the Core ML target needs static shapes")
        return tuple(int(d) for d in shape)  # type: ignore[arg-type]


def _render(value: object) -> str:
    """A builder argument as Python source: variables by identifier, lists of them as a
    list, everything else through :func:`~mmconv.emitters.codegen.literal`."""
    if isinstance(value, Ref):
        return value.ident
    if isinstance(value, Expr):
        return value.text
    if isinstance(value, (list, tuple)) and any(isinstance(v, Ref) for v in value):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return literal([v.item() if isinstance(v, np.generic) else v for v in value])
    return literal(value)
