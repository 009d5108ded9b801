"""CNTK's storage order vs Python order: the one place where axes are reversed.

CNTK stores shapes column-major, so attribute shapes (``kernelShape``,
``strides``, ``lowerPad``...) and static axis indices in a model file count
from the *last* Python axis.  The reader keeps attributes as stored (see
:mod:`mmconv.frontends.cntk.model`); converters call these helpers and never
reverse anything themselves.

In the IR, a CNTK sample of Python shape ``(C, H, W)`` with the batch axis
becomes ``(N, C, H, W)``: IR axis = Python axis + 1 when there is a batch axis.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmconv.errors import UnsupportedError
from mmconv.frontends.cntk.model import Axis


def py_shape(stored: Sequence[int]) -> tuple[int, ...]:
    """A stored (column-major) shape in Python order."""
    return tuple(stored)[::-1]


def per_axis(stored: Sequence[int] | Sequence[bool], rank: int, fill: int | bool,
             what: str) -> list:
    """A stored per-axis attribute as a Python-order list of ``rank`` values.

    CNTK lets such attributes be shorter than the rank: a single value applies to
    every axis, and missing trailing (stored) entries are ``fill``.
    """
    values = list(stored)
    if len(values) == 1 and rank > 1:
        values = values * rank
    if len(values) > rank:
        # Extra stored entries describe axes beyond the input (CNTK tolerates them).
        values = values[:rank]
    values = values + [fill] * (rank - len(values))
    if len(values) != rank:
        raise UnsupportedError(f"{what}: {len(stored)} values for rank {rank}")
    return values[::-1]


def static_axis(axis: Axis, rank: int, what: str) -> int:
    """A CNTK static axis attribute as a Python axis index in ``[0, rank)``.

    Stored index ``i`` counts from the last Python axis; negative stored indices
    count from the first one (CNTK's ``Axis(-1)`` is Python axis 0).
    """
    if not axis.is_static:
        raise UnsupportedError(f"{what}: dynamic axis {axis.name!r} is not supported")
    i = axis.static_index
    if i < 0:
        i += rank
    if not 0 <= i < rank:
        raise UnsupportedError(f"{what}: axis {axis.static_index} out of range for rank {rank}")
    return rank - 1 - i


def ir_axis(py_axis: int, lead: int | bool) -> int:
    """A Python (sample) axis as an IR axis: shifted past the ``lead`` dynamic axes
    (batch, and time for a sequence; ``True`` counts as the batch axis alone)."""
    return py_axis + int(lead)
