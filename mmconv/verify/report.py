"""The verification report ``mmconvert --verify`` and ``mmverify`` print (one implementation)."""

from __future__ import annotations

from mmconv.errors import VerificationError
from mmconv.verify.conversion import Verification


def report_lines(result: Verification) -> list[str]:
    """One ``verify`` line per output, then the per-layer section when there is one."""
    lines = [f"verify {r}" for r in result.outputs]
    if result.layers_note:
        lines.append(f"layers: {result.layers_note}")
    if result.layers is not None:
        lines.extend(result.layers.lines())
    return lines


def print_report(result: Verification, model: str) -> None:
    """Print the report; raise :class:`VerificationError` (exit 1) when it failed."""
    for line in report_lines(result):
        print(line)
    if result.passed:
        return
    failed = [r.name for r in result.outputs if not r.passed]
    first = result.layers.first_diverging if result.layers is not None else None
    where = f"; first diverging layer {first.name!r}" if first is not None else ""
    what = f"outputs {failed}" if failed else "intermediate values"
    raise VerificationError(
        f"{model} does not reproduce the source model on {what}{where} (see the report above)")
