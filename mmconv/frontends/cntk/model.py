"""A CNTK model as the CNTK frontend's converters see it, whichever file format it came from.

Both readers produce this structure: the v2 reader (protobuf ``Dictionary``,
what ``Function.save`` writes) and the legacy v1 reader (the binary format of
BrainScript and ``save_as_legacy_model``).  The v1 reader translates its node
types and attributes to the v2 vocabulary (PrimitiveOpType names and v2
attribute names), as CNTK itself does when it loads a v1 file, so one table of
converters serves both formats.

Conventions (they matter; CNTK stores things column-major):

- ``Variable.shape`` is in **Python order** (CNTK's Python API order, e.g.
  ``(3, 224, 224)`` for a CHW image), static axes only; dynamic axes (batch,
  sequence) are listed in ``dynamic_axes``.
- ``Variable.value`` (parameters and constants) is a C-ordered numpy array of
  exactly ``shape``: the file's column-major data read with the reversed
  shape, which is the same bytes.
- ``Function.attrs`` keep CNTK's v2 attribute names and **storage order**:
  an NDShape attribute (``kernelShape``, ``strides``, ``lowerPad``...) is a
  tuple as stored (reversed relative to Python order), an ``Axis`` attribute is
  an :class:`Axis` with the stored static index.  Converters do the
  reversal, in one place (:mod:`mmconv.frontends.cntk.axes`).
- Block functions are inlined by the readers: ``Model.functions`` holds only
  primitive functions, each carrying the stack of blocks it came from in
  ``blocks`` (outermost first), so converters can name IR nodes after the
  layer (``conv1``) the user knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Variable kinds, as numbered in CNTK's VariableKind enum.
VARIABLE_KINDS = {0: "input", 1: "output", 2: "parameter", 3: "constant", 4: "placeholder"}
#: Ops whose first input is the value of another time step (they close recurrence loops).
DELAY_OPS = frozenset({"PastValue", "FutureValue"})


@dataclass(frozen=True)
class Axis:
    """A CNTK axis attribute: a static axis index (storage order) or a named dynamic axis."""

    static_index: int
    name: str = ""
    is_ordered_dynamic: bool = False

    @property
    def is_static(self) -> bool:
        return not self.name or self.name.startswith("staticAxisIdx")


@dataclass(frozen=True)
class BlockInfo:
    """Where an inlined function came from: a layer such as ``conv1`` (op name ``Convolution``)."""

    uid: str
    name: str
    op_name: str
    #: The outer values bound to the block's arguments, in argument order (v2 reader;
    #: empty when unknown). With ``outputs`` this lets a converter replace the whole
    #: block by one IR op (e.g. CNTK's Softmax-with-axis block -> Softmax).
    inputs: tuple[str, ...] = ()
    #: The block's outputs (uids of its inner root's outputs).
    outputs: tuple[str, ...] = ()
    #: The block function's own attributes (e.g. ``axis``), storage order as elsewhere.
    attrs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Variable:
    """A value of the model: an input, a function output, a parameter or a constant."""

    uid: str
    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...]
    dynamic_axes: tuple[str, ...] = ()
    value: np.ndarray | None = None
    #: uid of the function producing it (kind == "output").
    owner: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.uid


@dataclass
class Function:
    """A primitive function: op type, inputs and outputs (variable uids), attributes."""

    uid: str
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    blocks: tuple[BlockInfo, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or (self.blocks[-1].name if self.blocks else "") or self.uid


@dataclass
class Model:
    """A whole CNTK model: variables by uid, functions in topological order, outputs."""

    path: str
    format: str  # "v2" or "v1"
    variables: dict[str, Variable]
    functions: list[Function]
    #: uids of the model's outputs (the root function's outputs, or a Combine's inputs).
    outputs: list[str]
    name: str = ""

    @property
    def inputs(self) -> list[Variable]:
        return [v for v in self.variables.values() if v.kind == "input"]

    def producers(self) -> dict[str, Function]:
        """Variable uid -> the function that computes it (inputs and parameters have none)."""
        return {out: f for f in self.functions for out in f.outputs}

    def needed(self, outputs: list[str]) -> list[Function]:
        """Functions the outputs depend on, in the model's (topological) order."""
        producer = self.producers()
        keep: set[str] = set()
        stack = [producer[o] for o in outputs if o in producer]
        while stack:
            f = stack.pop()
            if f.uid in keep:
                continue
            keep.add(f.uid)
            stack.extend(producer[i] for i in f.inputs if i in producer)
        return [f for f in self.functions if f.uid in keep]
