"""IR op declarations, one module per op family.

Adding an op is a local change: declare it with :func:`mmconv.ir.registry.op`
in its family's module (or a new module here; it is picked up automatically),
then regenerate ``docs/ir-ops.md`` with ``scripts/gen_docs.py``.
"""
