"""Shape inference of the IR ops against hand-computed sizes."""

from __future__ import annotations

import numpy as np
import pytest

from mmconv.errors import IRError
from mmconv.ir import Graph, infer_shapes


def out_shape(op: str, in_shapes: list[tuple], weights: dict | None = None, **attrs):
    g = Graph()
    names = []
    for i, shape in enumerate(in_shapes):
        g.add_input(f"in{i}", "float32", shape)
        names.append(f"in{i}")
    for name, shape in (weights or {}).items():
        g.add_weight(name, np.zeros(shape, np.float32))
        names.append(name)
    g.add_node(op, names, "y", **attrs)
    g.outputs = ["y"]
    return infer_shapes(g).value("y").shape


def test_conv_strides_pads_dilation_groups() -> None:
    assert out_shape("Conv", [(None, 3, 224, 224)], {"W": (64, 3, 7, 7)},
                     strides=(2, 2), pads=(3, 3, 3, 3)) == (None, 64, 112, 112)
    assert out_shape("Conv", [(2, 8, 10, 10)], {"W": (8, 2, 3, 3)}, group=4,
                     dilations=(2, 2)) == (2, 8, 6, 6)
    # asymmetric padding (CNTK/TF "same" with an even kernel)
    assert out_shape("Conv", [(1, 1, 5, 5)], {"W": (1, 1, 4, 4)},
                     pads=(1, 1, 2, 2)) == (1, 1, 5, 5)


def test_conv_channel_mismatch_names_node() -> None:
    with pytest.raises(IRError, match="node 'y' \\(Conv\\): input has 3 channels"):
        out_shape("Conv", [(1, 3, 8, 8)], {"W": (4, 2, 3, 3)})


@pytest.mark.parametrize(
    ("size", "ceil", "expected"),
    [(7, False, 3), (7, True, 4), (6, True, 3), (8, True, 4)],
)
def test_pool_ceil_mode(size: int, ceil: bool, expected: int) -> None:
    shape = out_shape("MaxPool", [(1, 1, size, size)], kernel_shape=(2, 2), strides=(2, 2),
                      ceil_mode=ceil)
    assert shape == (1, 1, expected, expected)


def test_ceil_mode_drops_window_starting_in_end_padding() -> None:
    # in=5, k=2, s=2, pads 0/1: ceil((5+1-2)/2)+1 = 3 and the last window starts at 4 < 5: kept
    assert out_shape("AveragePool", [(1, 1, 5, 5)], kernel_shape=(2, 2), strides=(2, 2),
                     pads=(0, 0, 1, 1), ceil_mode=True) == (1, 1, 3, 3)
    # in=4, k=1, s=2, pads 0/2: ceil(5/2)+1 = 4 but window 3 starts at 6 >= 4: dropped
    assert out_shape("MaxPool", [(1, 1, 4, 4)], kernel_shape=(1, 1), strides=(2, 2),
                     pads=(0, 0, 2, 2), ceil_mode=True) == (1, 1, 3, 3)


def test_dense_flatten_reshape_concat_transpose() -> None:
    assert out_shape("Flatten", [(None, 4, 3, 3)]) == (None, 36)
    assert out_shape("Dense", [(None, 36)], {"W": (10, 36), "B": (10,)}) == (None, 10)
    assert out_shape("Reshape", [(None, 36)], shape=(0, 4, -1)) == (None, 4, 9)
    assert out_shape("Reshape", [(2, 36)], shape=(-1, 6, 6)) == (2, 6, 6)
    assert out_shape("Concat", [(None, 2, 5, 5), (None, 3, 5, 5)], axis=1) == (None, 5, 5, 5)
    assert out_shape("Transpose", [(None, 2, 5, 7)], perm=(0, 2, 3, 1)) == (None, 5, 7, 2)
    with pytest.raises(IRError, match="cannot become"):
        out_shape("Reshape", [(2, 36)], shape=(5, 7))


def test_broadcasting() -> None:
    assert out_shape("Add", [(None, 4, 5, 5), (4, 1, 1)]) == (None, 4, 5, 5)
    with pytest.raises(IRError, match="do not broadcast"):
        out_shape("Mul", [(2, 3), (4,)])
    assert out_shape("Greater", [(2, 3), (3,)]) == (2, 3)


def test_batchnorm_parameter_sizes_checked() -> None:
    c = {n: (4,) for n in ("s", "b", "m", "v")}
    assert out_shape("BatchNormalization", [(None, 4, 5, 5)], c) == (None, 4, 5, 5)
    per_elem = {n: (4, 5, 5) for n in ("s", "b", "m", "v")}
    assert out_shape("BatchNormalization", [(None, 4, 5, 5)], per_elem,
                     spatial=False) == (None, 4, 5, 5)
    with pytest.raises(IRError, match="scale has shape"):
        out_shape("BatchNormalization", [(None, 4, 5, 5)], per_elem)


def test_lrn_size_must_be_odd() -> None:
    assert out_shape("LRN", [(None, 8, 4, 4)], size=5) == (None, 8, 4, 4)
    with pytest.raises(IRError, match="positive odd number, got 4"):
        out_shape("LRN", [(None, 8, 4, 4)], size=4)
