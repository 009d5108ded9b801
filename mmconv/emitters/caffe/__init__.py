"""The Caffe emitter: IR graph -> ``NAME.prototxt`` + ``NAME.caffemodel``, as MMdnn wrote.

Written with protobuf from the package's own schema (``caffe.proto``: BVLC
Caffe's field numbers), so neither Caffe nor OpenCV is needed to write; the
files are checked in OpenCV 4's dnn module (``readNetFromCaffe``), a Caffe
runtime that installs from the package index (``mmconv[caffe]``).

- ``mmconvert -df caffe -om NAME`` (:func:`emit_model`): both files; ``NAME``
  may end in ``.prototxt`` or ``.caffemodel``, the pair is named after its stem.
- ``mmtocode -f caffe`` (:func:`emit_code`): the prototxt is Caffe's "code" -
  the readable, editable network - and the weights go to an npz (keys
  ``<layer>/<blob index>``) that loads with ``numpy.load`` alone;
- ``mmtomodel -f caffe`` (:func:`code_to_model`): that prototxt (edited or not)
  and npz become the pair again.

Every IR value keeps its name as a blob, and the layer computing it has that
name too, so a Caffe or OpenCV user finds every tensor by its IR name.  Each IR
op family has a handler module registered in :data:`HANDLERS`; see
``docs/caffe.md`` for the layer mapping and what is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmconv.emitters.base import Emitter
from mmconv.emitters.caffe.builder import (
    Network,
    build_network,
    load_handlers,
    missing_handlers,
    network_from_files,
    write_caffemodel,
)
from mmconv.emitters.caffe.context import HANDLERS, EmitContext
from mmconv.errors import ModelFormatError
from mmconv.formats.caffe import SUFFIXES, caffe_paths
from mmconv.fsutil import atomic_path
from mmconv.ir import serde
from mmconv.ir.core import Graph

__all__ = ["EMITTER", "HANDLERS", "EmitContext", "build_network", "code_to_model", "emit_code",
           "emit_model", "missing_handlers", "model_paths"]

load_handlers()

model_paths = caffe_paths


def _write_pair(net: Network, output_path: str | os.PathLike[str]) -> None:
    """Both files or neither (the weights are renamed into place last)."""
    prototxt, caffemodel = model_paths(output_path)
    with atomic_path(prototxt) as tmp_p, atomic_path(caffemodel) as tmp_w:
        with tmp_w.open("wb") as out:
            write_caffemodel(out, net)
        tmp_p.write_text(net.text(), encoding="utf-8")


def emit_model(graph: Graph, output_path: str | os.PathLike[str], **options: Any) -> None:
    """mmconvert: ``NAME.prototxt`` and ``NAME.caffemodel`` from the IR."""
    EMITTER.check_options(options)
    _write_pair(build_network(graph), output_path)


def emit_code(graph: Graph, code_path: str | os.PathLike[str],
              weights_path: str | os.PathLike[str], **options: Any) -> None:
    """mmtocode: the prototxt at ``code_path`` and the blobs as an npz at
    ``weights_path`` (both or neither)."""
    EMITTER.check_options(options, code=True)
    net = build_network(graph)
    with atomic_path(Path(weights_path)) as tmp_w, atomic_path(Path(code_path)) as tmp_c:
        with tmp_w.open("wb") as out:
            serde.write_weights(out, dict(net.blob_keys()))
        tmp_c.write_text(net.text(), encoding="utf-8")


def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None:
    """mmtomodel: a prototxt and npz from :func:`emit_code` -> the prototxt/caffemodel pair."""
    try:
        text = Path(code_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{code_path}: cannot be read as a prototxt ({exc})") from None
    arrays = serde.load_weights(weights_path)
    net = network_from_files(text, arrays, str(code_path), str(weights_path))
    _write_pair(net, output_path)


EMITTER = Emitter(
    name="caffe",
    summary="NAME.prototxt + NAME.caffemodel (checked in OpenCV's dnn); mmtocode writes the "
            "prototxt and an npz of its blobs",
    handlers=HANDLERS,
    emit_code=emit_code,
    code_to_model=code_to_model,
    emit_model=emit_model,
    model_suffixes=SUFFIXES,
    weights_suffix=".npy",
    code_suffix=".prototxt",
    model_files=lambda path: list(model_paths(path)),
)
