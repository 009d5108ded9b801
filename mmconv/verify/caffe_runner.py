"""Running a Caffe model (``NAME.prototxt`` + ``NAME.caffemodel``) in OpenCV's dnn module.

OpenCV 4 reads Caffe networks (``cv2.dnn.readNetFromCaffe``; OpenCV 5 dropped
the importer, hence ``opencv-python-headless<5``, the ``caffe`` extra).  Inputs
are set by blob name and outputs fetched by layer name: the Caffe emitter gives
every IR value a layer and a blob of its own name, so the IR graph's names are
the network's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, RuntimeUnavailableError, UsageError
from mmconv.formats.caffe import caffe_paths


def caffe_files(path: str | Path) -> tuple[Path, Path]:
    """The prototxt and caffemodel of ``NAME``; both must exist."""
    files = caffe_paths(path)
    for p in files:
        if not p.is_file():
            raise UsageError(f"{p}: no such file (a Caffe model is NAME.prototxt + "
                             "NAME.caffemodel)")
    return files


def import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise RuntimeUnavailableError(
            'running Caffe models needs OpenCV 4: pip install "mmconv[caffe]"') from None
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):
        raise RuntimeUnavailableError(
            f"OpenCV {cv2.__version__} has no Caffe importer (OpenCV 5 removed it): "
            'pip install "opencv-python-headless<5"')
    return cv2


def run_caffe(path: str | Path, inputs: Mapping[str, np.ndarray], outputs: Sequence[str],
              ranks: Sequence[int] | None = None) -> list[np.ndarray]:
    """Run ``NAME.prototxt``/``NAME.caffemodel`` on ``inputs`` (blob name -> array) and
    return the ``outputs`` (layer names), float32 as OpenCV computes.

    OpenCV holds blobs as Mats of at least two dims (a ``[N]`` blob comes back
    ``[N, 1]``); with ``ranks`` (the outputs' ranks in the network) such trailing
    unit axes are dropped again.
    """
    cv2 = import_cv2()
    prototxt, caffemodel = caffe_files(path)
    try:
        net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    except cv2.error as exc:
        raise ModelFormatError(f"{prototxt}: OpenCV cannot load it ({_first(exc)})") from None
    for name, array in inputs.items():
        net.setInput(np.ascontiguousarray(array, dtype=np.float32), name)
    try:
        got = net.forward(list(outputs))
    except cv2.error as exc:
        raise ModelFormatError(f"{prototxt}: OpenCV failed to run it ({_first(exc)})") from None
    arrays = [np.asarray(a) for a in got]
    if ranks is not None:
        arrays = [a.reshape(a.shape[:r]) if a.ndim > r and all(d == 1 for d in a.shape[r:])
                  else a for a, r in zip(arrays, ranks, strict=True)]
    return arrays


def _first(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
