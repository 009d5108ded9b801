"""What can be checked of a Core ML model without a Mac, and the check itself.

coremltools runs models only on macOS (its native runtime is not built for
other systems), and MIL has no reference interpreter (conv, pooling... have no
numpy evaluation in coremltools).  So off macOS a written model is checked for
what a file can prove:

- it loads with ``coremltools.models.MLModel(path, skip_model_load=True)``;
- its inputs and outputs have the IR's names (sanitized), dtypes, ranks and shapes;
- ML Program: its ops, read back from the file, are exactly the program mmconv
  built (same op types in the same order, same names), each an op coremltools'
  registry knows at the iOS15 opset, and every named value has the IR's shape;
  NeuralNetwork: every layer is a known layer type and the layer outputs the
  model's outputs exist;
- weights: the file's constants are read back (ML Program: coremltools' own
  MIL-proto loader, which reads ``weight.bin``; NeuralNetwork: the layers'
  weight fields) and every IR weight must be there bit for bit.

That is a numeric check of the stored parameters, not of the computation:
running the model needs macOS (``MLModel(path).predict`` on a Mac).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmconv.emitters.coreml.builder import OPSET, Emitted
from mmconv.emitters.coreml.runtime import import_coremltools, model_type, quiet
from mmconv.errors import ModelFormatError, VerificationError

#: Core ML multiArray data types -> IR dtypes they carry (Core ML has no int64).
_ARRAY_TYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT32": "int32",
                "DOUBLE": "float64"}

#: What to tell the user in place of a numeric comparison.
MAC_NOTICE = ("Core ML models run only on macOS: outputs were NOT compared numerically "
              "(run MLModel(path).predict on a Mac for that)")


@dataclass
class CheckReport:
    """The structural facts established about one written model."""

    path: Path
    kind: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    ops: int = 0
    op_types: dict[str, int] = field(default_factory=dict)
    weights_checked: int = 0
    derived_checked: int = 0
    max_weight_error: float = 0.0

    def summary(self) -> str:
        weights = (f"{self.weights_checked} IR weights read back identical"
                   + (f", {self.derived_checked} derived constants as built"
                      if self.derived_checked else ""))
        return (f"structural check passed for {self.path} ({self.kind}): inputs {self.inputs}, "
                f"outputs {self.outputs} with the IR's ranks and shapes; {self.ops} "
                f"{'ops' if self.kind == 'mlprogram' else 'layers'}, all known to coremltools; "
                f"{weights}")


def check_model(path: str | Path, emitted: Emitted) -> CheckReport:
    """Check the model at ``path`` against what :func:`~.builder.emit` produced for it;
    raise VerificationError naming the first difference."""
    path = Path(path)
    kind = model_type(path)
    ct = import_coremltools()
    try:
        with quiet():
            model = ct.models.MLModel(str(path), skip_model_load=True)
    except Exception as exc:
        raise ModelFormatError(f"{path}: coremltools cannot load it ({exc})") from exc
    spec = model.get_spec()
    report = CheckReport(path, kind)
    # A NeuralNetwork computes in float: coremltools declares every feature FLOAT32 there.
    nn = kind == "neuralnetwork"
    _check_features(path, spec.description.input, emitted.inputs, "input", report.inputs, nn)
    _check_features(path, spec.description.output, emitted.outputs, "output", report.outputs,
                    nn)
    if kind == "mlprogram":
        if spec.WhichOneof("Type") != "mlProgram":
            raise VerificationError(f"{path}: holds a {spec.WhichOneof('Type')}, not an ML Program")
        _check_program(path, spec, model.weights_dir, emitted, report)
    else:
        if spec.WhichOneof("Type") != "neuralNetwork":
            raise VerificationError(f"{path}: holds a {spec.WhichOneof('Type')}, "
                                    "not a NeuralNetwork")
        _check_network(path, spec.neuralNetwork, emitted, report)
    return report


def _fail(path: Path, what: str) -> VerificationError:
    return VerificationError(f"{path}: {what}")


def _check_features(path: Path, features: Any,
                    expected: dict[str, tuple[str, tuple[int, ...], str]], what: str,
                    names: list[str], all_float: bool) -> None:
    got = [f.name for f in features]
    want = [ident for ident, _, _ in expected.values()]
    if got != want:
        raise _fail(path, f"model {what}s are {got}, the IR's are {want}")
    for feature, (ir_name, (ident, shape, dtype)) in zip(features, expected.items(), strict=True):
        array = feature.type.multiArrayType
        if feature.type.WhichOneof("Type") != "multiArrayType":
            raise _fail(path, f"{what} {ident!r} is not a multi-array")
        dims = tuple(int(d) for d in array.shape)
        if dims != tuple(shape):
            raise _fail(path, f"{what} {ident!r} has shape {list(dims)}, the IR's "
                        f"{ir_name!r} has {list(shape)} (rank {len(shape)})")
        type_name = type(array).ArrayDataType.Name(array.dataType)
        want = "float32" if all_float else dtype
        if _ARRAY_TYPES.get(type_name) != want:
            raise _fail(path, f"{what} {ident!r} holds {type_name}, the IR's {ir_name!r} is "
                        f"{dtype}")
        names.append(ident)


def _check_program(path: Path, spec: Any, weights_dir: str | None, emitted: Emitted,
                   report: CheckReport) -> None:
    from coremltools.converters.mil.frontend.milproto.load import load
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    ct = import_coremltools()
    opset = getattr(ct.target, OPSET)
    try:
        with quiet():
            program = load(spec, spec.specificationVersion, weights_dir or "")
    except Exception as exc:
        raise _fail(path, f"coremltools cannot read its ML Program back ({exc})") from exc
    ops = list(program.functions["main"].operations)
    # The file spells op parameters (strides, pads...) as const ops of their own; the
    # computation is the non-const ops, and the consts built must all be there.
    got = [(op.op_type, op.outputs[0].name) for op in ops if op.op_type != "const"]
    built = [entry for entry in emitted.ops if entry[0] != "const"]
    if got != built:
        diff = next(((i, g, w) for i, (g, w) in enumerate(zip(got, built, strict=False)) if g != w),
                    (min(len(got), len(built)), None, None))
        raise _fail(path, f"its program has {len(got)} ops, {len(built)} were built; "
                    f"first difference at op {diff[0]}: {diff[1]} vs {diff[2]}")
    for op_type, _ in got:
        versions = SSAOpRegistry.core_ops.get(op_type)
        if not versions or not any(v <= opset for v in versions):
            raise _fail(path, f"op {op_type!r} is not a MIL op coremltools knows at {OPSET}")
    shapes = {op.outputs[0].name: tuple(op.outputs[0].shape) for op in ops}
    for ir_name, (ident, shape) in emitted.values.items():
        if ident in shapes and shapes[ident] != tuple(shape):
            raise _fail(path, f"value {ident!r} has shape {list(shapes[ident])} in the program, "
                        f"the IR's {ir_name!r} has {list(shape)}")
    report.ops = len(got)
    for op_type, _ in got + [e for e in emitted.ops if e[0] == "const"]:
        report.op_types[op_type] = report.op_types.get(op_type, 0) + 1
    consts = {op.outputs[0].name: op.outputs[0].val for op in ops if op.op_type == "const"}
    _check_consts(path, consts, emitted, report)


def _check_consts(path: Path, consts: dict[str, Any], emitted: Emitted,
                  report: CheckReport) -> None:
    """Every const the program was built with, read back from the file, bit for bit."""
    for ident, key in emitted.const_keys.items():
        if ident not in consts:
            raise _fail(path, f"constant {ident!r} (weights key {key!r}) is missing")
        stored = np.asarray(consts[ident])
        built = np.asarray(emitted.arrays[key])
        if stored.size != built.size or not np.array_equal(
                stored.reshape(-1), built.reshape(-1).astype(stored.dtype)):
            err = (float(np.max(np.abs(stored.reshape(-1).astype(np.float64)
                                       - built.reshape(-1).astype(np.float64))))
                   if stored.size == built.size else float("inf"))
            raise _fail(path, f"constant {ident!r} differs from "
                        f"{emitted.weight_keys.get(key, key)!r} (max |a-b| {err:g})")
        if key in emitted.weight_keys:
            report.weights_checked += 1
        else:
            report.derived_checked += 1


#: NeuralNetwork layers that split a MIL weight into one array per gate
_RECURRENT_LAYERS = ("uniDirectionalLSTM", "biDirectionalLSTM", "gru", "simpleRecurrent")


def _weight_arrays(message: Any) -> Iterator[np.ndarray]:
    """Every float array stored in a NeuralNetwork layer's WeightParams, recursively."""
    for desc, value in message.ListFields():
        if desc.message_type is None:
            continue
        items = [value] if hasattr(value, "ListFields") else value  # one message or repeated
        for item in items:
            if desc.message_type.name == "WeightParams":
                if len(item.floatValue):
                    yield np.asarray(item.floatValue, dtype=np.float32)
            else:
                yield from _weight_arrays(item)


def _check_network(path: Path, nn: Any, emitted: Emitted, report: CheckReport) -> None:
    """Layers of known types; every IR weight found among the layers' weight arrays."""
    produced: set[str] = set()
    for layer in nn.layers:
        kind = layer.WhichOneof("layer")
        if kind is None:
            raise _fail(path, f"layer {layer.name!r} has no known layer type")
        report.op_types[kind] = report.op_types.get(kind, 0) + 1
        produced.update(layer.output)
    report.ops = len(nn.layers)
    missing = [o for o in report.outputs if o not in produced]
    if missing:
        raise _fail(path, f"no layer produces the outputs {missing}")
    arrays = list(_weight_arrays(nn))
    verbatim = {a.tobytes() for a in arrays}
    # coremltools may store a kernel in a layer's own layout (a transposed matmul weight):
    # then the same values, in another order.
    by_values = {np.sort(a).tobytes() for a in arrays}
    # a recurrent layer stores MIL's stacked gate weights [G*H, D] as one array per gate
    for layer in nn.layers:
        if layer.WhichOneof("layer") in _RECURRENT_LAYERS:
            parts = list(_weight_arrays(layer))
            by_values.update(np.sort(np.concatenate(parts[i:j])).tobytes()
                             for i in range(len(parts)) for j in range(i + 2, len(parts) + 1))
    for ident, key in emitted.const_keys.items():
        array = np.asarray(emitted.arrays[key])
        if array.dtype != np.float32 or array.size < 2:
            continue  # scalars and integer constants become layer attributes
        data = array.astype(np.float32).reshape(-1)
        if data.tobytes() not in verbatim and np.sort(data).tobytes() not in by_values:
            raise _fail(path, f"the values of constant {ident!r} "
                        f"({emitted.weight_keys.get(key, key)!r}) are not stored in any layer")
        if key in emitted.weight_keys:
            report.weights_checked += 1
        else:
            report.derived_checked += 1
