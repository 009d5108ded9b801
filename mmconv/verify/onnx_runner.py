"""Run an ONNX model with onnxruntime: the target side of ``--verify`` and the tests.

onnxruntime is an optional dependency (``mmconv[onnxruntime]``), imported only
when a model is run, so the rest of mmconv works without it and a missing
install is one clear :class:`RuntimeUnavailableError` instead of an ImportError.

onnxruntime has no kernels for some valid type/op pairs (float64 Conv,
MaxPool, BatchNormalization...: a float64 CNTK model converts to exactly such
a graph).  Then the model runs in ``onnx.reference`` (numpy; slower, but every
standard op), so ``--verify`` still checks it instead of failing to load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError, UsageError

#: ONNX TensorProto element types -> numpy dtypes (the reference fallback's inputs).
_ONNX_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
               9: np.bool_, 10: np.float16, 11: np.float64}

#: onnxruntime element types (``NodeArg.type``) -> numpy dtypes, for casting inputs.
_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}

ModelSource = str | os.PathLike[str] | bytes | Any  # Any: an onnx.ModelProto


def _import_ort() -> Any:
    from mmconv.frameworks import import_framework

    return import_framework("onnxruntime")


def _first_line(exc: BaseException) -> str:
    """onnxruntime's messages run over many lines; the first says what went wrong."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _with_outputs(source: str | bytes, names: Sequence[str]) -> bytes:
    """The model with more values exposed as graph outputs (types left to onnxruntime)."""
    import onnx

    model = onnx.load(source) if isinstance(source, str) else onnx.ModelProto.FromString(source)
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    return model.SerializeToString()


class OnnxRunner:
    """One onnxruntime session (CPU by default), reusable for many runs.

    ``model`` is a path, the serialized bytes, or an ``onnx.ModelProto``.
    ``extra_outputs`` names intermediate values to return after the graph's
    outputs, to find the first node where a conversion diverges.
    """

    def __init__(self, model: ModelSource, providers: Sequence[str] = ("CPUExecutionProvider",),
                 extra_outputs: Sequence[str] = ()) -> None:
        ort = _import_ort()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if not path.is_file():
                raise UsageError(f"{path}: no such ONNX model file")
            source: Any = str(path)
            self.label = str(path)
        elif isinstance(model, bytes):
            source, self.label = model, "ONNX model"
        else:
            source, self.label = model.SerializeToString(), f"ONNX model {model.graph.name!r}"
        if extra_outputs:
            source = _with_outputs(source, extra_outputs)
        self._reference: Any = None
        try:
            self.session = ort.InferenceSession(source, sess_options=options,
                                                providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/...
            if "NOT_IMPLEMENTED" not in str(exc):
                raise ModelFormatError(
                    f"{self.label}: onnxruntime cannot load it: {_first_line(exc)}"
                ) from exc
            self._load_reference(source, exc)
            return
        self._inputs = self.session.get_inputs()
        self.input_names: list[str] = [i.name for i in self._inputs]
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self._dtypes = [_ORT_TYPES.get(i.type) for i in self._inputs]

    def _load_reference(self, source: str | bytes, ort_error: BaseException) -> None:
        """onnxruntime lacks a kernel for this model: run it with onnx.reference."""
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(source) if isinstance(source, str) else onnx.ModelProto.FromString(
            source)
        try:
            self._reference = ReferenceEvaluator(model)
        except Exception as exc:
            raise ModelFormatError(
                f"{self.label}: onnxruntime cannot load it ({_first_line(ort_error)}) and "
                f"onnx.reference cannot either: {_first_line(exc)}") from exc
        inits = {i.name for i in model.graph.initializer}
        graph_inputs = [i for i in model.graph.input if i.name not in inits]
        self.input_names = [i.name for i in graph_inputs]
        self.output_names = [o.name for o in model.graph.output]
        self._dtypes = [_ONNX_TYPES.get(i.type.tensor_type.elem_type) for i in graph_inputs]

    def _feed(self, inputs: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(self.input_names))
            missing = [n for n in self.input_names if n not in inputs]
            if unknown or missing:
                raise UsageError(
                    f"{self.label}: inputs do not match the model's "
                    f"{self.input_names} (unknown: {unknown}, missing: {missing})"
                )
            arrays = [inputs[n] for n in self.input_names]
        else:
            arrays = list(inputs)
            if len(arrays) != len(self.input_names):
                raise UsageError(
                    f"{self.label}: {len(arrays)} inputs given, the model takes "
                    f"{len(self.input_names)} ({', '.join(self.input_names)})"
                )
        return {name: np.ascontiguousarray(array, dtype=dtype)
                for name, dtype, array in zip(self.input_names, self._dtypes, arrays,
                                              strict=True)}

    def run(self, inputs: Mapping[str, Any] | Sequence[Any]) -> list[np.ndarray]:
        """Outputs in graph-output order; inputs by name (mapping) or by position.

        Inputs are cast to the dtype the model declares (float64 test data into a
        float32 model), since that mismatch is never what a caller meant to test.
        """
        feed = self._feed(inputs)
        try:
            if self._reference is not None:
                return [np.asarray(v) for v in self._reference.run(self.output_names, feed)]
            return list(self.session.run(self.output_names, feed))
        except Exception as exc:
            runtime = "onnx.reference" if self._reference is not None else "onnxruntime"
            raise UsageError(
                f"{self.label}: {runtime} failed to run it: {_first_line(exc)}"
            ) from exc

    def run_dict(self, inputs: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
        """Like :meth:`run`, keyed by output name."""
        return dict(zip(self.output_names, self.run(inputs), strict=True))


def run_onnx(model: ModelSource, inputs: Mapping[str, Any] | Sequence[Any],
             providers: Sequence[str] = ("CPUExecutionProvider",)) -> list[np.ndarray]:
    """Run ``model`` once on ``inputs``; outputs in graph-output order."""
    return OnnxRunner(model, providers).run(inputs)
