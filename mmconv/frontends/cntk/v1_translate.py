"""CNTK v1 nodes in the v2 vocabulary, as CNTK's own loader translates them.

The v1 -> v2 mapping of ``BackCompat.cpp`` (``VariableResolver::ResolveFunction``):
op name, attributes (v2 names, NDShape values in storage order), input order.  A v1
type without a v2 primitive keeps its v1 name (``v1_fields._FIELD_READERS`` lists
the types we know).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmconv.errors import ModelFormatError
from mmconv.frontends.cntk.model import Axis, Function, Model, Variable
from mmconv.frontends.cntk.v1_binary import V1Network, V1Node

# ---------------------------------------------------------------------------
# translation to the v2 vocabulary (BackCompat.cpp, ResolveFunction)
# ---------------------------------------------------------------------------

#: v1 node types that become a v2 primitive of another name, with no attributes.
_SIMPLE_OPS: dict[str, str] = {
    "Negate": "Negate", "Sigmoid": "Sigmoid", "StableSigmoid": "StableSigmoid",
    "Tanh": "Tanh", "Cosine": "Cos", "Sin": "Sin", "Pass": "Pass",
    "RectifiedLinear": "ReLU", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt",
    "Floor": "Floor", "Abs": "Abs", "Reciprocal": "Reciprocal", "Softmax": "Softmax",
    "Hardmax": "Hardmax", "LogSoftmax": "LogSoftmax", "SumElements": "SumAll",
    "Plus": "Plus", "LogPlus": "LogPlus", "Minus": "Minus", "ElementTimes": "ElementTimes",
    "ElementDivide": "ElementDivide", "Equal": "Equal", "NotEqual": "NotEqual",
    "Less": "Less", "LessEqual": "LessEqual", "Greater": "Greater",
    "GreaterEqual": "GreaterEqual", "PackedIndex": "PackedIndex",
    "GatherPacked": "GatherPacked", "ScatterPacked": "ScatterPacked",
    "CosDistance": "CosDistance", "Logistic": "Logistic", "SquareError": "SquaredError",
    "CrossEntropyWithSoftmax": "CrossEntropyWithSoftmax",
    "ClassificationError": "ClassificationError", "ErrorPrediction": "ClassificationError",
    "Clip": "Clip", "If": "Select", "ReconcileDynamicAxis": "ReconcileDynamicAxis",
    "StopGradient": "StopGradient", "ExponentialLinearUnit": "ELU", "Acos": "Acos",
    "Asin": "Asin", "Cosh": "Cosh", "Sinh": "Sinh", "Atanh": "Atanh", "Asinh": "Asinh",
    "Tan": "Tan", "Atan": "Atan", "Pow": "Pow", "Softplus": "Softplus",
    "CosDistanceWithNegativeSamples": "CosDistanceWithNegativeSamples",
}  # fmt: skip

#: v2 input order from v1 input order (``GetPrimitiveFunctionInputsToCNTKNodeInputsIndexMap``):
#: v2 input i is v1 input ``order[i]``.  Ops not listed keep the v1 order.
_INPUT_ORDER: dict[str, tuple[int, ...]] = {
    "ClassificationError": (1, 0, 2),
    "Logistic": (1, 0, 2),
    "LambdaRank": (1, 0, 2),
    "NDCG": (1, 0, 2),
    "CrossEntropyWithSoftmax": (1, 0),
    "GatherPacked": (1, 0),
    "ScatterPacked": (2, 1, 0),
    "Clip": (2, 0, 1),
    "OptimizedRNNStack": (1, 0),
}

_DTYPES = {"float": "float32", "double": "float64", "half": "float16"}
_UID_PREFIX = "__v2libuid__"
_NAME_PREFIX = "__v2libname__"
#: CNTK's internal dynamic axis names (CompositeFunction::Internal...AxisName).
_DEFAULT_DYNAMIC_AXIS = "*"
_NO_SEQUENCE_AXIS = "__noSequenceAxis"
#: v1 types that are values, not functions.
_LEAF_TYPES = frozenset({"InputValue", "SparseInputValue", "LearnableParameter", "DynamicAxis"})
_PRECOMPUTE_TYPES = frozenset({"Mean", "InvStdDev"})


def split_node_name(name: str) -> tuple[str, str]:
    """(uid, name) of a v1 node, as ``UidAndNameFromCNTKInternalNodeName`` decodes it.

    A model saved from the v2 API names its nodes ``__v2libuid__<uid>__v2libname__<name>``;
    BrainScript models have plain names, which serve as both.
    """
    if name.startswith(_UID_PREFIX):
        i = name.find(_NAME_PREFIX, len(_UID_PREFIX))
        if i >= 0:
            return name[len(_UID_PREFIX) : i], name[i + len(_NAME_PREFIX) :]
    return name, name


def dynamic_axes_of(internal_name: str) -> tuple[str, ...]:
    """The v2 dynamic axes of an input (``DynamicAxesFromInternalDynamicAxisName``).

    Storage (C++) order: the sequence axis first, then the batch axis.  BrainScript
    inputs name no axis at all: they get CNTK's default sequence + batch axes.
    """
    if internal_name.startswith(_NO_SEQUENCE_AXIS):
        return ("defaultBatchAxis",)
    if not internal_name or internal_name.startswith(_DEFAULT_DYNAMIC_AXIS):
        return ("defaultDynamicAxis", "defaultBatchAxis")
    return (internal_name, "defaultBatchAxis")


#: ``Axis::AllStaticAxes()``'s index as v2 files store it (``SentinelStaticAxisIndexValue...``).
ALL_STATIC_AXES_INDEX = 2147483646


def static_axis(index: int) -> Axis:
    """A static axis (0-based, storage order) exactly as the v2 reader presents one."""
    return Axis(static_index=index, name=f"staticAxisIdx={index}", is_ordered_dynamic=True)


def _v1_axis(axis: int) -> Axis:
    """A v1 (1-based, storage order) axis number as a v2 static :class:`Axis`.

    v1 axis 0 means "all static axes" for reductions.
    """
    if axis == 0:
        return Axis(static_index=ALL_STATIC_AXES_INDEX, name="AllStaticAxes")
    return static_axis(axis - 1)


class _Translator:
    """Builds a :class:`Model` from a :class:`V1Network` (one instance per file)."""

    def __init__(self, net: V1Network) -> None:
        self.net = net
        self.path = net.path
        self.variables: dict[str, Variable] = {}
        self.functions: list[Function] = []
        #: v1 node name -> uid of the variable it produces
        self.value_of: dict[str, str] = {}
        #: v1 node name -> its v2 uid
        self.uid_of: dict[str, str] = {}
        self.used_uids: set[str] = set()
        self.default_dtype = self._detect_dtype()

    # -- helpers ------------------------------------------------------------
    def fail(self, node: V1Node, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: node {node.name[:80]!r} ({node.op}): {what}")

    def _detect_dtype(self) -> str:
        """Element type for nodes without a precision tag (files before version 7)."""
        for node in self.net.nodes.values():
            if node.precision:
                return _DTYPES[node.precision]
            value = node.fields.get("value")
            if isinstance(value, np.ndarray):
                return value.dtype.name
        return "float32"

    def dtype_of(self, node: V1Node) -> str:
        return _DTYPES.get(node.precision, self.default_dtype)

    def unique_uid(self, uid: str, fallback: str) -> str:
        if uid and uid not in self.used_uids:
            self.used_uids.add(uid)
            return uid
        uid = fallback
        n = 1
        while uid in self.used_uids:
            uid = f"{fallback}#{n}"
            n += 1
        self.used_uids.add(uid)
        return uid

    def add_constant(self, uid: str, value: np.ndarray, name: str = "") -> str:
        uid = self.unique_uid(uid, uid)
        self.variables[uid] = Variable(uid=uid, name=name, kind="constant", dtype=value.dtype.name,
                                       shape=tuple(value.shape), value=value)
        return uid

    # -- leaves ---------------------------------------------------------------
    def assign_uids(self) -> None:
        """Give every node its v2 uid up front, so inputs can be named before their
        producer is translated (recurrent loops reference later nodes)."""
        for node in self.net.nodes.values():
            if node.op == "DynamicAxis":
                continue
            uid = self.unique_uid(split_node_name(node.name)[0], node.name)
            self.uid_of[node.name] = uid
            self.value_of[node.name] = uid if self.is_leaf(node) else f"{uid}_Output_0"

    def leaf(self, node: V1Node) -> None:
        if node.op == "DynamicAxis":  # not a value in v2
            return
        uid = self.uid_of[node.name]
        name = split_node_name(node.name)[1]
        f = node.fields
        if node.op in ("InputValue", "SparseInputValue"):
            self.variables[uid] = Variable(
                uid=uid, name=name, kind="input", dtype=self.dtype_of(node),
                shape=tuple(f["sampleLayout"])[::-1],
                dynamic_axes=dynamic_axes_of(f["dynamicAxis"]))
        elif node.op in ("LearnableParameter", *_PRECOMPUTE_TYPES):
            if node.op in _PRECOMPUTE_TYPES and not f["hasComputed"]:
                raise self.fail(node, "the precomputed statistics were never computed "
                                      "(CNTK refuses such models too)")
            stored = tuple(f.get("sampleLayout", ()))
            value: np.ndarray = f["value"]
            if node.op in _PRECOMPUTE_TYPES:
                stored = (value.size,)
            if math.prod(stored) != value.size:
                raise self.fail(node, f"shape {stored} does not match its {value.size} values")
            kind = ("constant" if node.op in _PRECOMPUTE_TYPES
                    or f["learningRateMultiplier"] == 0 else "parameter")
            self.variables[uid] = Variable(
                uid=uid, name=name, kind=kind, dtype=value.dtype.name, shape=stored[::-1],
                value=value.reshape(stored[::-1]))
        else:
            raise self.fail(node, "a node without inputs that is not a value")

    # -- functions ------------------------------------------------------------
    def function(self, node: V1Node) -> None:
        uid = self.uid_of[node.name]
        name = split_node_name(node.name)[1]
        inputs = [self.value_of[i] for i in node.inputs if i in self.value_of]
        op, attrs, inputs = self.resolve(node, inputs)
        order = _INPUT_ORDER.get(op)
        if order is not None and len(order) >= len(inputs):
            order = tuple(i for i in order if i < len(inputs))
            if sorted(order) == list(range(len(inputs))):
                inputs = [inputs[i] for i in order]
        out = f"{uid}_Output_0"
        dtype = self.dtype_of(node)
        self.variables[out] = Variable(uid=out, name=name, kind="output", dtype=dtype, shape=(),
                                       owner=uid)
        self.functions.append(Function(uid=uid, name=name, op=op, inputs=inputs, outputs=[out],
                                       attrs=attrs))

    def resolve(self, node: V1Node, inputs: list[str]) -> tuple[str, dict[str, Any], list[str]]:
        """v2 op name, attributes and inputs of a v1 node (``ResolveFunction``)."""
        op = node.op
        f = node.fields
        if op in _SIMPLE_OPS:
            return _SIMPLE_OPS[op], {}, inputs
        handler = getattr(self, f"_op_{op}", None)
        if handler is not None:
            return handler(node, f, inputs)
        # No v2 primitive: keep the v1 type and its fields (converters report it by name).
        attrs = {k: v for k, v in f.items() if not isinstance(v, np.ndarray)}
        return op, attrs, inputs

    def _shape_of(self, uid: str) -> tuple[int, ...] | None:
        v = self.variables.get(uid)
        if v is None or v.kind == "output":
            return None
        return v.shape

    def _op_Times(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        # "Deal with abuse of * in legacy configs/models": a scalar operand is ElementTimes.
        if any(self._shape_of(i) == () for i in inputs):
            return "ElementTimes", {}, inputs
        return "Times", {"outputRank": f["outputRank"],
                         "inferInputRankToMap": f["inferInputRankToMap"]}, inputs

    def _op_TransposeTimes(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "TransposeTimes", {"outputRank": f["outputRank"]}, inputs

    def _op_Convolution(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        kernel = tuple(f["kernelShape"])
        if inputs:
            w = self.variables.get(inputs[0])
            if w is not None and w.value is not None and (f["convolution2D"] or len(w.shape) == 2):
                inputs = [self._reshape_2d_kernel(node, w, kernel), *inputs[1:]]
                kernel = tuple(self.variables[inputs[0]].shape[::-1][:-1])
        if f["imageLayout"] != 1 and f["convolution2D"]:
            from mmconv.errors import UnsupportedError

            raise UnsupportedError(
                f"{self.path}: convolution {node.name[:80]!r} uses the legacy HWC image layout, "
                "which is not supported (only CHW, cuDNN layout)")
        attrs = {
            "kernelShape": kernel, "strides": tuple(f["strides"]),
            "sharing": list(f["sharing"]), "autoPadding": list(f["autoPadding"]),
            "lowerPad": tuple(f["lowerPad"]), "upperPad": tuple(f["upperPad"]),
            "transpose": f["transpose"], "outputShape": tuple(f["outputShape"]),
            "maxTempMemSizeInSamples": f["maxTempMemSizeInSamples"],
            "dilation": tuple(f["dilation"]), "groups": f["groups"], "sequential": False,
        }
        return "Convolution", attrs, inputs

    def _reshape_2d_kernel(self, node: V1Node, w: Variable, kernel: tuple[int, ...]) -> str:
        """Legacy 2D convolution weights [K x kW*kH*C] as the tensor (kW, kH, C, K) (storage).

        This is what BackCompat.cpp does: the same values reinterpreted with the kernel
        shape plus the output-map count appended (no transpose).  C is not stored in
        the node (CNTK infers it at validation); it follows from the weights' size.
        """
        k = w.shape[::-1][0]  # storage dim 0 = rows = output maps
        spatial = math.prod(kernel[:2]) if len(kernel) >= 2 else math.prod(kernel)
        if k == 0 or spatial == 0 or w.value.size % (k * spatial):
            raise self.fail(node, f"weights of shape {w.shape} do not fit kernel {kernel}")
        c = w.value.size // (k * spatial)
        stored = (*kernel[:2], c, k)
        w.value = np.asarray(w.value).reshape(-1).reshape(stored[::-1])
        w.shape = stored[::-1]
        return w.uid

    def _op_Pooling(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "Pooling", {
            "poolingType": _pooling_type(self, node, f["poolKind"]),
            "poolingWindowShape": tuple(f["kernelShape"]), "strides": tuple(f["strides"]),
            "autoPadding": list(f["autoPadding"]), "lowerPad": tuple(f["lowerPad"]),
            "upperPad": tuple(f["upperPad"]), "ceilOutDim": f["ceilOutDim"],
            "includePad": f["includePad"],
        }, inputs

    def _legacy_pool(self, node: V1Node, f: dict, inputs: list[str], kind: int) -> tuple:
        if f["imageLayout"] != 1:
            from mmconv.errors import UnsupportedError

            raise UnsupportedError(
                f"{self.path}: pooling {node.name[:80]!r} uses the legacy HWC image layout, "
                "which CNTK's own loader rejects too")
        return "Pooling", {
            "poolingType": kind,
            "poolingWindowShape": (f["windowWidth"], f["windowHeight"], 1),
            "strides": (f["horizontalSubsample"], f["verticalSubsample"], 1),
            "autoPadding": [False], "lowerPad": (0,), "upperPad": (0,),
            "ceilOutDim": False, "includePad": False,
        }, inputs

    def _op_MaxPooling(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return self._legacy_pool(node, f, inputs, 0)

    def _op_AveragePooling(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return self._legacy_pool(node, f, inputs, 1)

    def _op_MaxUnpooling(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "Unpooling", {
            "poolingType": 0, "unpoolingWindowShape": tuple(f["kernelShape"]),
            "strides": tuple(f["strides"]), "autoPadding": list(f["autoPadding"]),
            "lowerPad": tuple(f["lowerPad"]), "upperPad": tuple(f["upperPad"]),
        }, inputs

    def _op_ROIPooling(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "ROIPooling", {
            "roiOutputShape": tuple(f["roiOutputShape"]),
            "poolingType": _pooling_type(self, node, f["poolKind"]),
            "spatialScale": f["spatialScale"],
        }, inputs

    def _op_BatchNormalization(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        inputs = list(inputs)
        if len(inputs) not in (5, 6):
            raise self.fail(node, f"{len(inputs)} inputs (5 or 6 expected)")
        if f.get("runningInvStdDev"):
            inputs[4] = self._inv_std_to_variance(node, inputs[4], f["epsilon"])
        if len(inputs) == 5:
            # Before version 19 the sample count was not an input; CNTK adds a constant.
            dtype = self.dtype_of(node)
            inputs.append(self.add_constant(f"{node.name}.run_sample_count",
                                            np.zeros((), dtype=dtype)))
        return "BatchNormalization", {
            "spatial": f["spatial"],
            "normalizationTimeConstant": f["normalizationTimeConstant"],
            "blendTimeConstant": f["blendTimeConstant"], "epsilon": f["epsilon"],
            "useCuDNNEngine": not f["useCntkEngine"], "disableRegularization": False,
        }, inputs

    def _inv_std_to_variance(self, node: V1Node, uid: str, eps: float) -> str:
        """Models before version 13 stored 1/sqrt(var + eps) where now the variance is."""
        v = self.variables.get(uid)
        if v is None or v.value is None:
            raise self.fail(node, "running statistics are not stored values")
        inv = np.asarray(v.value, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(inv != 0, 1.0 / (inv * inv) - eps, 0.0)
        v.value = np.maximum(var, 0.0).astype(v.value.dtype)
        return uid

    def _op_RowStack(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "Splice", {"axis": _v1_axis(f["spliceDim"])}, inputs

    def _op_Slice(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        axes = [_v1_axis(a) for a in f["axis"]]
        strides = f["strides"]
        if len(axes) == 1:
            attrs: dict[str, Any] = {"axis": axes[0], "beginIndex": f["beginIndex"][0],
                                     "endIndex": f["endIndex"][0]}
            if strides[0] != 1:
                attrs["sliceStrides"] = strides[0]
        else:
            attrs = {"axisVec": axes, "beginIndexVec": list(f["beginIndex"]),
                     "endIndexVec": list(f["endIndex"])}
            if any(s != 1 for s in strides):
                attrs["sliceStridesVec"] = list(strides)
        return "Slice", attrs, inputs

    def _op_TransposeDimensions(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        if f["perm"] is not None:
            return "TransposeAxes", {"axisVec": [static_axis(p) for p in f["perm"]]}, inputs
        return "TransposeAxes", {"axis1": _v1_axis(f["axis1"]),
                                 "axis2": _v1_axis(f["axis2"])}, inputs

    def _op_Reshape(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        # v1 marks a dimension to infer with 0, v2 with -1 (NDShape::InferredDimension).
        new_shape = tuple(-1 if d == 0 else d for d in f["replacementSampleLayout"])
        attrs: dict[str, Any] = {"newShape": new_shape}
        begin, end = f["beginDim"], f["endDim"]
        if begin > 1 or end != 0:
            # v1: 1-based begin, exclusive 1-based end (0 = to the end); v2: 0-based Axis.
            attrs["beginAxis"] = static_axis(max(begin, 1) - 1)
            if end != 0:
                attrs["endAxis"] = static_axis(end - 1)
        return "Reshape", attrs, inputs

    def _op_ReduceElements(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "ReduceElements", {
            "reductionOpName": f["operation"], "axisVec": [_v1_axis(a) for a in f["axes"]],
            "reductionKeepDimensions": f["keepDimensions"],
        }, inputs

    def _op_SumColumnElements(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "ReduceElements", {"reductionOpName": "Sum", "axis": static_axis(0)}, inputs

    def _op_Dropout(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        # The dropout rate is not saved in v1 files (CNTK reports 0.0); inference ignores it.
        return "Dropout", {"dropoutRate": 0.0, "rngSeed": f["rngSeed"],
                           "rngOffset": f["rngOffset"]}, inputs

    def _delay(self, node: V1Node, f: dict, inputs: list[str], op: str) -> tuple:
        inputs = list(inputs)
        if len(inputs) == 1:
            value = np.asarray(f["initialStateValue"], dtype=self.dtype_of(node))
            inputs.append(self.add_constant(f"{node.name}.initial_state", value))
        return op, {"offset": f["timeStep"]}, inputs

    def _op_PastValue(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return self._delay(node, f, inputs, "PastValue")

    def _op_FutureValue(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return self._delay(node, f, inputs, "FutureValue")

    def _op_Where(self, node: V1Node, f: dict, inputs: list[str]) -> tuple:
        return "Where", {"newDynamicAxes": list(dynamic_axes_of(f["dynamicAxis"]))}, inputs

    # -- the whole network ------------------------------------------------------
    def roots(self) -> list[V1Node]:
        """CNTK's ``DetermineSetOfAllRoots``: unreferenced nodes plus the criterion,
        evaluation and output groups and precompute nodes, sorted by node name;
        ``ConvertFromLegacyModel`` then drops the leaves."""
        nodes = self.net.nodes
        referenced = {i for n in nodes.values() for i in n.inputs}
        names = {n for n in nodes if n not in referenced}
        for group in ("criterion", "evaluation", "output"):
            names.update(self.net.groups.get(group, ()))
        names.update(n.name for n in nodes.values() if n.op in _PRECOMPUTE_TYPES)
        return [nodes[n] for n in sorted(names) if not self.is_leaf(nodes[n])]

    def is_leaf(self, node: V1Node) -> bool:
        return node.op in _LEAF_TYPES or node.op in _PRECOMPUTE_TYPES or not node.inputs

    def run(self) -> Model:
        nodes = self.net.nodes
        self.assign_uids()
        roots = self.roots()
        done: set[str] = set()
        # Iterative depth-first post-order (deep ResNets overflow Python's recursion limit).
        for root in roots:
            stack: list[tuple[V1Node, int]] = [(root, 0)]
            on_stack = {root.name}
            while stack:
                node, i = stack[-1]
                if node.name in done:
                    stack.pop()
                    on_stack.discard(node.name)
                    continue
                if i < len(node.inputs) and not self.is_leaf(node):
                    stack[-1] = (node, i + 1)
                    child = nodes[node.inputs[i]]
                    if child.name not in done and child.name not in on_stack:
                        # A child already on the stack closes a recurrent loop (PastValue):
                        # its uid is known, so the reference is fine before it is built.
                        stack.append((child, 0))
                        on_stack.add(child.name)
                    continue
                stack.pop()
                on_stack.discard(node.name)
                done.add(node.name)
                if self.is_leaf(node):
                    self.leaf(node)
                else:
                    self.function(node)
        outputs = [self.value_of[r.name] for r in roots]
        return Model(path=self.path, format="v1", variables=self.variables,
                     functions=self.functions, outputs=outputs, name="")


def _pooling_type(t: _Translator, node: V1Node, pool_kind: int) -> int:
    """v1 PoolKind (1 Max, 2 Average) -> v2 PoolingType (0 Max, 1 Average)."""
    if pool_kind not in (1, 2):
        raise t.fail(node, f"unknown pooling kind {pool_kind}")
    return pool_kind - 1


def translate(net: V1Network) -> Model:
    """Turn a parsed v1 network into a :class:`Model` in the v2 vocabulary."""
    return _Translator(net).run()
