"""Markdown generated from the registries, so the docs cannot drift from the code.

``scripts/gen_docs.py`` writes these files; a test fails when they are stale.
"""

from __future__ import annotations

from mmconv.docgen.ir_ops import render_ir_ops
from mmconv.docgen.support import render_support


def generated_docs() -> dict[str, str]:
    """Relative path -> full text of every generated document."""
    return {"docs/ir-ops.md": render_ir_ops(), "docs/support-matrix.md": render_support()}
