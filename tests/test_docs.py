"""Generated docs are up to date with the registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_docs_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_ir_op_documented() -> None:
    from mmconv.ir import all_schemas

    text = (ROOT / "docs" / "ir-ops.md").read_text()
    for schema in all_schemas():
        assert f"### {schema.name}\n" in text
        assert schema.doc, f"{schema.name} has no semantics paragraph"
