"""The verification report ``mmconvert --verify`` and ``mmverify`` print (one implementation;
the printing itself is the CLI's, :func:`mmconv.cli.common.print_verification`)."""

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


def failure(result: Verification, model: str) -> VerificationError | None:
    """The error to exit with (1) when the verification failed, else None."""
    if result.passed:
        return None
    failed = [r.name for r in result.outputs if not r.passed]
    first = result.layers.first_diverging if result.layers is not None else None
    where = f"; first diverging layer {first.name!r}" if first is not None else ""
    what = f"outputs {failed}" if failed else "intermediate values"
    hint = "" if result.layers is not None or result.layers_note else (
        "; --layers finds the first diverging layer")
    return VerificationError(
        f"{model} does not reproduce the source model on {what}{where} (see the report "
        f"above{hint})")
