"""The ONNX frontend: an ONNX file (opset 7 to the newest the installed onnx knows) -> IR.

Entry points: :func:`read_model` (validate and load: checker, shape inference,
external data mapped, not copied) and :func:`convert` (the frontend API of
:mod:`mmconv.frontends`).  See docs/onnx-source.md.
"""

from __future__ import annotations

from mmconv.errors import ModelFormatError, UsageError
from mmconv.frontends.base import Frontend
from mmconv.frontends.onnx.reader import OnnxModel, read_model
from mmconv.ir import Graph

__all__ = ["OnnxModel", "convert", "read_model"]


def convert(network: str | None, weights: str | None, *,
            input_shapes: list[tuple[int, ...]] | None = None,
            input_names: list[str] | None = None,
            output_names: list[str] | None = None,
            channels_first_io: bool = False) -> Graph:
    """ONNX file -> IR Graph (the model is one file; either -n or -w names it).

    A channels-last model (tf2onnx's) keeps its NHWC inputs/outputs unless
    ``channels_first_io`` (``--channelsFirstIO``): then they are NCHW, no boundary
    Transposes (see :func:`mmconv.ir.passes.layout.channels_first_boundaries`)."""
    from mmconv.frontends.onnx.builder import convert_model

    path = network or weights
    if not path:
        raise UsageError("ONNX: give the model file with -n (or -w)")
    try:
        return convert_model(read_model(path), input_shapes=input_shapes,
                             input_names=input_names, output_names=output_names,
                             channels_first_io=channels_first_io)
    except UnicodeDecodeError:
        # protobuf decodes string fields (names) lazily; onnx.checker does not check them
        raise ModelFormatError(f"{path}: a name or string in the model is not valid "
                               "UTF-8; the file is corrupt") from None


FRONTEND = Frontend("onnx", convert, channels_last=True)
