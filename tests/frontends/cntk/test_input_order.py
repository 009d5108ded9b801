"""IR inputs follow CNTK's ``Function.arguments`` order, not the order variables sit in
the file (found by scripts/zoo_check.py: a Fast R-CNN saved by Function.save lists
its ROI input before the image, so ``--inputShape`` given in CNTK's order was
applied to the wrong inputs)."""

from __future__ import annotations

import pytest

from mmconv.errors import UsageError
from mmconv.frontends.cntk import convert, read_model
from tests.frontends.cntk._common import fixture


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_fast_rcnn_inputs_in_cntk_order(fmt: str) -> None:
    path = fixture("fast_rcnn_mini", fmt)
    if fmt == "v2":  # the file itself lists them the other way round
        assert [v.name for v in read_model(path).inputs] == ["rois", "features"]
    graph = convert(None, str(path))
    assert [v.name for v in graph.inputs] == ["features", "rois"]
    # --inputShape without names: in the order CNTK lists the arguments
    graph = convert(None, str(path), input_shapes=[(3, 32, 32), (4, 4)])
    assert [v.shape for v in graph.inputs] == [(None, 3, 32, 32), (None, 4, 4)]
    with pytest.raises(UsageError, match=r"input .features. has shape"):
        convert(None, str(path), input_shapes=[(4, 4), (3, 32, 32)])


def test_v1_order_is_what_cntk_reports_for_the_v1_file() -> None:
    """CNTK itself lists bn_per_element's arguments as (vec, features) after loading the
    legacy file (its outputs come back in another order there)."""
    graph = convert(None, str(fixture("bn_per_element", "v1")))
    assert [v.name for v in graph.inputs] == ["vec", "features"]
    graph = convert(None, str(fixture("bn_per_element", "v2")))
    assert [v.name for v in graph.inputs] == ["features", "vec"]
