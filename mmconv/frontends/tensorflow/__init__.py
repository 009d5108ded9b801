"""The TensorFlow frontend: a SavedModel folder or a frozen GraphDef ``.pb`` -> IR.

As the seed article recommends, the TF graph goes through **tf2onnx** (its Python
API, in-process) and the resulting ONNX model through mmconv's ONNX frontend
(validation, versioned converters, the layout pass that cancels tf2onnx's
NHWC<->NCHW transposes).  A SavedModel's signature is ``serving_default`` unless
``--inNodeName`` names another one; a frozen GraphDef needs ``--inNodeName`` and
``--dstNodeName`` (tensor names, ``:0`` optional) and, where the graph's input
shape is not static, ``--inputShape``.  tf2onnx failures are one line.

For a Keras model file (``.keras``/``.h5``) use ``-sf keras``: it reads the layers
directly, exactly and without TensorFlow (a Keras 3 ``model.export`` SavedModel
keeps no Keras config, so there is nothing native to read in it).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from mmconv import frameworks
from mmconv.errors import ModelFormatError, UnsupportedError, UsageError
from mmconv.frontends.base import Frontend
from mmconv.ir import Graph

log = logging.getLogger("mmconv")


def quiet_tensorflow() -> None:
    """TensorFlow's banners (:func:`mmconv.frameworks.quiet_tensorflow`) and tf2onnx's
    Python info logs off; call before importing TF."""
    frameworks.quiet_tensorflow()
    for name in ("tensorflow", "tf2onnx", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def _import_tf2onnx() -> Any:
    quiet_tensorflow()
    try:
        import tensorflow  # noqa: F401
        import tf2onnx
        from tf2onnx import convert as tf2onnx_convert  # noqa: F401
        from tf2onnx import tf_loader  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"the TensorFlow source needs tensorflow and tf2onnx ({exc}): "
                         'pip install "mmconv[tensorflow]"') from None
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    return tf2onnx


def _tensor_names(names: list[str] | None) -> list[str] | None:
    if not names:
        return None
    return [n if ":" in n else f"{n}:0" for n in names]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def to_onnx(path: str, *, input_names: list[str] | None = None,
            output_names: list[str] | None = None,
            input_shapes: list[tuple[int, ...]] | None = None) -> tuple[Any, str]:
    """The ONNX ModelProto tf2onnx makes of ``path``, and which path was taken."""
    tf2onnx = _import_tf2onnx()
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    if os.path.isdir(path):
        if not (Path(path) / "saved_model.pb").is_file() and \
                not (Path(path) / "saved_model.pbtxt").is_file():
            raise ModelFormatError(f"{path}: a folder without saved_model.pb (not a SavedModel)")
        signature = "serving_default"
        ins = outs = None
        if input_names and not output_names and len(input_names) == 1 and \
                ":" not in input_names[0]:
            signature = input_names[0]  # --inNodeName SIGNATURE selects a signature
        elif input_names or output_names:
            ins, outs = _tensor_names(input_names), _tensor_names(output_names)
        how = f"SavedModel signature {signature!r} through tf2onnx {tf2onnx.__version__}"
        try:
            graph_def, ins, outs, tables, rename = tf_loader.from_saved_model(
                path, ins, outs, None, [signature], None, False,
                return_initialized_tables=True, return_tensors_to_rename=True)
            shape_override = _shape_override(ins, input_shapes)
            proto, _ = _convert_common(graph_def, name=path, input_names=ins, output_names=outs,
                                       tensors_to_rename=rename, initialized_tables=tables,
                                       shape_override=shape_override)
        except MemoryError:
            raise
        except Exception as exc:  # tf2onnx raises anything from ValueError to KeyError
            raise UnsupportedError(f"{path}: tf2onnx could not convert the SavedModel "
                                   f"({_first_line(exc)})") from None
        return proto, how
    if not input_names or not output_names:
        raise UsageError(f"{path}: a frozen GraphDef needs --inNodeName and --dstNodeName "
                         "(its input and output tensor names)")
    ins, outs = _tensor_names(input_names), _tensor_names(output_names)
    how = f"frozen GraphDef through tf2onnx {tf2onnx.__version__}"
    try:
        graph_def, ins, outs = tf_loader.from_graphdef(path, ins, outs)
        proto, _ = _convert_common(graph_def, name=path, input_names=ins, output_names=outs,
                                   shape_override=_shape_override(ins, input_shapes))
    except MemoryError:
        raise
    except Exception as exc:
        raise UnsupportedError(f"{path}: tf2onnx could not convert the GraphDef "
                               f"({_first_line(exc)})") from None
    return proto, how


def _shape_override(names: list[str] | None, shapes: list[tuple[int, ...]] | None
                    ) -> dict[str, list[int | None]] | None:
    """--inputShape (without the batch) as tf2onnx's shape_override (batch left dynamic)."""
    if not shapes:
        return None
    if not names or len(names) != len(shapes):
        raise UsageError(f"--inputShape gives {len(shapes)} shapes for inputs {names}")
    return {n: [None, *s] for n, s in zip(names, shapes, strict=True)}


#: Appended to an error about a Loop tf2onnx wrote (a TF while_loop mmconv cannot read).
LOOP_HINT = ("tf2onnx writes Keras GRU and SimpleRNN as a Loop, which mmconv converts "
             "when the time length is fixed: export the model with one "
             "(keras.Input((T, features))), or convert the .keras file with -sf keras")


def _for_tensorflow(message: str, onnx_path: str, path: str) -> str:
    """The ONNX frontend's one-line error as a TensorFlow user reads it: the SavedModel
    named instead of the temporary ONNX file, and for a Loop what to do instead."""
    message = message.replace(onnx_path, f"{path} (as tf2onnx converts it)")
    if "Loop '" in message or "Loop (" in message:
        message += f"; {LOOP_HINT}"
    return message


def convert(network: str | None, weights: str | None, *,
            input_shapes: list[tuple[int, ...]] | None = None,
            input_names: list[str] | None = None,
            output_names: list[str] | None = None,
            channels_first_io: bool = False) -> Graph:
    """A SavedModel folder or frozen ``.pb`` -> IR Graph, through tf2onnx and the ONNX
    frontend (found through the frontend registry, not imported); ``channels_first_io``
    (``--channelsFirstIO``) is the ONNX frontend's: NCHW inputs/outputs."""
    from mmconv.frontends import get_frontend

    path = weights or network
    if not path:
        raise UsageError("TensorFlow: give the SavedModel folder or the frozen .pb with -iw")
    if str(path).endswith((".keras", ".h5")):
        raise UsageError(f"{path}: a Keras file; convert it with -sf keras")
    proto, how = to_onnx(path, input_names=input_names, output_names=output_names,
                         input_shapes=input_shapes)
    log.warning("tensorflow source: %s", how)  # a notice: the CLI prints it on stderr
    with tempfile.TemporaryDirectory(prefix="mmconv-tf-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        onnx_path.write_bytes(proto.SerializeToString())
        del proto
        try:
            graph = get_frontend("onnx").convert(None, str(onnx_path),
                                                 channels_first_io=channels_first_io)
        except UnsupportedError as exc:
            raise UnsupportedError(_for_tensorflow(str(exc), str(onnx_path), str(path))) \
                from None
    graph.metadata["source_framework"] = "tensorflow"
    graph.metadata["source_path"] = how
    return graph


FRONTEND = Frontend("tensorflow", convert, channels_last=True)
