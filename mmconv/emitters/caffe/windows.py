"""Fitting IR window geometry (explicit begin/end pads, floor or ceil rounding) to
Caffe's (one symmetric pad per axis; pools round up, convolutions down).

Per spatial axis the IR's output ``i`` reads the window starting at
``-pad_begin + i * stride``.  Caffe's output ``j`` with pad ``p`` starts at
``-p + j * stride``; with ``p = pad_begin + m * stride`` Caffe's output
``m + i`` is the IR's output ``i``.  So a Caffe layer with that pad followed by
a crop of ``[m, m + out)`` along the axis (a Slice layer, only when something
is cut) computes the IR op exactly, provided Caffe produces at least ``m + out``
outputs and, for average pools, divides each kept window by the same count.
:func:`fit_axis` finds the smallest such ``m`` by computing both geometries;
no case analysis of asymmetric pads or rounding modes is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AxisFit:
    """Caffe's pad for one axis and the outputs to keep: ``[crop, crop + out)`` of ``size``."""

    pad: int
    crop: int
    out: int
    size: int


def caffe_pool_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's pooled size: rounded up, minus a last window starting in the end padding."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def caffe_conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's convolution output size (rounded down); ``kernel`` is the dilated extent."""
    return (size + 2 * pad - kernel) // stride + 1


def caffe_pool_divisor(start: int, size: int, kernel: int, pad: int) -> int:
    """How many elements Caffe's AVE pooling divides a window starting at ``start`` by:
    the window cut at the end of the padded input, padding included."""
    return min(start + kernel, size + pad) - start


def fit_axis(size: int, kernel: int, stride: int, pad_begin: int, out: int, *, pool: bool,
             divisor: Callable[[int], int] | None = None, max_pad: int | None = None
             ) -> AxisFit | None:
    """The smallest Caffe pad reproducing the IR's windows on one axis, or None.

    ``divisor(start)`` is the IR's divisor of the window starting at ``start`` (average
    pools); ``max_pad`` bounds Caffe's pad (BVLC Caffe's pooling requires pad < kernel).
    """
    limit = max_pad if max_pad is not None else pad_begin + (out + kernel) * stride
    m = 0
    while pad_begin + m * stride <= limit:
        pad = pad_begin + m * stride
        size_c = (caffe_pool_out if pool else caffe_conv_out)(size, kernel, stride, pad)
        if size_c >= m + out and (divisor is None or all(
                caffe_pool_divisor(-pad_begin + i * stride, size, kernel, pad)
                == divisor(-pad_begin + i * stride) for i in range(out))):
            return AxisFit(pad, m, out, size_c)
        m += 1
    return None
