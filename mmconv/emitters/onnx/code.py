"""ONNX code output: ``mmtocode -f onnx`` and ``mmtomodel -f onnx``.

The script is generated from the ``ModelProto`` the builder makes (its skeleton
plus the IR weights), node for node, so the code's model and ``mmconvert``'s
model are the same message; the tests hold them equal.  The code is what a
person would write with ``onnx.helper``: one ``make_node(...)`` line per ONNX
node, the interface as ``make_tensor_value_info`` lines, and the initializers
loaded by name from an npz written beside it.

Every model-supplied string (node, value, weight and graph names, metadata)
enters the code only through :func:`mmconv.emitters.codegen.literal`; the only
identifiers in the code are our own (attribute keywords are checked by the
sanitizer and fall back to a ``**{...}`` literal if one were ever unsafe).
Small constants the handlers made (shapes, axes, eps) are written inline so a
reader sees them where they are used.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, numpy_helper

from mmconv import __version__
from mmconv.emitters.codegen import CodeWriter, build_kitmodel, imported_code, literal
from mmconv.emitters.onnx.builder import Weights, build_skeleton, check_size, checked
from mmconv.errors import ModelFormatError, UnsupportedError
from mmconv.fsutil import atomic_path
from mmconv.ir import serde
from mmconv.ir.core import Graph

#: Constants made by the handlers with at most this many elements are written in
#: the code (a Reshape's shape, Slice's axes, an epsilon); larger ones (folded BN
#: scale and shift) go to the weights file like the IR's weights.
INLINE_MAX = 16

#: make_node's own keywords: an attribute of that name cannot be a keyword argument.
_MAKE_NODE_PARAMS = frozenset({"op_type", "inputs", "outputs", "name", "doc_string", "domain",
                               "overload"})


# -- values as Python literals ------------------------------------------------------------
def _shortest_float(value: float, dtype: np.dtype[Any]) -> float:
    """The shortest decimal that rounds to the same ``dtype`` value (``1e-05``, not
    ``9.999999747378752e-06`` for a float32 epsilon): readable and still exact."""
    return float(str(dtype.type(value))) if dtype.itemsize < 8 else float(value)


def _array_values(array: np.ndarray) -> object:
    """Nested lists of Python scalars for an array, floats in their shortest exact form."""
    if array.dtype.kind == "f":
        flat = [_shortest_float(float(v), array.dtype) for v in array.reshape(-1)]
        return np.asarray(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def _attribute_value(attr: AttributeProto, graphs: Mapping[str, str] | None = None,
                     node: str = "") -> str:
    """An ONNX attribute's value as a literal that ``helper.make_attribute`` maps back
    to the same AttributeProto (float attributes are float32); a graph attribute is the
    variable ``graphs`` names for it (written before the node list)."""
    f32 = np.dtype(np.float32)
    if attr.type == AttributeProto.GRAPH and graphs is not None:
        return graphs[_graph_key(node, attr.name)]
    if attr.type == AttributeProto.INT:
        return literal(int(attr.i))
    if attr.type == AttributeProto.FLOAT:
        return literal(_shortest_float(attr.f, f32))
    if attr.type == AttributeProto.STRING:
        return literal(_text(attr.s))
    if attr.type == AttributeProto.INTS and attr.ints:
        return literal([int(v) for v in attr.ints])
    if attr.type == AttributeProto.FLOATS and attr.floats:
        return literal([_shortest_float(v, f32) for v in attr.floats])
    if attr.type == AttributeProto.STRINGS and attr.strings:
        return literal([_text(s) for s in attr.strings])
    # Tensors and empty lists have no unambiguous make_node spelling; no handler
    # emits them.  Failing here keeps the code equal to the model.
    raise UnsupportedError(
        f"ONNX code output cannot write attribute {attr.name!r} of type "
        f"{AttributeProto.AttributeType.Name(attr.type)}; use mmconvert -df onnx"
    )


def _text(data: bytes) -> str | bytes:
    """Attribute strings as str when they are UTF-8 (make_attribute encodes them back)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _keyword(name: str) -> bool:
    """Whether an attribute name can be written as ``name=value``: an ASCII identifier
    that is no keyword and no make_node parameter.  (A keyword argument binds no
    name in the generated code, so builtins such as ``max`` are fine here.)"""
    return (name.isascii() and name.isidentifier() and not keyword.iskeyword(name)
            and name not in _MAKE_NODE_PARAMS)


def _graph_key(node: str, attr: str) -> str:
    return f"{node}\0{attr}"


def _node_line(node: NodeProto, graphs: Mapping[str, str]) -> str:
    args = [literal(node.op_type), literal(list(node.input)), literal(list(node.output)),
            f"name={literal(node.name)}"]
    if node.domain:
        args.append(f"domain={literal(node.domain)}")
    plain = [a for a in node.attribute if _keyword(a.name)]
    odd = [a for a in node.attribute if not _keyword(a.name)]
    args += [f"{a.name}={_attribute_value(a, graphs, node.name)}" for a in plain]
    if odd:
        args.append("**{" + ", ".join(f"{literal(a.name)}: {_attribute_value(a, graphs, node.name)}"
                                      for a in odd) + "}")
    return f"helper.make_node({', '.join(args)}),"


def _initializer_line(tensor: TensorProto, stored: dict[str, np.ndarray]) -> str:
    """A constant inline when small, else read from the weights file (kept in ``stored``)."""
    if _inline(tensor):
        return _inline_constant_line(tensor)
    stored[tensor.name] = numpy_helper.to_array(tensor)
    return f"numpy_helper.from_array(weights[{literal(tensor.name)}], {literal(tensor.name)}),"


def _subgraphs(w: CodeWriter, nodes: Iterable[NodeProto], stored: dict[str, np.ndarray],
               graphs: dict[str, str]) -> None:
    """Write each subgraph ``nodes`` hold (a Scan body), innermost first, as a variable
    ``body_<i> = helper.make_graph(...)``; ``graphs`` maps (node, attribute) to it."""
    for node in nodes:
        for attr in node.attribute:
            if attr.type != AttributeProto.GRAPH:
                continue
            sub = attr.g
            _subgraphs(w, sub.node, stored, graphs)
            var = f"body_{len(graphs)}"
            graphs[_graph_key(node.name, attr.name)] = var
            w.line(f"{var} = helper.make_graph(")
            with w.indent():
                w.line("[")
                with w.indent():
                    for inner in sub.node:
                        w.line(_node_line(inner, graphs))
                w.line("],")
                w.line(f"{literal(sub.name)},")
                for infos in (sub.input, sub.output):
                    w.line("[")
                    with w.indent():
                        for info in infos:
                            w.line(_value_info_line(info))
                    w.line("],")
                if sub.initializer:
                    w.line("initializer=[")
                    with w.indent():
                        for tensor in sub.initializer:
                            w.line(_initializer_line(tensor, stored))
                    w.line("],")
                else:
                    w.line("initializer=[],")
            w.line(")")


def _value_info_line(info: ValueInfoProto) -> str:
    tensor = info.type.tensor_type
    dims: list[int | str | None] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    elem = TensorProto.DataType.Name(tensor.elem_type)
    shape = literal(dims) if tensor.HasField("shape") else "None"
    return f"helper.make_tensor_value_info({literal(info.name)}, TensorProto.{elem}, {shape}),"


def _inline_constant_line(tensor: TensorProto) -> str:
    array = numpy_helper.to_array(tensor)
    values = literal(_array_values(array))
    return (f"numpy_helper.from_array(numpy.array({values}, dtype={literal(array.dtype.name)}), "
            f"{literal(tensor.name)}),")


def _inline(tensor: TensorProto) -> bool:
    size = int(np.prod(tensor.dims, dtype=np.int64))
    return 0 < size <= INLINE_MAX and tensor.data_type != TensorProto.STRING


# -- the script ---------------------------------------------------------------------------
HEADER = '''\
"""An ONNX model (opset {opset}), generated by mmconv {version} from mmconv IR.

Build the model with ``KitModel(weight_file)``, or save it with
``python THIS_FILE.py WEIGHTS.npy OUT.onnx``.  The weights file is an npz
keyed by initializer name (it loads without pickle).  Needs numpy and onnx.
"""

import sys

import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper
'''


def generate(model: ModelProto, weights: Weights) -> tuple[str, dict[str, np.ndarray]]:
    """The Python source building ``model`` completed by ``weights``, and the arrays the
    source loads from its weights file (by initializer name, in model order)."""
    graph = model.graph
    opset = model.opset_import[0].version
    w = CodeWriter()
    for line in HEADER.format(opset=opset, version=__version__).splitlines():
        w.line(line)
    w.line()
    w.line(f"GRAPH_NAME = {literal(graph.name)}")
    w.line()
    w.line()
    w.line("def load_weights(weight_file):")
    with w.indent():
        w.line('"""Arrays by initializer name; numpy.load without pickle, as a weights file')
        w.line('is data, never code."""')
        w.line("with numpy.load(weight_file, allow_pickle=False) as data:")
        with w.indent():
            w.line("return {name: data[name] for name in data.files}")
    w.line()
    w.line()
    w.line("def KitModel(weight_file):")
    stored: dict[str, np.ndarray] = {}
    with w.indent():
        w.line('"""The ONNX ModelProto, initializers read from ``weight_file``."""')
        w.line("weights = load_weights(weight_file)")
        graphs: dict[str, str] = {}
        _subgraphs(w, graph.node, stored, graphs)
        w.line("nodes = [")
        with w.indent():
            for node in graph.node:
                w.line(_node_line(node, graphs))
        w.line("]")
        for kind, infos in (("inputs", graph.input), ("outputs", graph.output)):
            w.line(f"{kind} = [")
            with w.indent():
                for info in infos:
                    w.line(_value_info_line(info))
            w.line("]")
        w.line("initializers = [")
        with w.indent():
            for tensor in graph.initializer:
                w.line(_initializer_line(tensor, stored))
            for name, array in weights:
                stored[name] = array
                w.line(f"numpy_helper.from_array(weights[{literal(name)}], {literal(name)}),")
        w.line("]")
        w.line("graph = helper.make_graph(nodes, GRAPH_NAME, inputs, outputs, "
               "initializer=initializers)")
        opsets = ", ".join(f"helper.make_opsetid({literal(o.domain)}, {literal(int(o.version))})"
                           for o in model.opset_import)
        w.line("model = helper.make_model(")
        with w.indent():
            w.line(f"graph, ir_version={literal(int(model.ir_version))}, opset_imports=[{opsets}],")
            w.line(f"producer_name={literal(model.producer_name)}, "
                   f"producer_version={literal(model.producer_version)},")
        w.line(")")
        if model.metadata_props:
            w.line("helper.set_model_props(model, {")
            with w.indent():
                for prop in model.metadata_props:
                    w.line(f"{literal(prop.key)}: {literal(prop.value)},")
            w.line("})")
        w.line("return model")
    w.line()
    w.line()
    w.line('if __name__ == "__main__":')
    with w.indent():
        w.line("if len(sys.argv) != 3:")
        with w.indent():
            w.line('sys.exit("usage: python %s WEIGHTS.npy OUT.onnx" % sys.argv[0])')
        w.line("onnx.save(KitModel(sys.argv[1]), sys.argv[2])")
    return w.text(), stored


def write_weights(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An npz of ``arrays`` by name (:func:`mmconv.ir.serde.write_weights`), atomically.

    Not ``numpy.savez(f, **arrays)``: an initializer named ``file`` or
    ``allow_pickle`` would collide with its parameters, and its timestamps
    would make the output differ from run to run.  Arrays are stored
    little-endian, which is how ONNX holds them.
    """
    for name in arrays:
        if "\0" in name:
            raise UnsupportedError(
                f"initializer name {name!r} contains a NUL character, which an npz "
                "weights file cannot hold; use mmconvert -df onnx"
            )
    serde.save_weights(path, {name: array.astype(array.dtype.newbyteorder("<"), copy=False)
                              for name, array in arrays.items()})


def emit_code(graph: Graph, code_path: Path, weights_path: Path, opset: int | None = None,
              *, check: bool = True) -> None:
    """Write the model-building script and its weights (both atomically).

    The model is checked first exactly as :func:`emit_model` checks it, so code
    that would build an invalid model is never written.
    """
    check_size(graph)
    model, weights = build_skeleton(graph, opset)
    if check:
        checked(graph, model, weights)
    source, arrays = generate(model, weights)
    write_weights(Path(weights_path), arrays)
    with atomic_path(Path(code_path), suffix=".py") as tmp:
        tmp.write_text(source, encoding="utf-8")


def load_code_model(code_path: Path, weights_path: Path) -> ModelProto:
    """Import the generated script by path and call ``KitModel(weights_path)``.

    The script is ours (``mmtocode`` wrote it), so it is imported like any
    module (:func:`~mmconv.emitters.codegen.imported_code`).  Any failure inside
    it becomes one error line naming the file.
    """
    code_path = Path(code_path)
    with imported_code(code_path, "onnx") as module:
        model = build_kitmodel(module, code_path, weights_path)
    if not isinstance(model, ModelProto):
        raise ModelFormatError(f"{code_path}: KitModel returned {type(model).__name__}, "
                               "not an onnx.ModelProto")
    return model


def code_to_model(code_path: Path, weights_path: Path, output_path: Path) -> None:
    """Run the generated code and write its model, checked by ``onnx.checker``
    (full_check), to ``output_path`` atomically."""
    model = load_code_model(code_path, weights_path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{code_path}: the model it builds fails onnx.checker ({first})"
                               ) from exc
    with atomic_path(Path(output_path), suffix=".onnx") as tmp:
        tmp.write_bytes(model.SerializeToString())
