"""The Caffe runtime the tests check against: OpenCV 4's dnn module (``mmconv[caffe]``).

Without OpenCV the Caffe tests skip on a developer machine and fail under
``CI=true`` (scripts/test.sh installs the extra), like the CNTK-backed tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from mmconv.ir import Graph


@pytest.fixture(scope="session", autouse=True)
def cv2_available() -> None:
    try:
        import cv2  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail('OpenCV is required under CI=true: pip install "mmconv[caffe]"')
        pytest.skip('OpenCV not installed: pip install "mmconv[caffe]"')


def run(path: Path, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
        graph: Graph | None = None) -> list[np.ndarray]:
    """NAME.prototxt + NAME.caffemodel in OpenCV (the --verify runner's own code); with
    ``graph``, outputs get the graph's ranks back (OpenCV returns [N] as [N, 1])."""
    from mmconv.verify.caffe_runner import run_caffe

    ranks = [graph.value(o).rank for o in outputs] if graph is not None else None
    return run_caffe(path, feeds, outputs, ranks)
