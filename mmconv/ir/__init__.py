"""The mmconv intermediate representation.  Nothing here imports a framework.

- :mod:`mmconv.ir.core`: Graph, Node, Value (protobuf-free, in memory)
- :mod:`mmconv.ir.registry` and :mod:`mmconv.ir.ops`: the op registry, the IR's spec
- :mod:`mmconv.ir.infer`: shape inference and validation
- :mod:`mmconv.ir.serde`: PREFIX.pb / PREFIX.json / PREFIX.npy files
- :mod:`mmconv.ir.usedef`: producers/consumers of values, ``replace_all_uses``
- :mod:`mmconv.ir.passes`: graph passes (one module each) and the ``PassManager``
- :mod:`mmconv.ir.recurrent`, :mod:`mmconv.ir.scan`: numpy semantics of the recurrent
  layers and of the Scan loop (``run_graph`` runs a whole graph with loops)
"""

from mmconv.ir.core import DTYPES, Graph, Node, Value
from mmconv.ir.infer import infer_shapes
from mmconv.ir.registry import Attr, OpSchema, all_schemas, get_schema, op

__all__ = [
    "DTYPES", "Attr", "Graph", "Node", "OpSchema", "Value", "all_schemas", "get_schema",
    "infer_shapes", "op",
]
