"""How to run a model file of each framework on named inputs, for verification.

A runner takes the model path, the IR graph the conversion went through (it
knows the inputs' and outputs' names and what they were called in the source)
and inputs keyed by IR input name; it returns the outputs in the graph's
output order.  Source runners may run out of process (CNTK runs in its own
Python 3.6 through :mod:`mmconv.runtimes.cntk`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.dispatch import Registry
from mmconv.errors import UnsupportedError
from mmconv.frameworks import import_framework
from mmconv.ir import Graph

Runner = Callable[[Path, Graph, Mapping[str, np.ndarray]], list[np.ndarray]]
RUNNERS: Registry[Runner] = Registry("model runner")
#: Targets that compute in a fixed precision whatever the source's dtype: a float64
#: source is compared at the tolerance of that precision (Caffe runtimes are float32).
TARGET_PRECISION: dict[str, str] = {"caffe": "float32"}
#: Runners for a model mmconv *wrote*, where that differs from reading a source model
#: (a CNTK model from the CNTK emitter is addressed by IR names, not source uids).
TARGET_RUNNERS: Registry[Runner] = Registry("target model runner")


def _source_names(graph: Graph, key: str, default: list[str]) -> list[str]:
    """The source framework's names for the graph's inputs/outputs (frontend metadata)."""
    text = graph.metadata.get(key)
    return list(json.loads(text)) if text else default


def source_perms(graph: Graph, key: str, count: int) -> list[tuple[int, ...] | None]:
    """Per input/output, the permutation from the source model's layout to the IR's
    (``ir = source.transpose(perm)``; None: the same), as the frontend recorded it
    (the ONNX frontend's ``source_input_perms``/``source_output_perms``; with
    --channelsFirstIO a channels-last source is NHWC where the IR is NCHW)."""
    text = graph.metadata.get(key)
    perms = [tuple(int(i) for i in p) for p in json.loads(text)] if text else []
    if len(perms) != count:
        return [None] * count
    return [None if p == tuple(range(len(p))) else p for p in perms]


def to_source_layout(arrays: list[np.ndarray], perms: list[tuple[int, ...] | None]
               ) -> list[np.ndarray]:
    """IR-layout arrays in the source's layout (the inverse of each perm)."""
    return [a if p is None else np.ascontiguousarray(a.transpose(np.argsort(p)))
            for a, p in zip(arrays, perms, strict=True)]


def from_source_layout(arrays: list[np.ndarray], perms: list[tuple[int, ...] | None]
                 ) -> list[np.ndarray]:
    """Source-layout arrays in the IR's layout."""
    return [a if p is None else np.ascontiguousarray(a.transpose(p))
            for a, p in zip(arrays, perms, strict=True)]


@RUNNERS.register("cntk")
def run_cntk(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Real CNTK 2.7, by the uids the CNTK frontend recorded."""
    from mmconv.runtimes.cntk import run_model

    in_ids = _source_names(graph, "source_inputs", [v.name for v in graph.inputs])
    out_ids = _source_names(graph, "source_outputs", list(graph.outputs))
    feeds = {uid: inputs[v.name] for uid, v in zip(in_ids, graph.inputs, strict=True)}
    return run_model(path, feeds, output_names=out_ids)


@TARGET_RUNNERS.register("cntk")
def run_cntk_target(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                    ) -> list[np.ndarray]:
    """Real CNTK 2.7 on a model from the CNTK emitter: its inputs and outputs carry the
    IR names (the source uids recorded in the metadata belong to the source model)."""
    from mmconv.runtimes.cntk import run_model

    return run_model(path, {v.name: inputs[v.name] for v in graph.inputs},
                     output_names=list(graph.outputs))


@TARGET_RUNNERS.register("onnx")
def run_onnx_model(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                   ) -> list[np.ndarray]:
    """onnxruntime; the ONNX emitter keeps IR input and output names."""
    from mmconv.verify.onnx_runner import OnnxRunner

    runner = OnnxRunner(path)
    outputs = runner.run_dict({v.name: inputs[v.name] for v in graph.inputs})
    return [outputs[name] for name in graph.outputs]


@RUNNERS.register("onnx")
def run_onnx_source(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                    ) -> list[np.ndarray]:
    """onnxruntime on a source ONNX file: fed and read by the names the ONNX frontend
    recorded (the IR's are sanitized); an IR from elsewhere has none, so IR names.
    Inputs/outputs the frontend made channels-first (--channelsFirstIO) are transposed
    into the source's layout and back."""
    from mmconv.verify.onnx_runner import OnnxRunner

    names = [v.name for v in graph.inputs]
    in_perms = out_perms = None
    if graph.metadata.get("source_framework") == "onnx":
        in_names = _source_names(graph, "source_inputs", names)
        out_names = _source_names(graph, "source_outputs", list(graph.outputs))
        in_perms = source_perms(graph, "source_input_perms", len(names))
        out_perms = source_perms(graph, "source_output_perms", len(out_names))
    else:
        in_names, out_names = names, list(graph.outputs)
    runner = OnnxRunner(path)
    extra = [n for n in out_names if n not in runner.output_names]
    if extra:  # --dstNodeName picked values inside the graph
        runner = OnnxRunner(path, extra_outputs=extra)
    arrays = [inputs[v.name] for v in graph.inputs]
    if in_perms is not None:
        arrays = to_source_layout(arrays, in_perms)
    outputs = runner.run_dict(dict(zip(in_names, arrays, strict=True)))
    got = [outputs[name] for name in out_names]
    return got if out_perms is None else from_source_layout(got, out_perms)


@RUNNERS.register("caffe")
def run_caffe_model(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                    ) -> list[np.ndarray]:
    """OpenCV's dnn on NAME.prototxt + NAME.caffemodel; the Caffe emitter names the input
    blobs and output layers after the IR values."""
    from mmconv.verify.caffe_runner import run_caffe

    return run_caffe(path, {v.name: inputs[v.name] for v in graph.inputs}, graph.outputs,
                     [graph.value(o).rank for o in graph.outputs])


@RUNNERS.register("pytorch", "torch")
def run_torchscript(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                    ) -> list[np.ndarray]:
    """A TorchScript file (mmconvert -df pytorch): inputs in IR order, outputs likewise."""
    import warnings

    torch = import_framework("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, works
        model = torch.jit.load(str(path), map_location="cpu")
    args = [torch.from_numpy(np.ascontiguousarray(inputs[v.name])) for v in graph.inputs]
    with torch.no_grad():
        out = model(*args)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _nhwc(model_shapes: list[tuple], graph: Graph) -> bool:
    """Whether a Keras/TF model was written with NHWC inputs (mmconvert --channelsLastIO):
    some rank>=3 input's declared shape is the IR shape with the channels moved last."""
    for shape, value in zip(model_shapes, graph.inputs, strict=True):
        if value.rank < 3:  # (a rank-1 input, e.g. sequence lengths, has no axis 1)
            continue
        ir = tuple(value.shape[1:])
        moved = (*value.shape[2:], value.shape[1])
        if tuple(shape[1:]) != ir and tuple(shape[1:]) == moved:
            return True
    return False


def _to_nchw(arrays: list[np.ndarray], graph: Graph) -> list[np.ndarray]:
    """NHWC outputs back to the IR's layout (feature maps only)."""
    return [a.transpose(0, a.ndim - 1, *range(1, a.ndim - 1)) if a.ndim >= 3 else a
            for a in arrays]


def _feeds_nhwc(graph: Graph, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """IR-layout inputs for an NHWC model: feature maps get their channels last."""
    return [inputs[v.name].transpose(0, *range(2, v.rank), 1) if v.rank >= 3
            else inputs[v.name] for v in graph.inputs]


@RUNNERS.register("keras")
def run_keras(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """A ``.keras`` (or ``.h5``) file loaded by Keras alone: a model mmconv wrote returns
    a tensor for one output and a dict keyed by IR name for several; a source model
    (``-sf keras --verify``) its outputs in order.  mmconv's custom recurrent cells
    (``mmconv>OnnxRecurrentCell``: peepholes, clip... that no stock layer computes;
    ``mmconv>ScanCell``: a Scan's loop) are registered first, as importing the generated
    model.py would."""
    keras = import_framework("keras")
    from mmconv.emitters import get_emitter

    setup = get_emitter("keras").runtime_setup
    if setup is not None:
        setup()

    model = keras.models.load_model(str(path))
    nhwc = _nhwc([tuple(t.shape) for t in model.inputs], graph)
    feeds = _feeds_nhwc(graph, inputs) if nhwc else [inputs[v.name] for v in graph.inputs]
    got = model(feeds if len(feeds) > 1 else feeds[0], training=False)
    if isinstance(got, dict):  # mmconv's Keras models with several outputs: by IR name
        outs = [np.asarray(got[name]) for name in graph.outputs]
    elif isinstance(got, (list, tuple)):  # a source model (-sf keras): in output order
        outs = [np.asarray(g) for g in got]
    else:
        outs = [np.asarray(got)]
    return _to_nchw(outs, graph) if nhwc else outs


@RUNNERS.register("tensorflow")
def run_saved_model_source(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                           ) -> list[np.ndarray]:
    """A source SavedModel (``-sf tensorflow``) through its ``serving_default`` signature,
    fed and read by the names tf2onnx kept (the ONNX frontend recorded them), with the
    layouts the frontend recorded (``--channelsFirstIO`` makes a channels-last model's IR
    inputs/outputs NCHW) rather than guessed from shapes.  A graph without that record
    (made before it existed) runs as :func:`run_saved_model` does."""
    if graph.metadata.get("source_framework") != "tensorflow" or \
            "source_input_perms" not in graph.metadata:
        return run_saved_model(path, graph, inputs)
    if not Path(path).is_dir():
        raise UnsupportedError(f"{path}: --verify runs SavedModel folders, not frozen "
                               "GraphDefs; convert without --verify and run the result")
    tf = import_framework("tensorflow")

    names = [v.name for v in graph.inputs]
    in_names = [n.split(":")[0] for n in _source_names(graph, "source_inputs", names)]
    out_names = [n.split(":")[0] for n in
                 _source_names(graph, "source_outputs", list(graph.outputs))]
    in_perms = source_perms(graph, "source_input_perms", len(names))
    out_perms = source_perms(graph, "source_output_perms", len(out_names))
    arrays = to_source_layout([inputs[n] for n in names], in_perms)
    loaded = tf.saved_model.load(str(path))  # must outlive the call: it owns the variables
    endpoint = loaded.signatures["serving_default"]
    got = endpoint(**{n: tf.constant(a) for n, a in zip(in_names, arrays, strict=True)})
    return from_source_layout([got[n].numpy() for n in out_names], out_perms)


@TARGET_RUNNERS.register("tensorflow")
def run_saved_model(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray]
                    ) -> list[np.ndarray]:
    """A SavedModel folder through its ``serving_default`` endpoint, called with the
    inputs in IR order (as any SavedModel user would, without knowing how the emitter
    named them); outputs are keyed by the IR output names."""
    tf = import_framework("tensorflow")

    loaded = tf.saved_model.load(str(path))  # must outlive the call: it owns the variables
    endpoint = getattr(loaded, "serving_default", None)
    if endpoint is None:  # a source SavedModel (-sf tensorflow): its signature, by keyword
        return _run_signature(tf, loaded, graph, inputs)
    nhwc = _nhwc([tuple(spec.shape) for spec in endpoint.input_signature], graph)
    arrays = _feeds_nhwc(graph, inputs) if nhwc else [inputs[v.name] for v in graph.inputs]
    got = endpoint(*(tf.constant(a) for a in arrays))
    outs = [got[name].numpy() for name in graph.outputs]
    return _to_nchw(outs, graph) if nhwc else outs


def _run_signature(tf: Any, loaded: Any, graph: Graph, inputs: Mapping[str, np.ndarray]
                   ) -> list[np.ndarray]:
    """A SavedModel that keeps only signatures (``keras.Model.export``,
    ``tf.saved_model.save``): the signature the TensorFlow frontend read, fed and read by
    the tensor names it recorded (inputs and outputs in the model's own layout)."""
    meta = graph.metadata
    sig = meta.get("source_signature") or "serving_default"
    fn = loaded.signatures[sig]
    in_names = json.loads(meta.get("source_inputs") or "null") or [v.name for v in graph.inputs]
    out_names = json.loads(meta.get("source_outputs") or "null") or list(graph.outputs)
    got = fn(**{n: tf.constant(inputs[v.name]) for n, v in zip(in_names, graph.inputs,
                                                                 strict=True)})
    return [got[n].numpy() for n in out_names]


@RUNNERS.register("mxnet")
def run_mxnet(path: Path, graph: Graph, inputs: Mapping[str, np.ndarray],
              api: str = "module") -> list[np.ndarray]:
    """An MXNet checkpoint (``path`` is its prefix or one of its two files) in real
    mxnet 1.9.1, out of process: ``load_checkpoint`` + a bound ``Module``.  The MXNet
    emitter names the symbol's inputs after the IR's; bools travel as floats."""
    from mmconv.formats.mxnet import as_ir_outputs, checkpoint_prefix, feeds
    from mmconv.runtimes.mxnet import run_checkpoint

    outs = run_checkpoint(checkpoint_prefix(path), feeds(graph, inputs), api=api)
    return as_ir_outputs(graph, outs)
